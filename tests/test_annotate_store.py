"""The annotation store on a real PostgreSQL: append-only label revisions, stale pages, double
tasks, schema versions, roles, and the gold export that `rrief train`/`rrief evaluate` read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from extractors.gold import annotations as store
from extractors.gold import load_examples, load_gold
from extractors.schemas import LabelValidationError, get_schema
from extractors.schemas.model import SchemaSpec
from tests.annotate_data import add_user, change_report_text, load_demo_reports

CXR = get_schema("cxr")


@pytest.fixture
def db(empty_warehouse: Engine) -> Engine:
    load_demo_reports(empty_warehouse)
    return empty_warehouse


def cxr_keys(engine: Engine, n: int) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT report_key FROM raw.reports WHERE report_type = 'cxr' "
                    "ORDER BY report_key LIMIT :n"
                ),
                {"n": n},
            ).scalars()
        )


def make_tasks(engine: Engine, n: int, n_annotators: int = 1) -> list[store.Task]:
    return store.add_tasks(
        engine,
        [
            store.NewTask(
                report_key=k,
                schema_name="cxr",
                schema_version=1,
                strategy="random",
                reason="random",
                batch="b1",
                n_annotators=n_annotators,
            )
            for k in cxr_keys(engine, n)
        ],
    )


def labels_with(**changes: str) -> dict[str, Any]:
    labels = CXR.empty_labels()
    labels.update({k.replace("_", " "): v for k, v in changes.items()})
    return labels


def save(
    engine: Engine,
    task: store.Task,
    who: str,
    status: str,
    labels: dict[str, Any] | None,
    base: int,
    schema: SchemaSpec = CXR,
    content: str | None = None,
    **extra: Any,
) -> store.SaveOutcome:
    report = store.task_report(engine, task.task_id)
    assert report is not None
    return store.save_label(
        engine,
        schema,
        store.LabelSave(
            task_id=task.task_id,
            annotator=who,
            status=status,  # type: ignore[arg-type]
            labels=labels,
            prefill_source="rules",
            prefill_version="cxr-rules-1",
            content_sha256=content or report.content_sha256,
            started_at=datetime.now(UTC),
            seconds_spent=12.5,
            **extra,
        ),
        base,
    )


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def test_every_save_is_a_new_revision_and_an_old_base_is_refused(db: Engine) -> None:
    a1 = add_user(db, "alice").pseudonym
    (task,) = make_tasks(db, 1)
    first = save(db, task, a1, "draft", labels_with(Cardiomegaly="positive"), 0)
    assert (first.record.revision, first.stale) == (1, False)
    second = save(db, task, a1, "submitted", labels_with(Cardiomegaly="negative"), 1)
    assert second.record.revision == 2
    # a second tab still on revision 1 cannot overwrite revision 2
    with pytest.raises(store.ConflictError, match="nothing was overwritten"):
        save(db, task, a1, "submitted", labels_with(Edema="positive"), 1)
    history = store.label_history(db, task.task_id)
    assert [(r.revision, r.status, r.labels["Cardiomegaly"]) for r in history] == [
        (1, "draft", "positive"),
        (2, "submitted", "negative"),
    ]
    assert store.latest_label(db, task.task_id, a1).revision == 2
    # the app's role has no UPDATE on the labels: revisions are append-only
    with pytest.raises(ProgrammingError, match="permission denied"), db.connect() as conn:
        conn.execute(text("SET ROLE rrief_annotator"))
        conn.execute(text("UPDATE annotation.labels SET status = 'draft'"))


def test_a_stale_page_is_refused_and_its_answers_kept_as_a_draft(db: Engine) -> None:
    a1 = add_user(db, "alice").pseudonym
    (task,) = make_tasks(db, 1)
    save(db, task, a1, "draft", labels_with(Edema="uncertain"), 0)
    old_hash = store.task_report(db, task.task_id).content_sha256
    change_report_text(db, task.report_key, "FINDINGS: Addendum. Small right pleural effusion.")
    outcome = save(db, task, a1, "submitted", labels_with(Edema="positive"), 1, content=old_hash)
    assert outcome.stale and outcome.record.status == "draft"  # not a submission
    assert outcome.record.content_sha256 == old_hash  # records what the page showed
    statuses = [r.status for r in store.label_history(db, task.task_id)]
    assert statuses == ["draft", "draft"]  # the earlier draft is still there too
    # the export leaves out answers made on the old text
    save(db, task, a1, "submitted", labels_with(Edema="positive"), 2, content=old_hash)
    assert store.export_gold(db, CXR).records == []


def test_two_annotators_on_a_double_task_are_both_kept(db: Engine) -> None:
    a1, a2 = add_user(db, "alice").pseudonym, add_user(db, "bob").pseudonym
    (task,) = make_tasks(db, 1, n_annotators=2)
    assert store.next_task(db, CXR, a1) == task and store.next_task(db, CXR, a2) == task
    save(db, task, a1, "submitted", labels_with(Atelectasis="positive"), 0)
    save(db, task, a2, "submitted", labels_with(Atelectasis="negative"), 0)
    (answers,) = store.task_answers(db, CXR)
    assert set(answers.submitted) == {a1, a2}
    assert store.final_labels(answers) == (None, "annotators disagree: needs adjudication")
    export = store.export_gold(db, CXR)
    assert export.records == [] and "adjudication" in export.left_out[task.task_id]
    judge = add_user(db, "carol", adjudicator=True).pseudonym
    save(db, task, judge, "adjudicated", labels_with(Atelectasis="uncertain"), 0)
    (rec,) = store.export_gold(db, CXR).records
    assert rec.labels["Atelectasis"] == "uncertain"
    assert count(db, "SELECT count(*) FROM annotation.labels") == 3  # nothing replaced


def test_next_task_skips_full_and_touched_tasks_and_progress_counts(db: Engine) -> None:
    a1, a2 = add_user(db, "alice").pseudonym, add_user(db, "bob").pseudonym
    tasks = make_tasks(db, 3)
    first = store.next_task(db, CXR, a1)
    save(db, first, a1, "draft", labels_with(), 0)
    assert store.next_task(db, CXR, a1) == first  # own draft first
    assert store.next_task(db, CXR, a2) != first  # taken by alice's draft
    save(db, first, a1, "submitted", labels_with(), 1)
    second = store.next_task(db, CXR, a1)
    save(db, second, a1, "skipped", None, 0, skip_reason="not a chest X-ray")
    assert store.next_task(db, CXR, a2) in {second, *tasks} - {first}
    p = store.progress(db, CXR, a1)
    assert (p.tasks, p.complete, p.mine_submitted, p.mine_drafts, p.available_to_me) == (
        3,
        1,
        1,
        0,
        1,
    )
    with pytest.raises(Exception, match="skip_reason"):
        save(db, second, a1, "skipped", None, 1)  # a skip needs a reason (a CHECK constraint)


def test_labels_that_fail_the_schema_are_refused_field_by_field(db: Engine) -> None:
    a1 = add_user(db, "alice").pseudonym
    (task,) = make_tasks(db, 1)
    bad = labels_with(Cardiomegaly="big", Edema="maybe")
    with pytest.raises(LabelValidationError) as info:
        save(db, task, a1, "submitted", bad, 0)
    assert len(info.value.errors) == 2
    assert any(e.startswith("Cardiomegaly") for e in info.value.errors)
    assert any(e.startswith("Edema") for e in info.value.errors)
    assert count(db, "SELECT count(*) FROM annotation.labels") == 0


def test_a_different_schema_version_is_refused_with_a_clear_message(db: Engine) -> None:
    a1 = add_user(db, "alice").pseudonym
    (task,) = make_tasks(db, 1)
    newer = SchemaSpec.model_validate({**CXR.model_dump(), "version": 2})
    with pytest.raises(store.SchemaVersionError, match=r"belongs to cxr@1; labels of cxr@2"):
        save(db, task, a1, "submitted", labels_with(), 0, schema=newer)


def test_export_is_read_by_train_and_evaluate_and_splits_are_fixed(db: Engine, tmp_path) -> None:
    a1 = add_user(db, "alice").pseudonym
    tasks = make_tasks(db, 30)
    for t in tasks[:20]:
        save(db, t, a1, "submitted", labels_with(Pneumonia="positive"), 0)
    export = store.export_gold(db, CXR)
    assert len(export.records) == 20 and len(export.left_out) == 0  # untouched tasks: no rows
    path = tmp_path / "gold.jsonl"
    digest = store.write_gold_jsonl(export, path)
    assert len(digest) == 64
    examples, warning = load_examples(path, CXR, "jsonl")
    assert warning is None and len(examples) == 20
    assert examples[0].labels["Pneumonia"] == "positive" and examples[0].text.strip()
    gold = load_gold(path, "jsonl", CXR)
    assert len(gold) == 20
    before = dict(export.splits)
    assert set(before.values()) <= {"train", "test"}
    for t in tasks[20:]:  # more annotation never moves a report between the splits
        save(db, t, a1, "submitted", labels_with(), 0)
    after = store.export_gold(db, CXR).splits
    assert all(after[k] == v for k, v in before.items())
    train = store.export_gold(db, CXR, "train")
    test = store.export_gold(db, CXR, "test")
    assert len(train.records) + len(test.records) == 30
    assert {r.report_id for r in train.records}.isdisjoint(r.report_id for r in test.records)
    assert all(store.split_of(r.report_id) == "test" for r in test.records)


def test_split_of_is_a_fixed_share() -> None:
    keys = [f"{i:064x}" for i in range(4000)]
    share = sum(store.split_of(k) == "test" for k in keys) / len(keys)
    assert abs(share - store.TEST_FRACTION) < 0.03
    assert store.split_of(keys[0]) == store.split_of(keys[0])


def test_accounts_have_unique_names_and_pseudonyms(db: Engine) -> None:
    alice = add_user(db, "alice")
    bob = add_user(db, "bob", adjudicator=True)
    assert (alice.pseudonym, bob.pseudonym, bob.adjudicator) == ("A1", "A2", True)
    with pytest.raises(store.AnnotationError, match="exists already"):
        add_user(db, "alice")
    assert "argon2id" in store.get_annotator(db, username="alice").password_hash
    assert "password_hash" not in repr(alice)


def test_roles_researcher_sees_no_annotation_and_annotator_no_raw(db: Engine) -> None:
    tasks = make_tasks(db, 2)
    untasked = count(db, "SELECT count(*) FROM raw.reports") - 2

    def run_as(role: str, sql: str) -> Any:
        with db.connect() as conn:
            conn.execute(text(f"SET LOCAL ROLE {role}"))
            try:
                return conn.execute(text(sql)).scalar()
            finally:
                conn.rollback()

    for sql in (
        "SELECT count(*) FROM annotation.tasks",
        "SELECT count(*) FROM annotation.labels",
        "SELECT count(*) FROM annotation.task_reports",
        "SELECT count(*) FROM annotation.annotators",
    ):
        with pytest.raises(ProgrammingError, match="permission denied"):
            run_as("researcher", sql)
    assert run_as("rrief_annotator", "SELECT count(*) FROM annotation.task_reports") == 2
    assert untasked > 0  # ...of all the reports, only the tasked ones' text is visible
    assert run_as("rrief_annotator", "SELECT count(*) FROM annotation.tasks") == len(tasks)
    for sql in (
        "SELECT count(*) FROM raw.reports",
        "SELECT count(*) FROM raw.extractions",
        "SELECT count(*) FROM ops.run_metrics",
        "SELECT count(*) FROM marts.cxr_findings_probe",
        "DELETE FROM annotation.labels",
        "UPDATE annotation.annotators SET adjudicator = true",
        "INSERT INTO annotation.tasks (report_key, schema_name, schema_version, strategy, "
        "reason, batch) VALUES ('x', 'cxr', 1, 'random', 'r', 'b')",
    ):
        with pytest.raises(ProgrammingError, match=r"permission denied|does not exist"):
            run_as("rrief_annotator", sql)
    with db.begin() as conn:  # a mart table dbt would build is not readable either
        conn.execute(text("CREATE TABLE IF NOT EXISTS marts.annotate_probe AS SELECT 1 AS n"))
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_as("rrief_annotator", "SELECT n FROM marts.annotate_probe")
    with db.begin() as conn:
        conn.execute(text("DROP TABLE marts.annotate_probe"))
