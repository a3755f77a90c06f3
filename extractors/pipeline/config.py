"""Build pipeline parts from the settings: the RIS connector and the validation policy.

Values come from ``RRIEF_RIS_*`` / ``RRIEF_VALIDATION_*`` (see :mod:`extractors.settings`);
an Airflow deployment sets them on the workers. This is the edge where settings become the
explicit arguments of the connectors in :mod:`extractors.ris`.
"""

from __future__ import annotations

import codecs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extractors.ris.base import RISConnector
from extractors.ris.mapping import ExamMapper
from extractors.ris.status import StatusVocabulary
from extractors.settings import Settings
from extractors.validate.policy import ValidationPolicy


def exam_mapper(s: Settings) -> ExamMapper:
    """The site exam mapping (``RRIEF_RIS_EXAM_MAP``) over the built-in patterns."""
    return ExamMapper.from_file(s.ris_exam_map) if s.ris_exam_map else ExamMapper()


def status_vocabulary(s: Settings) -> StatusVocabulary:
    """The result-status vocabulary (``RRIEF_RIS_*_STATUSES``, ``_INCLUDE_PRELIMINARY``)."""
    return StatusVocabulary.from_settings_values(
        s.ris_final_statuses,
        s.ris_corrected_statuses,
        s.ris_preliminary_statuses,
        s.ris_include_preliminary,
    )


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"RRIEF_RIS_TIMEZONE {name!r} is not an IANA time zone") from None


def connector_from_settings(s: Settings) -> RISConnector:
    """Build the configured connector (``RRIEF_RIS_*``), or say precisely what is missing."""
    exams = exam_mapper(s)
    zone = _timezone(s.ris_timezone)
    if s.ris_kind == "sql":
        from extractors.ris.sql import SqlConnector

        if not s.ris_url:
            raise ValueError("RRIEF_RIS_URL is empty: set the SQLAlchemy URL of the RIS database")
        if s.ris_query:
            return SqlConnector(
                s.ris_url, query=s.ris_query, source=s.ris_source, naive_timezone=zone, exams=exams
            )
        return SqlConnector(
            s.ris_url, table_name=s.ris_table, source=s.ris_source, naive_timezone=zone, exams=exams
        )
    vocabulary = status_vocabulary(s)
    if s.ris_kind == "fhir":
        from extractors.ris import fhir

        options = {
            "source": s.ris_source,
            "include_preliminary": vocabulary.include_preliminary,
            "naive_timezone": zone,
            "exams": exams,
        }
        if s.ris_folder:
            return fhir.FhirBundleConnector(s.ris_folder, **options)  # type: ignore[arg-type]
        if not s.ris_url:
            raise ValueError("RRIEF_RIS_URL (FHIR base URL) or RRIEF_RIS_FOLDER must be set")
        return fhir.FhirConnector(s.ris_url, **options)  # type: ignore[arg-type]
    from extractors.ris import hl7v2

    if not s.ris_folder:
        raise ValueError("RRIEF_RIS_FOLDER is empty: set the HL7 v2 drop folder")
    try:
        codecs.lookup(s.ris_hl7_encoding)
    except LookupError:
        raise ValueError(f"RRIEF_RIS_HL7_ENCODING {s.ris_hl7_encoding!r} is not a codec") from None
    return hl7v2.Hl7FolderConnector(
        s.ris_folder,
        source=s.ris_source,
        encoding=s.ris_hl7_encoding,
        naive_timezone=zone,
        statuses=vocabulary,
        exams=exams,
        exclude_obx_codes=s.ris_hl7_exclude_obx,
    )


def validation_policy(s: Settings) -> ValidationPolicy:
    """The prevalence-sanity policy from ``RRIEF_VALIDATION_*`` settings."""
    return ValidationPolicy(
        max_positive_rate=s.validation_max_positive_rate, min_reports=s.validation_min_reports
    )
