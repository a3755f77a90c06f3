"""The annotation store: tasks, annotator accounts and label revisions in ``annotation.*``.

Every save is a new ``annotation.labels`` row (revision 1, 2, ... per task and annotator), so
nothing an annotator submits is ever overwritten; a save based on an older revision is refused
(:class:`ConflictError`). Report text is never copied here: it is read from ``raw.reports``
through the view ``annotation.task_reports`` when a page is shown or a gold file exported, and
each revision records the hash of the text its page showed, so a page that went stale is caught.

:func:`export_gold` turns the final answers (adjudicated, or every wanted annotator submitted
and they agree) into the ``report_id``/``text``/``labels`` records that ``rrief train`` and
``rrief evaluate --gold-format jsonl`` read, split into train/test by a hash of the report key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, and_, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from extractors.gold.base import GoldError
from extractors.gold.examples import GoldExample
from extractors.schemas import SchemaSpec
from extractors.warehouse.load import transaction
from extractors.warehouse.models import annotators, labels, tasks

Bind = Engine | Connection
Status = Literal["draft", "submitted", "skipped", "adjudicated"]
Split = Literal["train", "test"]
FINAL_STATUSES = ("submitted", "adjudicated")
# Share of reports in the test split. Fixed: changing it would move reports between the splits.
TEST_FRACTION = 0.2


class AnnotationError(GoldError):
    """The annotation store refuses a request (unknown task, wrong schema, bad account)."""


class ConflictError(AnnotationError):
    """A save was based on a revision that is no longer the newest (another tab or a retry)."""


class SchemaVersionError(AnnotationError):
    """Labels were made with another version of the schema than the task's."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NewTask(_Model):
    """A task to create: one report to annotate under one schema version."""

    report_key: str
    schema_name: str
    schema_version: int
    strategy: Literal["random", "stratified", "disagreement"]
    reason: str
    batch: str
    n_annotators: int = Field(default=1, ge=1, le=5)


class Task(NewTask):
    task_id: int
    created_at: datetime

    @property
    def schema_id(self) -> str:
        return f"{self.schema_name}@{self.schema_version}"


class Annotator(_Model):
    """An account of the workbench; labels record the ``pseudonym``, never the person."""

    annotator_id: int
    username: str
    pseudonym: str
    password_hash: str = Field(repr=False)
    adjudicator: bool
    active: bool
    created_at: datetime


class LabelSave(_Model):
    """One save from the page: what the annotator answered and how the page was made."""

    task_id: int
    annotator: str
    status: Status
    labels: dict[str, Any] | None = None
    evidence: dict[str, list[tuple[int, int]]] = Field(default_factory=dict)
    prefill_source: str
    prefill_version: str
    content_sha256: str
    skip_reason: str | None = None
    flagged: bool = False
    flag_note: str | None = None
    started_at: datetime
    seconds_spent: float | None = Field(default=None, ge=0)


class LabelRecord(LabelSave):
    """A stored revision."""

    label_id: int
    revision: int
    saved_at: datetime


class SaveOutcome(_Model):
    """What :func:`save_label` stored; ``stale`` when the report changed since the page was
    made (the answers were then kept as a draft, never as a submission)."""

    record: LabelRecord
    stale: bool = False


class TaskReport(_Model):
    """The current text of a task's report (read live from raw.reports)."""

    report_key: str
    text: str = Field(repr=False)
    content_sha256: str


# --- accounts -----------------------------------------------------------------------------------


def add_annotator(
    bind: Bind, username: str, password_hash: str, *, pseudonym: str | None = None,
    adjudicator: bool = False,
) -> Annotator:  # fmt: skip
    """Create an account; the pseudonym defaults to the next free ``A<n>``."""
    with transaction(bind) as conn:
        if conn.execute(
            select(annotators.c.annotator_id).where(annotators.c.username == username)
        ).first():
            raise AnnotationError(f"an annotator named {username!r} exists already")
        if pseudonym is None:
            n = conn.execute(select(func.count()).select_from(annotators)).scalar_one()
            taken = set(conn.execute(select(annotators.c.pseudonym)).scalars())
            n += 1
            while f"A{n}" in taken:
                n += 1
            pseudonym = f"A{n}"
        try:
            row = conn.execute(
                insert(annotators)
                .values(username=username, pseudonym=pseudonym, password_hash=password_hash,
                        adjudicator=adjudicator)
                .returning(*annotators.c)
            ).one()  # fmt: skip
        except IntegrityError:
            raise AnnotationError(f"pseudonym {pseudonym!r} is taken") from None
    return Annotator(**row._mapping)


