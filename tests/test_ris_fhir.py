"""FHIR connector against a real (tiny) FHIR server started here, and against Bundle files."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import pytest

from extractors.ris.base import ReportRecord, RISConnector, RISRecordError
from extractors.ris.fhir import FhirBundleConnector, FhirConnector

DAY = datetime(2025, 2, 10, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)


def b64(text: str, encoding: str = "utf-8") -> str:
    return base64.b64encode(text.encode(encoding)).decode()


def report(rid: str, hours: float, **over: Any) -> dict[str, Any]:
    """A final chest-radiograph DiagnosticReport updated ``hours`` after DAY."""
    stamp = (DAY + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": {"lastUpdated": stamp},
        "status": "final",
        "identifier": [
            {"system": "urn:oid:1.2.3", "value": f"ORDER-{rid}"},
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                    ]
                },
                "value": f"ACC-{rid}",
            },
        ],
        "category": [{"coding": [{"system": "http://loinc.org", "code": "LP29684-5"}]}],
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "36643-5", "display": "XR Chest 2 Views"}
            ],
            "text": "XR CHEST PA AND LATERAL",
        },
        "subject": {"reference": f"Patient/PT-{rid}"},
        "effectiveDateTime": stamp,
        "issued": stamp,
        "presentedForm": [{"contentType": "text/plain", "data": b64(f"FINDINGS: report {rid}.")}],
    }
    resource.update(over)
    return {k: v for k, v in resource.items() if v is not None}


MAMMO_CODE = {
    "coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MG"}],
    "text": "Screening mammogram",
}

RESOURCES = [
    report("r00", -2),  # before the window
    report("r01", 0),  # exactly at the start: inside
    report(
        "r02",
        1,
        code=MAMMO_CODE,
        presentedForm=[
            {"contentType": "application/pdf", "data": b64("%PDF-1.4")},
            {
                "contentType": "text/plain; charset=ISO-8859-1",
                "data": b64("Dense breasts. BI-RADS 2. Résumé ok.", "latin-1"),
            },
        ],
    ),
    report("r03", 2, presentedForm=None, conclusion="No acute cardiopulmonary process."),
    report("r04", 3, presentedForm=None),  # missing text
    report("r05", 4, presentedForm=[{"contentType": "text/plain", "data": "%%not base64%%"}]),
    report("r06", 5, issued=None),  # no issued: the report time falls back to meta.lastUpdated
    report("r07", 6, status="preliminary"),
    report("r08", 7, subject={"display": "no reference"}),
    report("r09", 8, identifier=None),  # no identifier: the resource id is the accession
    report(
        "r10",
        9,
        code={"text": "CTA CORONARY ARTERIES WITH CONTRAST"},
        subject={"identifier": {"value": "MRN-777"}},
    ),
    report("r11", 10, code={"text": "Outside consult"}),  # no modality anywhere
    report("r12", 23.99),
    report("r13", 24),  # exactly at the end: next window
]


class FhirServer:
    """``GET /fhir/DiagnosticReport`` with ``_lastUpdated`` ge/lt, ``_count`` and offset paging."""

    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.requests: list[str] = []
        self.fail_next = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                if outer.fail_next:
                    outer.fail_next = False
                    self.send_error(503, "try later")
                    return
                parsed = urlparse(self.path)
                if parsed.path != "/fhir/DiagnosticReport":
                    self.send_error(404)
                    return
                body = outer.search(parse_qs(parsed.query))
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def search(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def stamp(s: str) -> datetime:
            return datetime.fromisoformat(s)

        bounds = query.get("_lastUpdated", [])
        lo = [stamp(b[2:]) for b in bounds if b.startswith("ge")]
        hi = [stamp(b[2:]) for b in bounds if b.startswith("lt")]
        hits = [
            r
            for r in self.resources
            if all(stamp(r["meta"]["lastUpdated"]) >= x for x in lo)
            and all(stamp(r["meta"]["lastUpdated"]) < x for x in hi)
        ]
        hits.sort(key=lambda r: r["meta"]["lastUpdated"])
        count = int(query.get("_count", ["50"])[0])
        offset = int(query.get("_offset", ["0"])[0])
        page = hits[offset : offset + count]
        entries: list[dict[str, Any]] = [
            {
                "fullUrl": f"{self.url}/DiagnosticReport/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
        if page:  # an _include'd Patient, which the connector must ignore
            entries.append(
                {"resource": {"resourceType": "Patient", "id": "x"}, "search": {"mode": "include"}}
            )
        links = [{"relation": "self", "url": self.url}]
        if offset + count < len(hits):
            nxt = {**{k: v for k, v in query.items()}, "_offset": [str(offset + count)]}
            # relative link, as some servers send: resolved against the page URL
            links.append(
                {"relation": "next", "url": "DiagnosticReport?" + urlencode(nxt, doseq=True)}
            )
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(hits),
            "link": links,
            "entry": entries,
        }


@pytest.fixture(scope="module")
def server() -> Iterator[FhirServer]:
    srv = FhirServer(RESOURCES)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def check_day(items: list[ReportRecord | RISRecordError], where: str = "") -> None:
    good = {
        i.locator.split("DiagnosticReport/")[1]: i for i in items if isinstance(i, ReportRecord)
    }
    bad = {
        i.locator.split("DiagnosticReport/")[1]: i.reason
        for i in items
        if isinstance(i, RISRecordError)
    }
    assert sorted(good) == ["r01", "r02", "r03", "r06", "r09", "r10", "r12"]
    assert good["r01"].text == "FINDINGS: report r01."
    assert (good["r01"].patient_id, good["r01"].accession_number) == ("PT-r01", "ACC-r01")
    assert (good["r01"].modality, good["r01"].report_type) == ("DX", "cxr")
    assert good["r01"].report_final_at == DAY and good["r01"].exam_at == DAY
    assert good["r02"].text == "Dense breasts. BI-RADS 2. Résumé ok."  # pdf part skipped
    assert (good["r02"].modality, good["r02"].report_type) == ("MG", "mammo")
    assert good["r03"].text == "No acute cardiopulmonary process."
    assert (good["r01"].time_source, good["r01"].id_source) == ("issued", "identifier[ACSN]")
    assert (good["r03"].text_source, good["r01"].text_source) == (
        "conclusion",
        "presentedForm text/plain",
    )
    assert (good["r06"].time_source, good["r06"].report_final_at) == (
        "meta.lastUpdated",
        DAY + timedelta(hours=5),
    )
    assert (good["r09"].accession_number, good["r09"].id_source) == ("r09", "id")
    assert (good["r10"].patient_id, good["r10"].modality, good["r10"].report_type) == (
        "MRN-777",
        "CT",
        "ccta",
    )
    assert bad == {
        "r04": "no report text: no text presentedForm, conclusion or narrative",
        "r05": "presentedForm[0].data is not valid base64",
        "r07": "status 'preliminary' is preliminary (kept only with RRIEF_RIS_INCLUDE_PRELIMINARY=true)",
        "r08": "subject has no patient identifier or reference",
        "r11": "no modality: no exam mapping rule, no DICOM coding, none inferable from code",
    }


def test_rest_search_pages_through_the_window(server: FhirServer) -> None:
    server.requests.clear()
    connector = FhirConnector(server.url, source="fhir-test", page_size=4)
    assert isinstance(connector, RISConnector)
    items = list(connector.fetch(DAY, NEXT))
    check_day(items)
    assert len(items) == 12 and len(server.requests) == 3  # 12 resources, 4 per page
    first = parse_qs(urlparse(server.requests[0]).query)
    assert first["_lastUpdated"] == ["ge2025-02-10T00:00:00.000Z", "lt2025-02-11T00:00:00.000Z"]
    assert parse_qs(urlparse(server.requests[2]).query)["_offset"] == ["8"]
    assert items[0].locator == "page 1 entry 1: DiagnosticReport/r01"


def test_server_errors_raise_for_the_task_to_retry(server: FhirServer) -> None:
    server.fail_next = True
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        list(FhirConnector(server.url).fetch(DAY, NEXT))
    # the next attempt works
    assert len(list(FhirConnector(server.url, page_size=50).fetch(DAY, NEXT))) == 12


def test_bundle_files(tmp_path: Path) -> None:
    def bundle(resources: list[dict[str, Any]]) -> str:
        return json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in resources],
            }
        )

    (tmp_path / "a.json").write_text(bundle(RESOURCES[:7]))
    (tmp_path / "b.json").write_text(bundle(RESOURCES[7:]))
    (tmp_path / "c.json").write_text(json.dumps(RESOURCES[1] | {"id": "r01"}))  # bare resource
    (tmp_path / "broken.json").write_text('{"resourceType": "Bundle", "entry": [')
    (tmp_path / "other.json").write_text('{"resourceType": "Patient"}')
    in_window = (DAY + timedelta(hours=12)).timestamp()
    for name in ("broken.json", "other.json"):
        os.utime(tmp_path / name, (in_window, in_window))

    items = list(FhirBundleConnector(tmp_path).fetch(DAY, NEXT))
    file_errors = [
        i for i in items if isinstance(i, RISRecordError) and "Diagnostic" not in i.locator
    ]
    assert [(e.locator, e.reason) for e in file_errors] == [
        ("broken.json", "not valid JSON"),
        ("other.json", "not a FHIR Bundle or DiagnosticReport"),
    ]
    rest = [i for i in items if i not in file_errors]
    duplicates = [i for i in rest if i.locator == "c.json entry 1: DiagnosticReport/r01"]
    assert len(duplicates) == 1  # the same report twice: the warehouse UPSERT dedupes
    check_day([i for i in rest if i not in duplicates])
    # the unreadable files belong to the window of their modification time only
    later = list(FhirBundleConnector(tmp_path).fetch(NEXT, NEXT + timedelta(days=1)))
    assert [i.locator for i in later] == ["b.json entry 7: DiagnosticReport/r13"]
