"""FHIR R4 connector: ``DiagnosticReport`` resources from a REST endpoint or from Bundle files.

REST: ``GET [base]/DiagnosticReport?_lastUpdated=ge<start>&_lastUpdated=lt<end>&_count=N``,
following ``link[relation=next]`` until the last page. Files: every ``*.json`` Bundle (or bare
DiagnosticReport) in a folder, windowed on ``meta.lastUpdated`` (else ``issued``, else the file's
modification time).

Text comes from ``presentedForm`` (``text/plain`` attachments, base64 ``data``), else from
``conclusion``. The report-final time is ``issued``; the exam time ``effective[x]``. A resource
that cannot be read (no text, bad base64, missing ``issued``, no patient or accession, not
final) becomes a ``RISRecordError`` naming the resource id and the problem; the rest goes on.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from extractors.ris.base import (
    ReportRecord,
    RISRecordError,
    as_aware,
    check_window,
    make_record,
)
from extractors.ris.mapping import ReportTypeFn, infer_modality

log = logging.getLogger("rrief.ris.fhir")

FINAL_STATUSES = frozenset({"final", "amended", "corrected", "appended"})
DICOM_MODALITY_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
ACCESSION_TYPE = "ACSN"  # v2-0203 identifier type "Accession ID"

Resource = Mapping[str, Any]


class FhirRecordProblem(ValueError):
    """A resource field that cannot be used (message names the field, never its value)."""


def _parse_instant(value: Any, field: str, naive_timezone: tzinfo) -> datetime:
    if not isinstance(value, str) or not value:
        raise FhirRecordProblem(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FhirRecordProblem(f"{field} is not a FHIR dateTime") from None
    if len(value) == 10:  # a bare date: midnight in the site's zone
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    return as_aware(parsed, naive_timezone)


def _codings(concept: Any) -> list[Mapping[str, Any]]:
    if isinstance(concept, Mapping):
        return [c for c in concept.get("coding") or [] if isinstance(c, Mapping)]
    return []


def _report_text(resource: Resource) -> str:
    parts: list[str] = []
    for i, form in enumerate(resource.get("presentedForm") or []):
        content_type = str(form.get("contentType", ""))
        if not content_type.lower().startswith("text/plain"):
            continue
        data = form.get("data")
        if data is None:
            if form.get("url"):
                raise FhirRecordProblem(
                    f"presentedForm[{i}] refers to a url; only inline data is read"
                )
            continue
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise FhirRecordProblem(f"presentedForm[{i}].data is not valid base64") from None
        charset = "utf-8"
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                charset = value.strip().strip('"')
        try:
            parts.append(raw.decode(charset))
        except (UnicodeDecodeError, LookupError):
            raise FhirRecordProblem(f"presentedForm[{i}].data is not {charset} text") from None
    text = "\n\n".join(p for p in parts if p.strip())
    if not text:
        conclusion = resource.get("conclusion")
        text = conclusion if isinstance(conclusion, str) else ""
    if not text.strip():
        raise FhirRecordProblem("no report text: no text/plain presentedForm and no conclusion")
    return text


def _patient_id(resource: Resource) -> str:
    subject = resource.get("subject") or {}
    identifier = subject.get("identifier") or {}
    if identifier.get("value"):
        return str(identifier["value"])
    reference = str(subject.get("reference") or "")
    if reference.startswith("Patient/") and len(reference) > len("Patient/"):
        return reference.split("/", 1)[1]
    raise FhirRecordProblem("subject has no patient identifier or Patient/<id> reference")


def _accession(resource: Resource) -> str:
    identifiers = [i for i in resource.get("identifier") or [] if isinstance(i, Mapping)]
    for ident in identifiers:
        is_accession = any(c.get("code") == ACCESSION_TYPE for c in _codings(ident.get("type")))
        if is_accession and ident.get("value"):
            return str(ident["value"])
    for ident in identifiers:
        if ident.get("value"):
            return str(ident["value"])
    raise FhirRecordProblem("no identifier (accession number)")


def _procedure(resource: Resource) -> str | None:
    code = resource.get("code") or {}
    if code.get("text"):
        return str(code["text"])
    for coding in _codings(code):
        if coding.get("display"):
            return str(coding["display"])
    return None


def _modality(resource: Resource, procedure: str | None) -> str:
    concepts = [resource.get("code"), *(resource.get("category") or [])]
    for concept in concepts:
        for coding in _codings(concept):
            if coding.get("system") == DICOM_MODALITY_SYSTEM and coding.get("code"):
                return str(coding["code"])
    guessed = infer_modality(procedure)
    if guessed is None:
        raise FhirRecordProblem("no DICOM modality coding and none inferable from code.text")
    return guessed


def parse_diagnostic_report(
    resource: Resource,
    source: str,
    *,
    statuses: frozenset[str] = FINAL_STATUSES,
    naive_timezone: tzinfo = UTC,
    report_type: ReportTypeFn | None = None,
    where: str = "",
) -> ReportRecord | RISRecordError:
    """One DiagnosticReport → ``ReportRecord``, or the error saying what is wrong with it."""
    rid = resource.get("id") if isinstance(resource, Mapping) else None
    locator = f"{where}DiagnosticReport/{rid or '<no id>'}"
    try:
        if resource.get("resourceType") != "DiagnosticReport":
            raise FhirRecordProblem("not a DiagnosticReport")
        status = resource.get("status")
        if status not in statuses:
            raise FhirRecordProblem(f"status {status!r} is not one of {sorted(statuses)}")
        procedure = _procedure(resource)
        modality = _modality(resource, procedure)
        effective = resource.get("effectiveDateTime") or (
            (resource.get("effectivePeriod") or {}).get("start")
        )
        fields: dict[str, Any] = {
            "patient_id": _patient_id(resource),
            "accession_number": _accession(resource),
            "modality": modality,
            "procedure": procedure,
            "report_final_at": _parse_instant(resource.get("issued"), "issued", naive_timezone),
            "exam_at": (
                _parse_instant(effective, "effective[x]", naive_timezone) if effective else None
            ),
            "text": _report_text(resource),
        }
    except FhirRecordProblem as exc:
        return RISRecordError(source=source, locator=locator, reason=str(exc))
    if report_type is not None:
        fields["report_type"] = report_type(modality, procedure)
    return make_record(source, locator, **fields)


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
        if (entry.get("search") or {}).get("mode") == "include":
            continue
        if resource.get("resourceType") == "DiagnosticReport":
            yield resource


class FhirConnector:
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
        statuses: Iterable[str] = FINAL_STATUSES,
        naive_timezone: tzinfo = UTC,
        report_type: ReportTypeFn | None = None,
        max_pages: int = 100_000,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.source = source
        self.page_size = page_size
        self._client = client
        self._headers = {"Accept": "application/fhir+json", **(headers or {})}
        self._timeout = timeout_s
        self.statuses = frozenset(statuses)
        self.naive_timezone = naive_timezone
        self.report_type = report_type
        self.max_pages = max_pages

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Every page of the window's search. HTTP/transport errors raise (the task retries)."""
        check_window(start, end)
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
                except (ValueError, FhirRecordProblem) as exc:
                    raise RuntimeError(
                        f"FHIR page {page} is not a searchset Bundle: {exc}"
                    ) from exc
                for position, resource in enumerate(resources, start=1):
                    yield self._parse(resource, f"page {page} entry {position}: ")
                url = _next_link(bundle, str(response.url))
                params = None  # the next link carries the query
        finally:
            if self._client is None:
                client.close()

    def _parse(self, resource: Resource, where: str) -> ReportRecord | RISRecordError:
        if resource.get("_bad_entry"):
            return RISRecordError(
                source=self.source, locator=where.rstrip(": "), reason="entry has no resource"
            )
        return parse_diagnostic_report(
            resource,
            self.source,
            statuses=self.statuses,
            naive_timezone=self.naive_timezone,
            report_type=self.report_type,
            where=where,
        )