def set_password(bind: Bind, username: str, password_hash: str) -> None:
    """Replace an account's password hash (``rrief annotate add-user --reset``)."""
    with transaction(bind) as conn:
        done = conn.execute(
            annotators.update()
            .where(annotators.c.username == username)
            .values(password_hash=password_hash)
        ).rowcount
    if not done:
        raise AnnotationError(f"no annotator named {username!r}")


def get_annotator(bind: Bind, *, username: str | None = None, pseudonym: str | None = None) -> Annotator | None:  # fmt: skip
    """The account with this username or pseudonym, or ``None``."""
    where = annotators.c.username == username if username else annotators.c.pseudonym == pseudonym
    with transaction(bind) as conn:
        row = conn.execute(select(annotators).where(where)).first()
    return Annotator(**row._mapping) if row else None


# --- tasks --------------------------------------------------------------------------------------


def add_tasks(bind: Bind, new: Sequence[NewTask]) -> list[Task]:
    """Insert tasks; a report that already has a task for the schema version is left alone."""
    if not new:
        return []
    with transaction(bind) as conn:
        rows = conn.execute(
            pg_insert(tasks)
            .values([t.model_dump() for t in new])
            .on_conflict_do_nothing(constraint="uq_tasks_key")
            .returning(*tasks.c)
        ).all()
    return sorted((Task(**r._mapping) for r in rows), key=lambda t: t.task_id)


def get_task(bind: Bind, task_id: int) -> Task | None:
    with transaction(bind) as conn:
        row = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
    return Task(**row._mapping) if row else None


def task_report(bind: Bind, task_id: int) -> TaskReport | None:
    """The report text of a task as it is now in raw.reports (through the view)."""
    with transaction(bind) as conn:
        row = conn.execute(
            text(
                "SELECT report_key, report_text, content_sha256 FROM annotation.task_reports "
                "WHERE task_id = :t"
            ),
            {"t": task_id},
        ).first()
    if row is None:
        return None
    return TaskReport(report_key=row[0], text=row[1], content_sha256=row[2])


def schema_versions(bind: Bind) -> dict[str, int]:
    """``schema id -> number of tasks`` for every schema version that has tasks."""
    with transaction(bind) as conn:
        rows = conn.execute(
            select(tasks.c.schema_name, tasks.c.schema_version, func.count())
            .group_by(tasks.c.schema_name, tasks.c.schema_version)
            .order_by(tasks.c.schema_name, tasks.c.schema_version)
        ).all()
    return {f"{name}@{version}": n for name, version, n in rows}


def _latest_revisions() -> Any:
    """The newest revision of each (task, annotator)."""
    ranked = select(
        labels,
        func.row_number()
        .over(
            partition_by=(labels.c.task_id, labels.c.annotator), order_by=labels.c.revision.desc()
        )
        .label("rank"),
    ).subquery()
    return select(*[ranked.c[c.name] for c in labels.c]).where(ranked.c.rank == 1).subquery()


