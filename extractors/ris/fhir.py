"""FHIR R4 connector: ``DiagnosticReport`` resources from a REST endpoint or from Bundle files.

REST: ``GET [base]/DiagnosticReport?_lastUpdated=ge<start>&_lastUpdated=lt<end>&_count=N``,
following ``link[relation=next]`` until the last page. Files: every ``*.json`` Bundle (or bare
DiagnosticReport) in a folder, windowed on ``meta.lastUpdated`` (else ``issued``, else the file's
modification time).

Read as official examples and real servers send them:

- text: ``presentedForm`` of type ``text/plain``, else ``text/html`` / ``application/xhtml+xml``
  (converted to text with paragraphs), else ``conclusion``, else the ``text.div`` narrative;
  base64 may be wrapped (whitespace is allowed in ``base64Binary``)
- accession: an ``identifier`` typed ``ACSN``, else a ``basedOn`` ServiceRequest identifier
  typed ``ACSN``, else any identifier of either, else the resource id (``id_source`` says which)
- patient: ``subject.identifier``, or ``subject.reference`` as ``Patient/id``, an absolute URL,
  a ``urn:uuid:`` entry of the same Bundle or a ``#contained`` Patient (their identifier)
- report time: ``issued``, else ``meta.lastUpdated``, else ``effective[x]`` (``time_source``);
  partial dates (``2012-12``) are kept with their precision, an optional time never refuses

A resource that cannot be read becomes a ``RISRecordError`` naming the resource id and the
field at fault; the rest goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from extractors.ris.base import (
    Precision,
    RecordProblem,
    ReportRecord,
    RISRecordError,
    check_window,
    make_record,
)
from extractors.ris.html_text import html_to_text
from extractors.ris.mapping import ExamMapper
from extractors.ris.status import fhir_status
from extractors.ris.times import parse_fhir_datetime

log = logging.getLogger("rrief.ris.fhir")

DICOM_MODALITY_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
ACCESSION_TYPE = "ACSN"  # v2-0203 identifier type "Accession ID"
MEDICAL_RECORD_TYPE = "MR"
TEXT_TYPES = ("text/plain", "text/html", "application/xhtml+xml")
_WHITESPACE = re.compile(r"\s+")
# [base/]Patient/<id>[/_history/<version>]
_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")

Resource = Mapping[str, Any]


class FhirRecordProblem(RecordProblem):
    """A resource field that cannot be used (message names the field, never its value)."""


@dataclass
class BundleIndex:
    """Resources a reference may point to: Bundle entries by ``fullUrl`` and ``Type/id``."""

    by_reference: dict[str, Resource] = field(default_factory=dict)

    @classmethod
    def of(cls, bundle: Any) -> BundleIndex:
        index = cls()
        if not isinstance(bundle, Mapping):
            return index
        for entry in bundle.get("entry") or []:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("resource"), Mapping):
                continue
            resource = entry["resource"]
            if isinstance(entry.get("fullUrl"), str):
                index.by_reference[entry["fullUrl"]] = resource
            if resource.get("resourceType") and resource.get("id"):
                index.by_reference[f"{resource['resourceType']}/{resource['id']}"] = resource
        return index

    def resolve(self, reference: str, report: Resource) -> Resource | None:
        """The resource ``reference`` points to: ``#id`` among the report's ``contained``,
        else a Bundle entry (``urn:uuid:``, ``Type/id`` or the entry's absolute ``fullUrl``)."""
        if reference.startswith("#"):
            for item in report.get("contained") or []:
                if isinstance(item, Mapping) and item.get("id") == reference[1:]:
                    return item
            return None
        if reference in self.by_reference:
            return self.by_reference[reference]
        tail = re.search(r"([A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$", reference)
        return self.by_reference.get(tail.group(1)) if tail else None


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if isinstance(concept, Mapping):
        return [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    return []


def _typed(identifier: Mapping[str, Any], code: str) -> bool:
    return any(c.get("code") == code for c in _codings(identifier.get("type")))


def _identifier_values(identifiers: Any) -> list[tuple[bool, str]]:
    """(typed ACSN?, value) of every identifier with a value."""
    out = []
    for ident in identifiers if isinstance(identifiers, list) else [identifiers]:
        value = ident.get("value") if isinstance(ident, Mapping) else None
        if isinstance(value, str) and value.strip():
            out.append((_typed(ident, ACCESSION_TYPE), value.strip()))
    return out


def _content_type(value: Any) -> tuple[str, str | None]:
    """``text/plain; charset=ISO-8859-1`` → (``text/plain``, ``ISO-8859-1``)."""
    media, *params = str(value or "").split(";")
    charset = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"')
    return media.strip().lower(), charset


def _form_text(form: Mapping[str, Any], i: int, media: str, charset: str | None) -> str | None:
    data = form.get("data")
    if data is None:
        if form.get("url"):
            raise FhirRecordProblem(
                f"presentedForm[{i}] ({media}) refers to a url; only inline data is read"
            )
        return None
    try:
        raw = base64.b64decode(_WHITESPACE.sub("", str(data)), validate=True)
    except (binascii.Error, ValueError):
        raise FhirRecordProblem(f"presentedForm[{i}].data is not valid base64") from None
    encoding = charset or "utf-8"
    try:
        decoded = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise FhirRecordProblem(f"presentedForm[{i}].data is not {encoding} text") from None
    return decoded if media == "text/plain" else html_to_text(decoded)


def _report_text(resource: Resource) -> tuple[str, str]:
    """(text, where it came from): the first text rendition of presentedForm, else conclusion,
    else the narrative."""
    found: dict[str, list[str]] = {}
    for i, form in enumerate(resource.get("presentedForm") or []):
        if not isinstance(form, Mapping):
            continue
        media, charset = _content_type(form.get("contentType"))
        if media in TEXT_TYPES:
            text = _form_text(form, i, media, charset)
            if text is not None and text.strip():
                found.setdefault(media, []).append(text)
    for media in TEXT_TYPES:
        if media in found:
            return "\n\n".join(found[media]), f"presentedForm {media}"
    conclusion = resource.get("conclusion")
    if isinstance(conclusion, str) and conclusion.strip():
        return conclusion, "conclusion"
    narrative = resource.get("text")
    if isinstance(narrative, Mapping) and narrative.get("status") != "empty":
        text = html_to_text(str(narrative.get("div") or ""))
        if text.strip():
            return text, "text.div"
    raise FhirRecordProblem("no report text: no text presentedForm, conclusion or narrative")


def _patient_identifier(patient: Resource, what: str) -> str:
    values = [
        (_typed(i, MEDICAL_RECORD_TYPE), str(i["value"]).strip())
        for i in patient.get("identifier") or []
        if isinstance(i, Mapping) and str(i.get("value") or "").strip()
    ]
    for _is_mr, value in sorted(values, key=lambda v: not v[0]):
        return value
    raise FhirRecordProblem(f"subject {what} has no identifier")


def _patient_id(resource: Resource, index: BundleIndex) -> str:
    subject = resource.get("subject")
    if not isinstance(subject, Mapping):
        raise FhirRecordProblem("subject is missing")
    identifier = subject.get("identifier")
    if isinstance(identifier, Mapping) and str(identifier.get("value") or "").strip():
        return str(identifier["value"]).strip()
    reference = str(subject.get("reference") or "").strip()
    if not reference:
        raise FhirRecordProblem("subject has no patient identifier or reference")
    if reference.startswith("#") or reference.startswith("urn:"):
        what = "#contained Patient" if reference.startswith("#") else "Bundle entry"
        target = index.resolve(reference, resource)
        if target is None:
            raise FhirRecordProblem(f"subject reference names no {what}")
        if target.get("resourceType") != "Patient":
            raise FhirRecordProblem(f"subject {what} is not a Patient")
        if reference.startswith("urn:") and not target.get("identifier") and target.get("id"):
            return str(target["id"])
        return _patient_identifier(target, what)  # a contained id is local: not a patient id
    match = _PATIENT_REFERENCE.search(reference)
    if match is None:
        raise FhirRecordProblem(
            "subject reference is not a Patient (Patient/id, URL, urn:uuid: or #contained)"
        )
    return match.group(1)


def _accession(resource: Resource, index: BundleIndex) -> tuple[str, str]:
    """(accession number, which field it came from)."""
    own = _identifier_values(resource.get("identifier") or [])
    ordered: list[tuple[bool, str]] = []
    for ref in resource.get("basedOn") or []:
        if not isinstance(ref, Mapping):
            continue
        ordered += _identifier_values(ref.get("identifier"))
        target = index.resolve(str(ref.get("reference") or ""), resource)
        if target is not None and target.get("resourceType") == "ServiceRequest":
            ordered += _identifier_values(target.get("identifier") or [])
    for source, pool, need_acsn in (
        ("identifier[ACSN]", own, True),
        ("basedOn identifier[ACSN]", ordered, True),
        ("identifier", own, False),
        ("basedOn identifier", ordered, False),
    ):
        for is_acsn, value in pool:
            if is_acsn or not need_acsn:
                return value, source
    if isinstance(resource.get("id"), str) and resource["id"].strip():
        return resource["id"].strip(), "id"
    raise FhirRecordProblem("no accession: no identifier, no basedOn identifier, no resource id")


def _procedure(resource: Resource) -> str | None:
    code = resource.get("code") or {}
    if isinstance(code, Mapping) and code.get("text"):
        return str(code["text"])
    for coding in _codings(code):
        if coding.get("display"):
            return str(coding["display"])
    return None


def _dicom_modality(resource: Resource) -> str | None:
    for concept in (resource.get("code"), *(resource.get("category") or [])):
        for coding in _codings(concept):
            if coding.get("system") == DICOM_MODALITY_SYSTEM and coding.get("code"):
                return str(coding["code"])
    return None


def _effective(resource: Resource) -> tuple[Any, str]:
    if resource.get("effectiveDateTime"):
        return resource["effectiveDateTime"], "effectiveDateTime"
    period = resource.get("effectivePeriod")
    if isinstance(period, Mapping) and (period.get("start") or period.get("end")):
        name = "start" if period.get("start") else "end"
        return period[name], f"effectivePeriod.{name}"
    return None, ""


def _report_time(resource: Resource, naive_timezone: tzinfo) -> tuple[datetime, Precision, str]:
    """``issued``, else ``meta.lastUpdated``, else ``effective[x]``; a present but unreadable
    ``issued`` is an error (it would be silently replaced otherwise)."""
    meta = resource.get("meta") if isinstance(resource.get("meta"), Mapping) else {}
    effective, effective_name = _effective(resource)
    for value, name in (
        (resource.get("issued"), "issued"),
        (meta.get("lastUpdated"), "meta.lastUpdated"),
        (effective, effective_name),
    ):
        if value:
            when, precision = parse_fhir_datetime(value, name, naive_timezone)
            return when, precision, name
    raise FhirRecordProblem("no report time: issued, meta.lastUpdated and effective[x] are empty")


def parse_diagnostic_report(
    resource: Resource,
    source: str,
    *,
    include_preliminary: bool = False,
    naive_timezone: tzinfo = UTC,
    exams: ExamMapper | None = None,
    index: BundleIndex | None = None,
    where: str = "",
) -> ReportRecord | RISRecordError | None:
    """One DiagnosticReport → ``ReportRecord``, or the error saying what is wrong with it, or
    ``None`` when the exam mapping says to ignore it."""
    rid = resource.get("id") if isinstance(resource, Mapping) else None
    locator = f"{where}DiagnosticReport/{rid or '<no id>'}"
    exams = exams or ExamMapper()
    index = index or BundleIndex()
    try:
        if resource.get("resourceType") != "DiagnosticReport":
            raise FhirRecordProblem("not a DiagnosticReport")
        status = fhir_status(resource.get("status"), include_preliminary)
        final_at, final_precision, time_source = _report_time(resource, naive_timezone)
        procedure = _procedure(resource)
        codes = [str(c["code"]) for c in _codings(resource.get("code")) if c.get("code")]
        decision = exams.decide(codes, procedure, _dicom_modality(resource))
        if decision.ignore:
            return None
        if decision.modality is None:
            raise FhirRecordProblem(
                "no modality: no exam mapping rule, no DICOM coding, none inferable from code"
            )
        accession, id_source = _accession(resource, index)
        patient_id = _patient_id(resource, index)
        text, text_source = _report_text(resource)
    except RecordProblem as exc:
        return RISRecordError(source=source, locator=locator, reason=str(exc))
    flags: list[str] = []
    exam_at, exam_precision = None, None
    effective, effective_name = _effective(resource)
    if effective:
        try:
            exam_at, exam_precision = parse_fhir_datetime(effective, effective_name, naive_timezone)
        except RecordProblem:
            flags.append("exam_time_unreadable")
    return make_record(
        source,
        locator,
        patient_id=patient_id,
        accession_number=accession,
        modality=decision.modality,
        procedure=procedure,
        report_type=decision.report_type,
        exam_at=exam_at,
        exam_precision=exam_precision,
        report_final_at=final_at,
        report_final_precision=final_precision,
        time_source=time_source,
        result_status=status,
        id_source=id_source,
        text_source=text_source,
        text=text,
        flags=tuple(flags),
    )


def _bundle_resources(bundle: Any) -> Iterator[Resource]:
    """DiagnosticReports of a Bundle (``search.mode=include`` entries and other types skipped)."""
    if isinstance(bundle, Mapping) and bundle.get("resourceType") == "DiagnosticReport":
        yield bundle
        return
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise FhirRecordProblem("not a FHIR Bundle or DiagnosticReport")
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if not isinstance(resource, Mapping):
            yield {"resourceType": "DiagnosticReport", "id": None, "_bad_entry": True}
            continue
        search = entry.get("search")
        if isinstance(search, Mapping) and search.get("mode") == "include":
            continue
        if resource.get("resourceType") == "DiagnosticReport":
            yield resource


class _Reader:
    """What both connectors share: settings of the parse and the count of ignored exams."""

    source: str
    include_preliminary: bool
    naive_timezone: tzinfo
    exams: ExamMapper

    def _parse_all(
        self, found: Iterator[tuple[Resource, BundleIndex, str] | RISRecordError]
    ) -> Iterator[ReportRecord | RISRecordError]:
        """Parse (resource, its Bundle, locator prefix) in order, passing errors through; log
        how many reports the exam mapping ignored."""
        ignored = 0
        for entry in found:
            if isinstance(entry, RISRecordError):
                yield entry
                continue
            item = self._parse(*entry)
            if item is None:
                ignored += 1
            else:
                yield item
        if ignored:
            log.info("%s: %d reports ignored by the exam mapping", self.source, ignored)

    def _parse(
        self, resource: Resource, index: BundleIndex, where: str
    ) -> ReportRecord | RISRecordError | None:
        if resource.get("_bad_entry"):
            return RISRecordError(
                source=self.source, locator=where.rstrip(": "), reason="entry has no resource"
            )
        try:
            return parse_diagnostic_report(
                resource,
                self.source,
                include_preliminary=self.include_preliminary,
                naive_timezone=self.naive_timezone,
                exams=self.exams,
                index=index,
                where=where,
            )
        except Exception as exc:  # a field of an unexpected JSON type: this resource only
            return RISRecordError(
                source=self.source,
                locator=f"{where}DiagnosticReport/{resource.get('id') or '<no id>'}",
                reason=f"cannot read this resource ({type(exc).__name__}: a field of the "
                "wrong JSON type?)",
            )


class FhirConnector(_Reader):
    """DiagnosticReports from a FHIR R4 REST server, paged (``RISConnector``)."""

    def __init__(
        self,
        base_url: str,
        *,
        source: str = "fhir",
        page_size: int = 100,
        client: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
        include_preliminary: bool = False,
        naive_timezone: tzinfo = UTC,
        exams: ExamMapper | None = None,
        max_pages: int = 100_000,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.source = source
        self.page_size = page_size
        self._client = client
        self._headers = {"Accept": "application/fhir+json", **(headers or {})}
        self._timeout = timeout_s
        self.include_preliminary = include_preliminary
        self.naive_timezone = naive_timezone
        self.exams = exams or ExamMapper()
        self.max_pages = max_pages

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Every page of the window's search. HTTP/transport errors raise (the task retries)."""
        check_window(start, end)
        yield from self._parse_all(self._pages(start, end))

    def _pages(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[Resource, BundleIndex, str] | RISRecordError]:
        client = self._client or httpx.Client(timeout=self._timeout)
        try:
            url: str | None = urljoin(self.base_url, "DiagnosticReport")
            params: list[tuple[str, str]] | None = [
                ("_lastUpdated", f"ge{_fhir_instant(start)}"),
                ("_lastUpdated", f"lt{_fhir_instant(end)}"),
                ("_count", str(self.page_size)),
                ("_sort", "_lastUpdated"),
            ]
            seen: set[str] = set()
            page = 0
            while url is not None:
                page += 1
                if page > self.max_pages or url in seen:
                    raise RuntimeError(f"FHIR paging does not end (page {page}, url repeated)")
                seen.add(url)
                response = client.get(url, params=params, headers=self._headers)
                response.raise_for_status()
                try:
                    bundle = response.json()
                    resources = list(_bundle_resources(bundle))
                except RecursionError:
                    raise RuntimeError(f"FHIR page {page} is nested too deeply to read") from None
                except (ValueError, FhirRecordProblem) as exc:
                    raise RuntimeError(
                        f"FHIR page {page} is not a searchset Bundle: {exc}"
                    ) from exc
                index = BundleIndex.of(bundle)
                for position, resource in enumerate(resources, start=1):
                    yield resource, index, f"page {page} entry {position}: "
                url = _next_link(bundle, str(response.url))
                params = None  # the next link carries the query
        finally:
            if self._client is None:
                client.close()


class FhirBundleConnector(_Reader):
    """DiagnosticReports from Bundle JSON files in a folder (``RISConnector``)."""

    def __init__(
        self,
        folder: Path | str,
        *,
        pattern: str = "*.json",
        source: str = "fhir-files",
        include_preliminary: bool = False,
        naive_timezone: tzinfo = UTC,
        exams: ExamMapper | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self.source = source
        self.include_preliminary = include_preliminary
        self.naive_timezone = naive_timezone
        self.exams = exams or ExamMapper()

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Resources whose ``meta.lastUpdated`` (else ``issued``, else file mtime) is in the
        window; an unreadable file yields one error (only in the window of its mtime)."""
        check_window(start, end)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"FHIR bundle folder {self.folder} does not exist")
        yield from self._parse_all(self._files(start, end))

    def _files(
        self, start: datetime, end: datetime
    ) -> Iterator[tuple[Resource, BundleIndex, str] | RISRecordError]:
        for path in sorted(self.folder.glob(self.pattern)):
            mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            try:
                bundle = json.loads(path.read_bytes().decode("utf-8-sig"))  # a BOM is allowed
                resources = list(_bundle_resources(bundle))
            except (
                OSError,
                ValueError,
                UnicodeDecodeError,
                RecursionError,
                FhirRecordProblem,
            ) as exc:
                if start <= mtime < end:
                    reason: object = "not valid JSON"
                    if isinstance(exc, RecursionError):
                        reason = "JSON nested too deeply to read"
                    elif isinstance(exc, FhirRecordProblem):
                        reason = exc
                    elif isinstance(exc, OSError):
                        reason = f"cannot be read ({type(exc).__name__})"
                    yield RISRecordError(source=self.source, locator=path.name, reason=str(reason))
                continue
            index = BundleIndex.of(bundle)
            for position, resource in enumerate(resources, start=1):
                if start <= self._placed_at(resource, mtime) < end:
                    yield resource, index, f"{path.name} entry {position}: "

    def _placed_at(self, resource: Resource, mtime: datetime) -> datetime:
        meta = resource.get("meta") if isinstance(resource.get("meta"), Mapping) else {}
        for value, name in (
            (meta.get("lastUpdated"), "meta.lastUpdated"),
            (resource.get("issued"), "issued"),
        ):
            if value:
                try:
                    return parse_fhir_datetime(value, name, self.naive_timezone)[0]
                except RecordProblem:
                    continue
        return mtime


def _fhir_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _next_link(bundle: Mapping[str, Any], current: str) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
            return urljoin(current, str(link["url"]))
    return None
