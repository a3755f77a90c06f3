"""`rrief annotate` end to end on a real warehouse: accounts, the three sampling strategies and
--double, agreement, and an export that `rrief extract` + `rrief evaluate` and the training
reader take as it is."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from extractors.annotate.sampling import positive_strata, sample_tasks
from extractors.cli import cli
from extractors.extract import make_extractor
from extractors.gold import annotations as store
from extractors.gold import load_examples
from extractors.results import ReportInput
from extractors.schemas import get_schema
from extractors.warehouse import load
from extractors.warehouse.rows import ExtractionRow
from tests.annotate_data import PASSWORD, load_demo_reports

CXR = get_schema("cxr")


@pytest.fixture
def db(empty_warehouse: Engine) -> Engine:
    load_demo_reports(empty_warehouse, days=3, per_day=80)
    return empty_warehouse


def rrief(*args: str, input: str | None = None) -> str:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def tasks_of(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM annotation.tasks ORDER BY task_id"))]  # fmt: skip


def test_add_user_hashes_and_refuses_weak_or_duplicate(db: Engine, warehouse_url: str) -> None:
    out = rrief("annotate", "add-user", "alice", "--password-stdin", "--url", warehouse_url, input=PASSWORD + "\n")  # fmt: skip
    assert "annotator alice created; labels record them as A1" in out
    account = store.get_annotator(db, username="alice")
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash
    runner = CliRunner()
    weak = runner.invoke(cli, ["annotate", "add-user", "bob", "--password-stdin", "--url", warehouse_url], input="short\n")  # fmt: skip
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    again = runner.invoke(cli, ["annotate", "add-user", "alice", "--password-stdin", "--url", warehouse_url], input=PASSWORD + "\n")  # fmt: skip
    assert again.exit_code != 0 and "exists already" in again.output
    prompt = runner.invoke(cli, ["annotate", "add-user", "carol", "--adjudicator", "--url", warehouse_url], input=f"{PASSWORD}\n{PASSWORD}\n")  # fmt: skip
    assert prompt.exit_code == 0 and "adjudicator carol created" in prompt.output


def test_random_sampling_with_double_and_no_repeats(db: Engine, warehouse_url: str) -> None:
    out = rrief("annotate", "sample", "--schema", "cxr", "--n", "20", "--double", "0.25", "--url", warehouse_url)  # fmt: skip
    assert "20 random tasks for cxr@1" in out and "5 double-annotated" in out
    first = tasks_of(db)
    assert len(first) == 20 and sum(t["n_annotators"] == 2 for t in first) == 5
    rrief("annotate", "sample", "--schema", "cxr", "--n", "20", "--url", warehouse_url)
    keys = [t["report_key"] for t in tasks_of(db)]
    assert len(keys) == 40 == len(set(keys))  # only reports not yet tasked
    with db.connect() as conn:
        types = set(conn.execute(text(
            "SELECT DISTINCT r.report_type FROM annotation.tasks t JOIN raw.reports r USING (report_key)"
        )).scalars())  # fmt: skip
    assert types == {"cxr"}


def test_stratified_sampling_balances_the_rules_positive_labels(db: Engine) -> None:
    rules = make_extractor("rules", CXR)
    result = sample_tasks(db, CXR, 30, "stratified", extractor=rules, seed=3)
    assert result.created == 30
    reasons = Counter(t["reason"] for t in tasks_of(db))
    labels = {}
    with db.connect() as conn:
        for key, body in conn.execute(text("SELECT report_key, report_text FROM raw.reports WHERE report_type = 'cxr'")):  # fmt: skip
            (res,) = rules.extract_batch([ReportInput(report_id=key, text=body)])
            labels[key] = res.labels
    strata = Counter(s for lab in labels.values() for s in positive_strata(CXR, lab) or ["no positive label"])  # fmt: skip
    assert len(strata) <= 30
    assert {r.removeprefix("stratified: ") for r in reasons} == set(strata)  # each one is in
    # round-robin: every stratum is picked about equally often, however rare in the pool
    # (pool counts range from a handful to a third of the reports)
    assert max(reasons.values()) - min(reasons.values()) <= 2
    assert max(strata.values()) >= 5 * min(strata.values())
    with pytest.raises(store.AnnotationError, match="needs an extractor"):
        sample_tasks(db, get_schema("examples/schemas/chestxray14.yaml"), 5, "stratified")


def test_disagreement_sampling_uses_stored_adapter_results(db: Engine, warehouse_url: str) -> None:
    rules = make_extractor("rules", CXR)
    with db.connect() as conn:
        rows = conn.execute(text(
            "SELECT report_key, report_text, content_sha256 FROM raw.reports "
            "WHERE report_type = 'cxr' ORDER BY report_key LIMIT 40"
        )).all()  # fmt: skip
    stored = []
    disputed = set()
    for i, (key, body, sha) in enumerate(rows):
        (res,) = rules.extract_batch([ReportInput(report_id=key, text=body)])
        labels = dict(res.labels)
        if i % 4 == 0:  # the "adapter" reads Cardiomegaly differently on every fourth report
            labels["Cardiomegaly"] = (
                "positive" if labels["Cardiomegaly"] != "positive" else "negative"
            )
            disputed.add(key)
        stored.append(ExtractionRow(
            report_key=key, schema_name="cxr", schema_version=1, backend="hf",
            extractor_version="cxr-v1", adapter_id="cxr-v1", status="ok", labels=labels,
            content_sha256=sha, run_id="run-adapter",
        ))  # fmt: skip
    load.upsert_extractions(db, stored)
    out = rrief("annotate", "sample", "--schema", "cxr", "--n", "8", "--strategy", "disagreement", "--no-progress", "--url", warehouse_url)  # fmt: skip
    assert "8 disagreement tasks" in out
    chosen = tasks_of(db)
    assert {t["report_key"] for t in chosen} <= disputed | {
        t["report_key"] for t in chosen if "rules uncertain" in t["reason"]
    }
    assert any("rules vs hf:cxr-v1 on Cardiomegaly" in t["reason"] for t in chosen)


def test_agreement_and_export_end_to_end(db: Engine, warehouse_url: str, tmp_path: Path) -> None:
    sample_tasks(db, CXR, 12, "random", double=0.5, seed=2)
    for name in ("alice", "bob"):
        rrief("annotate", "add-user", name, "--password-stdin", "--url", warehouse_url, input=PASSWORD + "\n")  # fmt: skip
    rules = make_extractor("rules", CXR)
    for task in [store.get_task(db, t["task_id"]) for t in tasks_of(db)]:
        report = store.task_report(db, task.task_id)
        (res,) = rules.extract_batch([ReportInput(report_id="r", text=report.text)])
        for who in ("A1", "A2")[: task.n_annotators]:
            labels = dict(res.labels)
            if who == "A2" and task.task_id % 3 == 0:
                labels["Edema"] = "uncertain" if labels["Edema"] != "uncertain" else "negative"
            store.save_label(db, CXR, store.LabelSave(
                task_id=task.task_id, annotator=who, status="submitted", labels=labels,
                prefill_source="rules", prefill_version=res.extractor.version,
                content_sha256=report.content_sha256, started_at=datetime.now(UTC),
            ), 0)  # fmt: skip
    out = rrief("annotate", "agreement", "--schema", "cxr", "--url", warehouse_url)
    assert "6 double-annotated tasks with two submissions" in out
    assert "overall (pooled)" in out and "Edema" in out
    data = json.loads(rrief("annotate", "agreement", "--schema", "cxr", "--json", "--url", warehouse_url))  # fmt: skip
    n_disagree = len(data["disagreements"])
    assert n_disagree >= 1 and all(list(d["fields"]) == ["Edema"] for d in data["disagreements"])

    gold = tmp_path / "gold.jsonl"
    out = rrief("annotate", "export", "--schema", "cxr", "--output", str(gold), "--url", warehouse_url)  # fmt: skip
    assert f"{12 - n_disagree} cxr@1 gold records" in out
    lines = [json.loads(line) for line in gold.read_text().splitlines()]
    assert {"report_id", "text", "labels", "split"} <= set(lines[0])
    examples, _ = load_examples(gold, CXR, "jsonl")  # what `rrief train --train` reads
    assert len(examples) == 12 - n_disagree
    # `rrief extract` on the export, then `rrief evaluate` against it: the formats fit
    pred = tmp_path / "pred.jsonl"
    rrief("extract", "--schema", "cxr", "--input", str(gold), "--output", str(pred), "--no-progress")  # fmt: skip
    evaluated = rrief("evaluate", "--schema", "cxr", "--pred", str(pred), "--gold", str(gold), "--gold-format", "jsonl", "--out", str(tmp_path / "eval"))  # fmt: skip
    assert "micro" in evaluated.lower()
    test_only = tmp_path / "test.jsonl"
    rrief("annotate", "export", "--schema", "cxr", "--output", str(test_only), "--split", "test", "--url", warehouse_url)  # fmt: skip
    assert all(json.loads(x)["split"] == "test" for x in test_only.read_text().splitlines())