def next_task(bind: Bind, schema: SchemaSpec, annotator: str) -> Task | None:
    """The task this annotator should do next: their oldest draft, else a task that still needs
    an annotator and that they have not touched (in an order of their own, so that annotators
    working at once rarely open the same task)."""
    latest = _latest_revisions()
    own = (tasks.c.schema_name == schema.name) & (tasks.c.schema_version == schema.version)
    with transaction(bind) as conn:
        draft = conn.execute(
            select(tasks)
            .join(latest, latest.c.task_id == tasks.c.task_id)
            .where(own, latest.c.annotator == annotator, latest.c.status == "draft")
            .order_by(latest.c.saved_at)
            .limit(1)
        ).first()
        if draft:
            return Task(**draft._mapping)
        taking = (
            select(func.count(func.distinct(latest.c.annotator)))
            .where(latest.c.task_id == tasks.c.task_id, latest.c.status.in_(("draft", "submitted")))
            .scalar_subquery()
        )
        touched = select(labels.c.task_id).where(
            labels.c.task_id == tasks.c.task_id, labels.c.annotator == annotator
        )
        row = conn.execute(
            select(tasks)
            .where(own, taking < tasks.c.n_annotators, ~touched.exists())
            .order_by(func.md5(func.concat(tasks.c.task_id, ":", annotator)))
            .limit(1)
        ).first()
    return Task(**row._mapping) if row else None


class Progress(_Model):
    """Counts for the progress bar of one schema version."""

    tasks: int
    complete: int
    mine_submitted: int
    mine_drafts: int
    available_to_me: int


def progress(bind: Bind, schema: SchemaSpec, annotator: str) -> Progress:
    """How far annotation of ``schema`` is, overall and for ``annotator``."""
    latest = _latest_revisions()
    own = (tasks.c.schema_name == schema.name) & (tasks.c.schema_version == schema.version)
    with transaction(bind) as conn:
        total = conn.execute(select(func.count()).select_from(tasks).where(own)).scalar_one()
        per_task = (
            select(
                tasks.c.task_id,
                tasks.c.n_annotators,
                func.count(latest.c.label_id).filter(latest.c.status == "submitted").label("sub"),
                func.count(latest.c.label_id).filter(latest.c.status.in_(("draft", "submitted"))).label("taking"),
                func.bool_or(latest.c.status == "adjudicated").label("adj"),
                func.bool_or(latest.c.annotator == annotator).label("touched"),
            )
            .select_from(tasks.outerjoin(latest, latest.c.task_id == tasks.c.task_id))
            .where(own)
            .group_by(tasks.c.task_id, tasks.c.n_annotators)
            .subquery()
        )  # fmt: skip
        complete, available = conn.execute(
            select(
                func.count().filter((per_task.c.sub >= per_task.c.n_annotators) | per_task.c.adj),
                func.count().filter(
                    (per_task.c.taking < per_task.c.n_annotators)
                    & ~func.coalesce(per_task.c.touched, False)
                ),
            )
        ).one()
        mine = dict(
            conn.execute(
                select(latest.c.status, func.count())
                .join(tasks, tasks.c.task_id == latest.c.task_id)
                .where(own, latest.c.annotator == annotator)
                .group_by(latest.c.status)
            ).all()
        )
    return Progress(
        tasks=total,
        complete=complete,
        mine_submitted=mine.get("submitted", 0) + mine.get("adjudicated", 0),
        mine_drafts=mine.get("draft", 0),
        available_to_me=available,
    )


# --- labels -------------------------------------------------------------------------------------


def _record(row: Any) -> LabelRecord:
    data = dict(row._mapping)
    data["evidence"] = {k: [tuple(span) for span in v] for k, v in (data["evidence"] or {}).items()}
    return LabelRecord(**{k: data[k] for k in LabelRecord.model_fields})


def latest_label(bind: Bind, task_id: int, annotator: str) -> LabelRecord | None:
    """The annotator's newest revision of a task (any status), or ``None``."""
    with transaction(bind) as conn:
        row = conn.execute(
            select(labels)
            .where(labels.c.task_id == task_id, labels.c.annotator == annotator)
            .order_by(labels.c.revision.desc())
            .limit(1)
        ).first()
    return _record(row) if row else None


def label_history(bind: Bind, task_id: int) -> list[LabelRecord]:
    """Every revision of a task, oldest first."""
    with transaction(bind) as conn:
        rows = conn.execute(
            select(labels).where(labels.c.task_id == task_id).order_by(labels.c.label_id)
        ).all()
    return [_record(r) for r in rows]


