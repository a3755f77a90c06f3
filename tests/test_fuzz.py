"""Fuzz targets (hypothesis): every reader and every rule extractor, fed generated input.

Invariants, for any input: no exception escapes (a bad record is an error record, a file-level
problem the reader's own error type), one result per record, and the work is bounded by the
input size (inputs here are size-bounded and every target is linear in them; no timing
assert). In the suite they run a short, derandomized budget (profile ``ci`` of
``tests/conftest.py``: the same examples every run); ``make fuzz`` runs the ``fuzz`` profile,
many more examples with fresh seeds.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extractors.io import InputError, InputProblem, iter_reports
from extractors.results import ReportInput
from extractors.ris.base import ReportRecord, RISRecordError
from extractors.rules import RULE_EXTRACTORS, make_rule_extractor
from extractors.schemas import get_schema

WIDE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
VOCABULARY = (
    "no evidence of pleural effusion pneumothorax cardiomegaly consolidation edema atelectasis "
    "possible likely small left right bilateral heart enlarged normal without mass "
    "calcification birads bi-rads category density breast cad-rads stenosis lad rca lcx "
    "plaque stent impression findings 0 1 2 3 4a 4b 5 6 n a b c d : . , ; ( ) - /"
)
WORDS = [*sorted(set(VOCABULARY.split())), "\n"]
REPORT_TEXT = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=120).map(
    " ".join
)


def temp_file(suffix: str, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return Path(name)


def writable(record: ReportInput) -> None:
    """The record can be written as a UTF-8 result line (lone surrogates would fail here)."""
    json.dumps(record.model_dump(), ensure_ascii=False).encode("utf-8")


# --- JSONL ------------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
JSONL_LINES = st.lists(
    st.one_of(
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
        st.fixed_dictionaries(
            {"report_id": JSON_VALUES, "text": st.one_of(REPORT_TEXT, JSON_VALUES)},
            optional={"age": JSON_VALUES},
        ).map(lambda d: json.dumps(d).encode()),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    ),
    max_size=12,
)


@given(JSONL_LINES)
def test_jsonl_reader_gives_one_record_per_line(lines: list[bytes]) -> None:
    path = temp_file(".jsonl", b"\n".join(lines) + b"\n")
    try:
        items = list(iter_reports(path))
    except InputError as exc:  # no object line has report_id and text: a file-level error
        assert "no line of" in str(exc)
        return
    finally:
        path.unlink()
    physical = [line for line in b"\n".join(lines).split(b"\n") if line.strip()]
    assert len(items) == len(physical)
    for item in items:
        assert isinstance(item, ReportInput | InputProblem)
        if isinstance(item, ReportInput):
            writable(item)


# --- CSV ----------------------------------------------------------------------------------------
PLAIN = st.text(
    alphabet=st.characters(exclude_characters='",\r\n\x00', exclude_categories=("Cs",)),
    max_size=30,
)
ROWS = st.lists(st.tuples(PLAIN.filter(lambda s: s.strip()), PLAIN), min_size=1, max_size=12)


def serialize(rows: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["report_id", "text"])
    writer.writerows(rows)
    return out.getvalue()


@given(ROWS, st.data())
def test_csv_one_stray_quote_never_merges_rows(rows: list[tuple[str, str]], data: Any) -> None:
    """Quote-free rows plus ONE stray quote: still one result per row, none from another row."""
    text = serialize(rows)
    header_end = text.index("\n") + 1
    at = data.draw(st.integers(header_end, len(text)))
    path = temp_file(".csv", (text[:at] + '"' + text[at:]).encode())
    try:
        items = list(iter_reports(path))
    finally:
        path.unlink()
    extra = 1 if at == len(text) else 0  # a quote after the last newline is a line of its own
    assert len(items) == len(rows) + extra
    for item, row in zip(items, rows, strict=False):  # in order: item k is row k's result
        if isinstance(item, ReportInput):  # its own row, at most with the stray quote in it
            assert (item.report_id.replace('"', ""), item.text.replace('"', "")) == row


@given(
    st.text(
        alphabet=st.sampled_from(list('ab ,"\n\r\x00\ufffdé;')),
        max_size=200,
    )
)
def test_csv_reader_survives_any_text(body: str) -> None:
    path = temp_file(".csv", ("report_id,text\n" + body).encode("utf-8", "surrogatepass"))
    try:
        items = list(iter_reports(path))
    finally:
        path.unlink()
    lines = [item.line for item in items if isinstance(item, InputProblem)]
    assert lines == sorted(set(lines)) and all(line >= 2 for line in lines)
    assert len(items) <= body.count("\n") + body.count("\r") + 1
    for item in items:
        if isinstance(item, ReportInput):
            writable(item)


# --- HL7 v2 (the connector's public API: fetch yields records and error records) ---------------
HL7_FIELD = st.text(alphabet=st.sampled_from(list("AZaz09 ^~\\&.-:")), max_size=12)
HL7_SEGMENT = st.tuples(
    st.sampled_from(["MSH", "PID", "OBR", "OBX", "NTE", "EVN", "ZZZ"]),
    st.lists(HL7_FIELD, max_size=26),
).map(lambda s: "|".join([s[0], *s[1]]) if s[0] != "MSH" else "MSH|^~\\&|" + "|".join(s[1]))
TEMPLATE = (
    "MSH|^~\\&|RIS|H|R|R|20250210090000||ORU^R01|M1|P|2.5.1\r"
    "PID|1||PT1^^^H^MR||DOE^JANE\r"
    "OBR|1|O1|ACC1^RIS|71046^XR CHEST^CPT|||20250210081500|||||||||||||||20250210083000||CR|F\r"
    "OBX|1|TX|GDT^Report text^L||{text}||||||F\r"
)


@given(
    st.lists(
        st.one_of(
            st.lists(HL7_SEGMENT, max_size=8).map("\r".join),
            REPORT_TEXT.map(lambda t: TEMPLATE.format(text=t.replace("\n", " "))),
        ),
        max_size=4,
    ).map(lambda messages: "\r".join(messages)),
    st.sampled_from(["utf-8", "latin-1"]),
)
def test_hl7_connector_never_raises_and_types_every_item(content: str, encoding: str) -> None:
    from extractors.ris.hl7v2 import Hl7FolderConnector

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "feed.hl7").write_bytes(content.encode(encoding, "replace"))
        items = list(Hl7FolderConnector(folder).fetch(*WIDE))
    assert all(isinstance(i, ReportRecord | RISRecordError) for i in items)
    if content.strip():
        assert items, "a non-empty file yields at least one record or error"


# --- FHIR Bundle files ------------------------------------------------------------------------
INSTANTS = st.sampled_from(["2025-02-10T10:00:00Z", "2025-02-10", "yesterday", "", None])
FHIR_REPORT = st.fixed_dictionaries(
    {"resourceType": st.just("DiagnosticReport")},
    optional={
        "id": st.one_of(st.text(max_size=8), JSON_VALUES),
        "meta": st.one_of(st.fixed_dictionaries({"lastUpdated": INSTANTS}), JSON_VALUES),
        "status": st.sampled_from(["final", "preliminary", "amended", "", None, 3]),
        "identifier": st.one_of(
            st.lists(st.fixed_dictionaries({"value": st.text(max_size=8)}), max_size=2),
            JSON_VALUES,
        ),
        "code": st.one_of(
            st.fixed_dictionaries({"text": st.sampled_from(["XR CHEST", "MG", "CT CORONARY"])}),
            JSON_VALUES,
        ),
        "subject": st.one_of(
            st.fixed_dictionaries({"reference": st.text(max_size=12)}), JSON_VALUES
        ),
        "issued": INSTANTS,
        "conclusion": st.one_of(REPORT_TEXT, JSON_VALUES),
        "presentedForm": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"contentType": st.sampled_from(["text/plain", "application/pdf"])},
                    optional={"data": st.text(max_size=20)},
                ),
                max_size=2,
            ),
            JSON_VALUES,
        ),
    },
)


@given(
    st.lists(
        st.one_of(
            FHIR_REPORT.map(lambda r: {"resource": r}),
            JSON_VALUES.map(lambda v: {"resource": v}),
            st.just({"fullUrl": "urn:x"}),
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_fhir_bundle_connector_never_raises_and_types_every_item(
    entries: list[dict[str, Any]], as_bundle: bool
) -> None:
    from extractors.ris.fhir import FhirBundleConnector

    content: Any = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    if not as_bundle:
        entries = entries[:1]
        content = entries[0].get("resource") if entries else {}
    reports = sum(
        isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "DiagnosticReport"
        for e in entries
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bundle.json"
        path.write_text(json.dumps(content))
        stamp = datetime(2025, 2, 10, 12, tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
        items = list(FhirBundleConnector(folder).fetch(*WIDE))
    assert len(items) >= reports, "every DiagnosticReport yields a record or an error"
    assert all(isinstance(i, ReportRecord | RISRecordError) for i in items)


# --- rule extractors --------------------------------------------------------------------------
@pytest.mark.parametrize("schema_name", sorted(RULE_EXTRACTORS))
@given(texts=st.lists(REPORT_TEXT, min_size=1, max_size=6))
def test_rule_extractors_give_one_valid_result_per_report(
    schema_name: str, texts: list[str]
) -> None:
    extractor = make_rule_extractor(get_schema(schema_name))
    reports = [ReportInput(report_id=str(i), text=t) for i, t in enumerate(texts)]
    results = extractor.extract_batch(reports)
    assert [r.report_id for r in results] == [r.report_id for r in reports]
    for report, result in zip(reports, results, strict=True):
        if result.status == "error":
            assert not report.text.strip() or result.error
            continue
        assert extractor.schema.validate_labels(result.labels) == result.labels
        for spans in result.evidence.values():
            for ev in spans:
                assert report.text[ev.start : ev.end] == ev.text
