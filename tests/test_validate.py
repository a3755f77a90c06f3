"""Great Expectations validation built from the schema: every check fails for the right row
with a precise reason, and real rule-extractor output on realistic reports passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from extractors.demo.reports import generate_reports
from extractors.extract import make_extractor
from extractors.results import ReportInput
from extractors.schemas import get_schema
from extractors.validate import (
    ValidationItem,
    ValidationPolicy,
    finding_paths,
    label_paths,
    validate_results,
)

CXR = get_schema("cxr")
MAMMO = get_schema("mammo")
CCTA = get_schema("ccta")
TEXT = (
    "FINDINGS: There is a small left pleural effusion. No pneumothorax. Heart size is normal.\n"
    "IMPRESSION: Small left pleural effusion."
)


def extracted(schema_name: str, n: int = 30) -> list[ValidationItem]:
    """Real rule-extractor results on demo reports of one type."""
    schema = get_schema(schema_name)
    reports = [r for r in generate_reports(per_day=60, days=3) if r.report_type == schema_name][:n]
    results = make_extractor("rules", schema).extract_batch(
        [ReportInput(report_id=r.accession_number, text=r.text) for r in reports]
    )
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    return [
        ValidationItem(
            report_id=r.report_id or "", text=rep.text, labels=r.labels or {}, evidence=r.evidence
        )
        for r, rep in zip(results, reports, strict=True)
    ]


def cxr_item(report_id: str = "r1", **label_changes: Any) -> ValidationItem:
    labels = CXR.empty_labels()
    labels["Pleural Effusion"] = "positive"
    labels.update(label_changes)
    start = TEXT.index("There is")
    end = TEXT.index("effusion.") + len("effusion.")
    return ValidationItem(
        report_id=report_id,
        text=TEXT,
        labels=labels,
        evidence={"Pleural Effusion": [{"text": TEXT[start:end], "start": start, "end": end}]},
    )


def checks(verdict_failures: list[Any]) -> set[str]:
    return {f.check for f in verdict_failures}


def test_suites_follow_the_schema() -> None:
    assert [lp.path for lp in label_paths(CXR)] == CXR.field_names
    assert "birads.left" in [lp.path for lp in label_paths(MAMMO)]
    # findings: enums that can be denied and unmentioned; grades/categories are not
    assert {fp.path for fp in finding_paths(CXR)} == set(CXR.field_names)
    mammo_findings = {fp.path for fp in finding_paths(MAMMO)}
    assert "mass.left" in mammo_findings and "birads.left" not in mammo_findings
    assert "density" not in mammo_findings
    calc = next(fp for fp in finding_paths(MAMMO) if fp.path == "calcifications.right")
    assert calc.positive_values == {"suspicious", "benign", "present"}
    assert finding_paths(CCTA) == []


@pytest.mark.parametrize("schema_name", ["cxr", "mammo", "ccta"])
def test_rule_output_on_realistic_reports_passes(schema_name: str) -> None:
    items = extracted(schema_name)
    verdicts = validate_results(get_schema(schema_name), items)
    assert [v.report_id for v in verdicts] == [i.report_id for i in items]
    failing = [(v.report_id, [f.reason for f in v.failures]) for v in verdicts if not v.passed]
    assert failing == []


def test_label_checks_fail_only_the_bad_row_with_reasons() -> None:
    good = cxr_item("good")
    bad = cxr_item("bad", Edema="maybe", Pneumothorax=None)
    bad.labels["Made Up"] = "positive"
    del bad.labels["Fracture"]
    verdicts = validate_results(CXR, [good, bad])
    assert verdicts[0].passed and verdicts[0].failures == []
    assert not verdicts[1].passed
    by_check = {f.check: f for f in verdicts[1].failures}
    assert set(by_check) == {"value_in_enum", "not_null", "label_known", "required"}
    assert (
        "'maybe'" in by_check["value_in_enum"].reason and by_check["value_in_enum"].path == "Edema"
    )
    assert by_check["not_null"].path == "Pneumothorax"
    assert by_check["label_known"].path == "Made Up"
    assert by_check["required"].path == "Fracture"
    assert all(f.expectation.startswith("expect_") for f in verdicts[1].failures)


def test_per_key_fields_and_types() -> None:
    item = extracted("mammo", 1)[0]
    labels = dict(item.labels)
    labels["birads"] = "4"  # an object keyed by breast is required
    labels["mass"] = {**labels["mass"], "middle": "present"}
    labels["density"] = 3  # wrong type (and not an ACR letter)
    verdict = validate_results(MAMMO, [item.model_copy(update={"labels": labels})])[0]
    reasons = {(f.check, f.path): f.reason for f in verdict.failures}
    assert ("value_type", "birads") in reasons and "not the object" in reasons[
        ("value_type", "birads")
    ]
    assert ("label_known", "mass.middle") in reasons
    assert ("value_type", "density") in reasons
    # a null BI-RADS is allowed (nullable: the report states no assessment)
    labels_ok = {**item.labels, "birads": {"left": None, "right": "2"}, "exam_birads": "2"}
    assert validate_results(MAMMO, [item.model_copy(update={"labels": labels_ok})])[0].passed


def test_enum_lists() -> None:
    item = extracted("ccta", 1)[0]
    ok = item.model_copy(update={"labels": {**item.labels, "modifiers": ["S", "HRP"]}})
    bad = item.model_copy(update={"labels": {**item.labels, "modifiers": ["HRP", "XYZ"]}})
    not_list = item.model_copy(update={"labels": {**item.labels, "modifiers": "HRP"}})
    v_ok, v_bad, v_not_list = validate_results(CCTA, [ok, bad, not_list])
    assert v_ok.passed
    assert [(f.check, f.path) for f in v_bad.failures] == [("value_in_enum", "modifiers")]
    assert "'XYZ'" in v_bad.failures[0].reason
    assert [(f.check, f.path) for f in v_not_list.failures] == [("value_type", "modifiers")]


def test_evidence_offsets_checked_against_the_text() -> None:
    base = cxr_item("e")
    span = base.evidence["Pleural Effusion"][0]
    cases = {
        "evidence_text_matches": {
            "text": span["text"],
            "start": span["start"] + 1,
            "end": span["end"] + 1,
        },
        "evidence_inside_text": {"text": "x", "start": 5, "end": len(TEXT) + 10},
        "evidence_nonempty": {"text": "", "start": 10, "end": 10},
        "evidence_start": {"text": "x", "start": -3, "end": 4},
    }
    items = [base]
    for check, bad_span in cases.items():
        items.append(
            base.model_copy(
                update={"report_id": check, "evidence": {"Pleural Effusion": [bad_span]}}
            )
        )
    items.append(base.model_copy(update={"report_id": "unknown", "evidence": {"Pleura": [span]}}))
    verdicts = validate_results(CXR, items)
    assert verdicts[0].passed
    for verdict, check in zip(verdicts[1:5], cases, strict=True):
        assert check in checks(verdict.failures), (check, verdict.failures)
    assert checks(verdicts[5].failures) == {"evidence_label_known"}
    inside = next(f for f in verdicts[2].failures if f.check == "evidence_inside_text")
    assert f"{len(TEXT)}-character" in inside.reason


def test_prevalence_sanity_fails_the_positive_rows_of_a_suspicious_batch() -> None:
    positives = [cxr_item(f"p{i}") for i in range(57)]
    negatives = [cxr_item(f"n{i}", **{"Pleural Effusion": "negative"}) for i in range(3)]
    verdicts = validate_results(CXR, positives + negatives)  # 95% positive: at the limit
    assert all(v.passed for v in verdicts)
    positives.append(cxr_item("p57"))
    verdicts = validate_results(CXR, positives + negatives[:1])  # 58/59 > 95%
    assert not any(v.passed for v in verdicts[:58])
    assert verdicts[58].passed  # the negative report is not suspect
    failure = verdicts[0].failures[0]
    assert failure.check == "prevalence" and failure.path == "Pleural Effusion"
    assert "98%" in failure.reason and "59 reports" in failure.reason


def test_prevalence_policy_is_configurable() -> None:
    items = [cxr_item(f"p{i}") for i in range(10)]
    assert all(v.passed for v in validate_results(CXR, items))  # below min_reports
    strict = ValidationPolicy(max_positive_rate=0.5, min_reports=5)
    assert not any(v.passed for v in validate_results(CXR, items, strict))
    relaxed = strict.model_copy(update={"field_max_positive_rate": {"Pleural Effusion": 1.0}})
    assert all(v.passed for v in validate_results(CXR, items, relaxed))


def test_empty_batch() -> None:
    assert validate_results(CXR, []) == []


def test_kept_results_are_gx_results_and_render_as_data_docs(tmp_path: Path) -> None:
    from extractors.validate import ValidationRun, validate_batch
    from extractors.validate.store import (
        MAX_STORED_CHARS,
        load_result,
        render_result_page,
        result_file,
    )

    run = ValidationRun(
        root=tmp_path,
        run_name="scheduled__2025-03-04T02:00:00+00:00",
        run_time=datetime(2025, 3, 4, 2, tzinfo=UTC),
        batch="cxr 0a1b2c3d..9f8e7d6c (3)",
    )
    long_value = "small left effusion seen on the frontal view, " * 3  # a model's prose
    items = [
        cxr_item("r1"),
        cxr_item("r2", **{"Pneumothorax": "maybe"}),
        cxr_item("r3", **{"Cardiomegaly": long_value}),
    ]
    batch = validate_batch(CXR, items, ValidationPolicy(), run)
    assert [v.passed for v in batch.verdicts] == [True, False, False]
    assert batch.verdicts == validate_results(CXR, items)  # keeping changes no verdict
    assert long_value in batch.verdicts[2].failures[0].reason  # the caller's result is intact
    by_table = {s.table_name: s for s in batch.stored}
    assert set(by_table) == {"labels", "evidence"}  # 3 reports: below the prevalence minimum
    labels = by_table["labels"]
    assert not labels.success and labels.unsuccessful >= 1 and labels.n_rows > 3
    assert by_table["evidence"].success
    # the GX layout: suite parts / run name / run time / batch, all file-name safe
    assert labels.result_path.startswith(f"{CXR.id}/labels/")
    assert "/scheduled__2025-03-04T02_00_00_00_00/20250304T020000.000000Z/" in labels.result_path
    path = result_file(tmp_path, labels.result_path)
    assert path.is_file() and path.parents[3].name == "labels"
    stored = path.read_text(encoding="utf-8")
    assert "maybe" in stored and long_value not in stored  # long strings cut before storing
    assert f"{long_value[:MAX_STORED_CHARS]}\\u2026 ({len(long_value)} chars)" in stored
    back = load_result(tmp_path, labels.result_path)
    assert back.success is False and back.meta["rrief"]["batch"] == run.batch
    html = render_result_page(back)
    assert "expect_column_values_to_be_in_set" in html or "values must belong" in html
    assert "Pneumothorax=maybe" in html
    with pytest.raises(ValueError, match="not a stored validation result"):
        result_file(tmp_path, "../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        load_result(tmp_path, "cxr/labels/nope")