def save_label(bind: Bind, schema: SchemaSpec, save: LabelSave, base_revision: int) -> SaveOutcome:
    """Store ``save`` as the next revision after ``base_revision`` (0 for the first save).

    Refuses labels that fail ``schema`` (:class:`~extractors.schemas.LabelValidationError`, one
    line per field), a schema other than the task's (:class:`SchemaVersionError`) and a base
    that is not the newest revision (:class:`ConflictError`). When the report text changed
    since the page was made (``content_sha256`` differs), the answers are stored as a draft
    and the outcome says ``stale``: the annotator must look at the new text before submitting.
    """
    with transaction(bind) as conn:
        task = conn.execute(select(tasks).where(tasks.c.task_id == save.task_id)).first()
        if task is None:
            raise AnnotationError(f"there is no task {save.task_id}")
        task_schema = f"{task.schema_name}@{task.schema_version}"
        if (schema.name, schema.version) != (task.schema_name, task.schema_version):
            raise SchemaVersionError(
                f"task {save.task_id} belongs to {task_schema}; labels of {schema.id} cannot "
                "be stored on it (versions are never mixed)"
            )
        values = save.model_dump()
        if save.labels is not None:
            values["labels"] = schema.validate_labels(save.labels)
        current = conn.execute(
            text("SELECT content_sha256 FROM annotation.task_reports WHERE task_id = :t"),
            {"t": save.task_id},
        ).scalar_one()
        stale = current != save.content_sha256
        if stale and save.status != "draft":
            values["status"] = "draft"
        if values["status"] in FINAL_STATUSES and values["labels"] is None:
            raise AnnotationError("a submission needs labels")
        newest = conn.execute(
            select(func.coalesce(func.max(labels.c.revision), 0)).where(
                labels.c.task_id == save.task_id, labels.c.annotator == save.annotator
            )
        ).scalar_one()
        if newest != base_revision:
            raise ConflictError(
                f"task {save.task_id} was saved again (revision {newest}) after this page was "
                f"made from revision {base_revision}; reload it: nothing was overwritten"
            )
        values["evidence"] = {k: [list(span) for span in v] for k, v in save.evidence.items()}
        try:
            with conn.begin_nested():
                row = conn.execute(
                    insert(labels).values(**values, revision=newest + 1).returning(*labels.c)
                ).one()
        except IntegrityError as exc:
            if "uq_labels_key" in str(exc.orig):
                raise ConflictError(
                    f"task {save.task_id} was saved twice at the same moment; reload it: the "
                    "other save was kept"
                ) from None
            raise
    return SaveOutcome(record=_record(row), stale=stale)


# --- final answers and the gold export -----------------------------------------------------------


class TaskAnswers(_Model):
    """A task with each annotator's latest submission and the latest adjudication."""

    task: Task
    submitted: dict[str, LabelRecord]
    adjudicated: LabelRecord | None
    flagged: bool


def task_answers(bind: Bind, schema: SchemaSpec, task_ids: Iterable[int] | None = None) -> list[TaskAnswers]:  # fmt: skip
    """Answers of every task of ``schema`` (or of ``task_ids``) that has any labels row."""
    own = (tasks.c.schema_name == schema.name) & (tasks.c.schema_version == schema.version)
    if task_ids is not None:
        own = and_(own, tasks.c.task_id.in_(list(task_ids)))
    with transaction(bind) as conn:
        task_rows = {r.task_id: Task(**r._mapping) for r in conn.execute(select(tasks).where(own))}
        rows = conn.execute(
            select(labels)
            .where(labels.c.task_id.in_(list(task_rows)))
            .order_by(labels.c.task_id, labels.c.label_id)
        ).all()
    by_task: dict[int, list[LabelRecord]] = {}
    for row in rows:
        by_task.setdefault(row.task_id, []).append(_record(row))
    out = []
    for task_id, records in sorted(by_task.items()):
        latest: dict[str, LabelRecord] = {}
        submitted: dict[str, LabelRecord] = {}
        adjudicated = None
        for rec in records:  # oldest first: later revisions win
            latest[rec.annotator] = rec
            if rec.status == "submitted":
                submitted[rec.annotator] = rec
            elif rec.status == "adjudicated":
                adjudicated = rec
        out.append(
            TaskAnswers(
                task=task_rows[task_id],
                submitted=dict(sorted(submitted.items(), key=lambda kv: kv[1].saved_at)),
                adjudicated=adjudicated,
                flagged=any(r.flagged for r in latest.values()),
            )
        )
    return out