class FhirBundleConnector:
    """DiagnosticReports from Bundle JSON files in a folder (``RISConnector``)."""

    def __init__(
        self,
        folder: Path | str,
        *,
        pattern: str = "*.json",
        source: str = "fhir-files",
        statuses: Iterable[str] = FINAL_STATUSES,
        naive_timezone: tzinfo = UTC,
        report_type: ReportTypeFn | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self.source = source
        self.statuses = frozenset(statuses)
        self.naive_timezone = naive_timezone
        self.report_type = report_type

    def fetch(self, start: datetime, end: datetime) -> Iterator[ReportRecord | RISRecordError]:
        """Resources whose ``meta.lastUpdated`` (else ``issued``, else file mtime) is in the
        window; an unreadable file yields one error (only in the window of its mtime)."""
        check_window(start, end)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"FHIR bundle folder {self.folder} does not exist")
        for path in sorted(self.folder.glob(self.pattern)):
            mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            try:
                bundle = json.loads(path.read_text(encoding="utf-8"))
                resources = list(_bundle_resources(bundle))
            except (ValueError, UnicodeDecodeError, FhirRecordProblem) as exc:
                if start <= mtime < end:
                    reason = exc if isinstance(exc, FhirRecordProblem) else "not valid JSON"
                    yield RISRecordError(source=self.source, locator=path.name, reason=str(reason))
                continue
            for position, resource in enumerate(resources, start=1):
                if not start <= self._placed_at(resource, mtime) < end:
                    continue
                where = f"{path.name} entry {position}: "
                if resource.get("_bad_entry"):
                    yield RISRecordError(
                        source=self.source,
                        locator=where.rstrip(": "),
                        reason="entry has no resource",
                    )
                    continue
                yield parse_diagnostic_report(
                    resource,
                    self.source,
                    statuses=self.statuses,
                    naive_timezone=self.naive_timezone,
                    report_type=self.report_type,
                    where=where,
                )

    def _placed_at(self, resource: Resource, mtime: datetime) -> datetime:
        for value, field in (
            ((resource.get("meta") or {}).get("lastUpdated"), "meta.lastUpdated"),
            (resource.get("issued"), "issued"),
        ):
            if value:
                try:
                    return _parse_instant(value, field, self.naive_timezone)
                except FhirRecordProblem:
                    continue
        return mtime


def _fhir_instant(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _next_link(bundle: Mapping[str, Any], current: str) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
            return urljoin(current, str(link["url"]))
    return None
