"""Build pipeline parts from the settings: the RIS connector and the validation policy.

Values come from ``RRIEF_RIS_*`` / ``RRIEF_VALIDATION_*`` (see :mod:`extractors.settings`);
an Airflow deployment sets them on the workers.
"""

from __future__ import annotations

from extractors.ris.base import RISConnector
from extractors.settings import Settings
from extractors.validate.policy import ValidationPolicy


def connector_from_settings(s: Settings) -> RISConnector:
    """Build the configured connector (``RRIEF_RIS_*``), or say precisely what is missing."""
    if s.ris_kind == "sql":
        from extractors.ris.sql import SqlConnector

        if not s.ris_url:
            raise ValueError("RRIEF_RIS_URL is empty: set the SQLAlchemy URL of the RIS database")
        if s.ris_query:
            return SqlConnector(s.ris_url, query=s.ris_query, source=s.ris_source)
        return SqlConnector(s.ris_url, table_name=s.ris_table, source=s.ris_source)
    if s.ris_kind == "fhir":
        from extractors.ris import fhir

        if s.ris_folder:
            return fhir.FhirBundleConnector(s.ris_folder, source=s.ris_source)
        if not s.ris_url:
            raise ValueError("RRIEF_RIS_URL (FHIR base URL) or RRIEF_RIS_FOLDER must be set")
        return fhir.FhirConnector(s.ris_url, source=s.ris_source)
    from extractors.ris import hl7v2

    if not s.ris_folder:
        raise ValueError("RRIEF_RIS_FOLDER is empty: set the HL7 v2 drop folder")
    return hl7v2.Hl7FolderConnector(s.ris_folder, source=s.ris_source)


def validation_policy(s: Settings) -> ValidationPolicy:
    """The prevalence-sanity policy from ``RRIEF_VALIDATION_*`` settings."""
    return ValidationPolicy(
        max_positive_rate=s.validation_max_positive_rate, min_reports=s.validation_min_reports
    )