def split_of(report_key: str) -> Split:
    """``test`` for a fixed :data:`TEST_FRACTION` of report keys, by their SHA-256: a report
    never moves between the splits as more are annotated."""
    bucket = int.from_bytes(hashlib.sha256(report_key.encode("utf-8")).digest()[:8], "big")
    return "test" if bucket / 2**64 < TEST_FRACTION else "train"


def final_labels(answers: TaskAnswers) -> tuple[LabelRecord | None, str | None]:
    """The answer that counts for a task, or ``None`` and why there is none yet."""
    if answers.adjudicated is not None:
        return answers.adjudicated, None
    subs = list(answers.submitted.values())
    if len(subs) < answers.task.n_annotators:
        return None, f"{len(subs)} of {answers.task.n_annotators} annotators submitted"
    first = subs[0].labels
    if any(s.labels != first for s in subs[1:]):
        return None, "annotators disagree: needs adjudication"
    return subs[0], None


class GoldExport(BaseModel):
    """What :func:`export_gold` found: the records, and every task left out with the reason."""

    schema_id: str
    split: Split | None
    records: list[GoldExample]
    splits: dict[str, str] = Field(description="report_id -> train | test")
    left_out: dict[int, str] = Field(default_factory=dict, description="task id -> why")


def export_gold(bind: Bind, schema: SchemaSpec, split: Split | None = None) -> GoldExport:
    """Final labels of ``schema``'s tasks as gold examples (``report_id`` = report key, the
    current text), optionally one split only. A task whose report changed after it was
    answered is left out (its labels may not fit the new text), as is one still incomplete
    or in disagreement; ``left_out`` says which and why."""
    records: list[GoldExample] = []
    splits: dict[str, str] = {}
    left_out: dict[int, str] = {}
    answers = task_answers(bind, schema)
    texts: dict[int, TaskReport] = {}
    if answers:
        with transaction(bind) as conn:
            for row in conn.execute(
                text(
                    "SELECT task_id, report_key, report_text, content_sha256 "
                    "FROM annotation.task_reports WHERE task_id = ANY(:ids)"
                ),
                {"ids": [a.task.task_id for a in answers]},
            ):
                texts[row[0]] = TaskReport(report_key=row[1], text=row[2], content_sha256=row[3])
    for a in answers:
        chosen, why = final_labels(a)
        if chosen is None:
            left_out[a.task.task_id] = why or "no final answer"
            continue
        report = texts[a.task.task_id]
        if chosen.content_sha256 != report.content_sha256:
            left_out[a.task.task_id] = "the report text changed after it was annotated"
            continue
        which = split_of(report.report_key)
        if split is not None and which != split:
            continue
        assert chosen.labels is not None  # a final status always has labels
        records.append(
            GoldExample(
                report_id=report.report_key,
                text=report.text,
                labels=schema.validate_labels(chosen.labels),
            )
        )
        splits[report.report_key] = which
    return GoldExport(
        schema_id=schema.id, split=split, records=records, splits=splits, left_out=left_out
    )


def write_gold_jsonl(export: GoldExport, path: Path | str) -> str:
    """Write the export as gold JSONL (``report_id``, ``text``, ``labels``, ``split``), all or
    nothing (a temporary file renamed into place); returns the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    digest = hashlib.sha256()
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in export.records:
            line = json.dumps(
                {**rec.model_dump(), "split": export.splits[rec.report_id]}, ensure_ascii=False
            )
            fh.write(line + "\n")
            digest.update((line + "\n").encode("utf-8"))
    tmp.replace(path)
    return digest.hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)
