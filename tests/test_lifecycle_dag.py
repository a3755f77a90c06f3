"""The adapter loop with ``dag.test()`` on a tiny random model and a real PostgreSQL warehouse:
annotations → rrief_train (snapshot, train, evaluate, gate, register, promote) → rrief_reextract
→ dbt, where ``marts.cxr_findings.adapter_id`` changes for every study and the counts do not.
A worse candidate fails the gate (an ``ops.alerts`` row) and is not promoted; a re-extraction
superseded by a second promotion does nothing; a killed re-extraction continues where it
stopped.

A tiny random model can only memorise, so every report text of the frozen test split also
appears in the train split (as another study): a well-trained candidate is then perfect on the
test split and one trained for a single epoch is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from extractors.demo.airflow_home import configure_airflow, load_dag
from extractors.gold import annotations as store
from extractors.gold.annotations import split_of
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.connections import connection_json
from extractors.pipeline.context import RunContext
from extractors.pipeline.extract import extract_batch
from extractors.schemas import get_schema
from extractors.settings import Settings
from extractors.warehouse import load
from extractors.warehouse.rows import ReportRow
from tests.annotate_data import add_user
from tests.tiny_llm import TRAIN_CXR, tiny_train_config

DAY = datetime(2025, 6, 2, 8, tzinfo=UTC)
COPIES = 2


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def study_rows() -> tuple[list[ReportRow], dict[str, dict[str, Any]]]:
    """Two studies per fixture report (on two days); texts whose every copy falls into the
    test split are left out, so each test text has a train twin."""
    rows, gold = [], {}
    for i, line in enumerate(TRAIN_CXR.read_text(encoding="utf-8").splitlines()):
        rec = json.loads(line)
        keys = [_key("lifecycle", i, c) for c in range(COPIES)]
        if all(split_of(k) == "test" for k in keys):
            continue
        for c, key in enumerate(keys):
            rows.append(
                ReportRow(
                    report_key=key,
                    patient_key=_key("patient", i),
                    accession_key=_key("accession", i, c),
                    source="test",
                    modality="CR",
                    report_type="cxr",
                    report_final_at=DAY + timedelta(days=c, minutes=i),
                    report_text=rec["text"],
                    content_sha256=hashlib.sha256(rec["text"].encode()).hexdigest(),
                )
            )
            gold[key] = rec["labels"]
    return rows, gold


@pytest.fixture(scope="module")
def airflow_ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = dict(os.environ)
    if "airflow" not in sys.modules:
        configure_airflow(tmp_path_factory.mktemp("airflow-lifecycle"))
    # else: an earlier test module (tests/test_dag.py) configured Airflow for this process
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def loop_env(
    airflow_ready: None,
    empty_warehouse: Engine,
    warehouse_url: str,
    tiny_base_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    env = {
        "RRIEF_WAREHOUSE_URL": warehouse_url,
        "RRIEF_BASE_MODEL": str(tiny_base_model),
        "RRIEF_ADAPTERS_DIR": str(tmp_path / "adapters"),
        "RRIEF_LIFECYCLE_DIR": str(tmp_path / "lifecycle"),
        "RRIEF_GX_DIR": "",
        "RRIEF_BACKEND": "rules",
        "RRIEF_ADAPTER": "",
        "RRIEF_BATCH_SIZE": "8",
        "RRIEF_DBT_TARGET_PATH": str(tmp_path / "dbt-target"),
        "RRIEF_VALIDATION_MIN_REPORTS": "1000",  # prevalence sanity off for 40 look-alikes
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    # dbt's profile (the cosmos task group) comes from the Airflow Connection, as in rrief_daily
    monkeypatch.setenv("AIRFLOW_CONN_RRIEF_WAREHOUSE", connection_json(warehouse_url))
    rows, gold = study_rows()
    load.upsert_reports(empty_warehouse, rows)
    settings = Settings(**{k.removeprefix("RRIEF_").lower(): v for k, v in env.items()})
    for i, batch in enumerate(plan_batches(empty_warehouse, DAY, DAY + timedelta(days=3), 100)):
        ctx = RunContext(run_id="seed", task_id="extract", map_index=i)
        extract_batch(batch, settings, empty_warehouse, ctx)
    schema = get_schema("cxr")
    annotator = add_user(empty_warehouse, "rad1")
    tasks = store.add_tasks(
        empty_warehouse,
        [
            store.NewTask(
                report_key=k,
                schema_name="cxr",
                schema_version=1,
                strategy="random",
                reason="test",
                batch="b1",
            )
            for k in gold
        ],
    )
    hashes = {r.report_key: r.content_sha256 for r in rows}
    for t in tasks:
        store.save_label(
            empty_warehouse,
            schema,
            store.LabelSave(
                task_id=t.task_id,
                annotator=annotator.pseudonym,
                status="submitted",
                labels=gold[t.report_key],
                prefill_source="rules",
                prefill_version="test",
                content_sha256=hashes[t.report_key],
                started_at=datetime.now(UTC),
            ),
            base_revision=0,
        )
    return {"settings": settings, "rows": rows, "engine": empty_warehouse, "url": warehouse_url}


def test_lifecycle_dags_are_declared_as_documented(airflow_ready: None) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from extractors.demo.airflow_home import DAGS_FOLDER

    bag = DagBag(dag_folder=str(DAGS_FOLDER), safe_mode=False)
    assert bag.import_errors == {}
    train, watch, reextract = (bag.get_dag(d) for d in ("rrief_train", "rrief_gold_watch", "rrief_reextract"))  # fmt: skip
    assert {t.task_id for t in train.tasks} == {"snapshot", "train", "evaluate", "gate", "register", "promote"}  # fmt: skip
    for name in ("train", "evaluate"):
        assert (train.get_task(name).queue, train.get_task(name).pool) == ("gpu", "llm")
    assert train.get_task("gate").retries == 0
    assert [a.uri for a in train.get_task("promote").outlets] == ["rrief://registry/promotions"]
    assert [a.uri for a in watch.get_task("watch_gold").outlets] == ["rrief://annotation/gold"]
    reex = reextract.get_task("reextract")
    assert (reex.queue, reex.pool, reextract.max_active_runs) == ("gpu", "llm", 1)
    assert train.doc_md and reextract.doc_md and "rrief_reextract" in reextract.doc_md
    for dag_id in ("rrief_train", "rrief_reextract"):  # parsing reads no RRIEF_* settings
        import ast

        source = (DAGS_FOLDER / f"{dag_id}.py").read_text(encoding="utf-8")
        names = {getattr(n, "id", getattr(n, "attr", None)) for n in ast.walk(ast.parse(source))}
        assert not names & {"get_settings", "environ", "getenv"}


def run(dag_id: str, conf: dict[str, Any], day: int) -> tuple[Any, dict[str, str]]:
    dr = load_dag(dag_id).test(logical_date=datetime(2025, 7, day, tzinfo=UTC), run_conf=conf)
    return dr, {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def marts(engine: Engine) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT report_key, adapter_id, backend FROM marts.cxr_findings ORDER BY 1")
            )
        ]


@pytest.mark.slow
def test_annotations_to_a_promoted_adapter_to_relabelled_marts(loop_env: dict[str, Any]) -> None:
    engine: Engine = loop_env["engine"]
    settings: Settings = loop_env["settings"]
    studies = sorted(r.report_key for r in loop_env["rows"])
    with engine.connect() as conn:  # before: every study labelled by the rules
        rules = conn.execute(
            text("SELECT DISTINCT backend, adapter_id FROM raw.extractions WHERE status = 'ok'")
        ).all()
    assert rules == [("rules", None)]

    hyper = tiny_train_config().model_dump()
    dr, states = run("rrief_train", {"schema": "cxr", "hyperparameters": hyper, "auto_promote": True}, 1)  # fmt: skip
    assert str(dr.state) == "success", states
    with engine.connect() as conn:
        registry = conn.execute(
            text("SELECT adapter_id, status, metrics, training_size, training_sha256 FROM ops.adapters")
        ).all()  # fmt: skip
    assert len(registry) == 1
    adapter_id, status, metrics, size, snap_sha = registry[0]
    assert status == "production" and adapter_id.startswith("cxr-")
    assert metrics["micro_f1"] == 1.0 and metrics["compared_with"] == "rules"
    n_train = sum(1 for r in loop_env["rows"] if split_of(r.report_key) == "train")
    assert size == n_train and metrics["n_test"] == len(loop_env["rows"]) - n_train
    snapshot = Path(settings.lifecycle_dir) / "snapshots" / f"cxr-train-{snap_sha[:16]}.jsonl"
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == snap_sha
    assert snapshot.stat().st_mode & 0o222 == 0  # read-only: a snapshot is never rewritten

    # a candidate worse than production fails the gate: an alert, no registration, no promotion
    worse = {**hyper, "epochs": 1}
    dr, states = run("rrief_train", {"schema": "cxr", "hyperparameters": worse, "auto_promote": True}, 2)  # fmt: skip
    assert str(dr.state) == "failed" and states["gate"] == "failed", states
    assert states["register"] != "success" and states["promote"] != "success"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ops.adapters")).scalar_one() == 1
        alert = conn.execute(
            text("SELECT subject, message, details FROM ops.alerts WHERE check_name = 'gate'")
        ).one()
    assert alert.subject.startswith("cxr:cxr-") and "failed the gate" in alert.message
    assert f"production {adapter_id}" in alert.details["table"]

    # a killed re-extraction: one batch done by hand before the DAG runs
    from extractors.lifecycle.reextract import current_choice, plan_reextraction
    from extractors.pipeline.extract import extractor_for

    hf = settings.model_copy(update={"backend": "hf"})
    plan = plan_reextraction(engine, "cxr", 8)
    assert plan[0].batch.start > plan[-1].batch.start  # newest days first
    first = plan[0]
    choice = current_choice(engine, first, "hf")
    assert choice is not None
    extract_batch(
        first.batch,
        hf,
        engine,
        RunContext(run_id="killed", task_id="reextract"),
        extractor=extractor_for("cxr", hf, choice),
        given_adapter_id=choice.adapter_id,
        skip_done=True,
    )
    rest = plan_reextraction(engine, "cxr", 8)
    planned = sum(b.batch.n_planned for b in plan)
    assert sum(b.batch.n_planned for b in rest) == planned - first.batch.n_planned

    os.environ["RRIEF_BACKEND"] = "hf"
    dr, states = run("rrief_reextract", {"schema": "cxr"}, 3)
    assert str(dr.state) == "success", states
    after = marts(engine)
    assert [a[0] for a in after] == studies  # the same studies, none lost or doubled
    assert {(a[1], a[2]) for a in after} == {(adapter_id, "hf")}
    assert plan_reextraction(engine, "cxr", 8) == []  # nothing left: a rerun does nothing
    with engine.connect() as conn:
        versions = dict(
            conn.execute(
                text("SELECT adapter_id, n_studies FROM marts.extraction_versions WHERE schema_name = 'cxr'")
            ).all()
        )  # fmt: skip
    assert versions == {adapter_id: len(studies)}
    from extractors.lifecycle.reextract import reextraction_progress

    (progress,) = reextraction_progress(engine)  # what the health page shows
    assert (progress.adapter_id, progress.on_current, progress.total) == (
        adapter_id,
        len(studies),
        len(studies),
    )
    from extractors.health.dashboard import build_dashboard
    from extractors.health.page import render_page

    page = render_page(build_dashboard(engine, 7, last_day=DAY + timedelta(days=1)))
    assert "<h2>Adapters and re-extraction</h2>" in page
    assert f"<td>{adapter_id}</td><td>{len(studies)} / {len(studies)}</td>" in page


@pytest.mark.slow
def test_a_second_promotion_supersedes_a_running_reextraction(loop_env: dict[str, Any], tiny_adapter: Path) -> None:  # fmt: skip
    from extractors.lifecycle.reextract import current_choice, plan_reextraction
    from extractors.lifecycle.registry import promote, record_from_dir, register

    engine: Engine = loop_env["engine"]
    first = register(engine, record_from_dir(tiny_adapter, "test"))
    promote(engine, first.adapter_id, "test")
    plan = plan_reextraction(engine, "cxr", 8)
    assert plan and {b.adapter_id for b in plan} == {first.adapter_id}
    second = register(
        engine,
        record_from_dir(tiny_adapter, "test").model_copy(update={"adapter_id": "cxr-next@0"}),
    )
    promote(engine, second.adapter_id, "test")
    # the batches planned for the first adapter now do nothing; a new plan names the second
    assert all(current_choice(engine, b, "hf") is None for b in plan)
    assert {b.adapter_id for b in plan_reextraction(engine, "cxr", 8)} == {"cxr-next@0"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM ops.adapters WHERE status = 'production'")).scalar_one() == 1  # fmt: skip


def test_the_gold_watch_starts_training_after_enough_new_labels(
    loop_env: dict[str, Any], tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collections import defaultdict
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowSkipException

    from extractors.lifecycle import tasks
    from extractors.lifecycle.registry import record_from_dir, register

    n_train = sum(1 for r in loop_env["rows"] if split_of(r.report_key) == "train")
    register(loop_env["engine"], record_from_dir(tiny_adapter, "test"))  # trained on 20
    monkeypatch.setenv("RRIEF_TRAIN_MIN_NEW_LABELS", str(n_train - 20 + 1))
    with pytest.raises(AirflowSkipException, match="new labels"):
        tasks.watch_gold({})
    monkeypatch.setenv("RRIEF_TRAIN_MIN_NEW_LABELS", str(n_train - 20))
    events: defaultdict[Any, Any] = defaultdict(SimpleNamespace)
    assert tasks.watch_gold({"outlet_events": events})["schema"] == "cxr"
    assert events[tasks.GOLD].extra == {"schema": "cxr", "new_labels": n_train - 20}
