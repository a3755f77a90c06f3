"""The adapter registry (``ops.adapters``): which adapters exist, what each was trained on, how
good it was on the frozen test split, and which one per schema is in production.

An adapter's id is its extractor version (``<directory name>@<first 12 hex of the weights
sha256>``, :func:`extractors.llm.adapters.adapter_version`), so the id in the registry, in
``raw.extractions.adapter_id`` and in the marts is one string. Promotion retires the schema's
previous production adapter in the same transaction; a partial unique index keeps at most one
production adapter per schema even against concurrent promotions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, func, insert, select, text, update

from extractors.llm.adapters import adapter_version, load_adapter_metadata
from extractors.warehouse.load import transaction
from extractors.warehouse.models import adapters

log = logging.getLogger("rrief.lifecycle")

Bind = Engine | Connection
Status = Literal["candidate", "production", "retired"]


class RegistryError(ValueError):
    """A registry request that cannot be done (unknown adapter, wrong status)."""


class AdapterRecord(BaseModel):
    """One ``ops.adapters`` row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    adapter_id: str
    schema_name: str
    schema_version: int
    path: str
    served_name: str
    base_model: str
    base_model_sha256: str
    prompt_template_version: str
    training_sha256: str
    training_size: int
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any] = Field(default_factory=dict)
    status: Status = "candidate"
    created_at: datetime | None = None
    created_by: str
    promoted_at: datetime | None = None
    promoted_by: str | None = None
    retired_at: datetime | None = None
    retired_by: str | None = None


def record_from_dir(
    adapter_dir: str | Path, created_by: str, metrics: dict[str, Any] | None = None
) -> AdapterRecord:
    """A candidate record from an adapter directory's ``rrief_adapter.json`` (made by training)."""
    path = Path(adapter_dir).expanduser().resolve()
    meta = load_adapter_metadata(path)
    return AdapterRecord(
        adapter_id=adapter_version(path, meta),
        schema_name=meta.schema_name,
        schema_version=meta.schema_version,
        path=str(path),
        served_name=path.name,
        base_model=meta.base_model.path,
        base_model_sha256=meta.base_model.sha256,
        prompt_template_version=meta.prompt_template_version,
        training_sha256=meta.training_data.sha256,
        training_size=meta.training_data.size,
        hyperparameters=meta.hyperparameters,
        metrics=metrics or {},
        created_by=created_by,
    )


def register(bind: Bind, record: AdapterRecord) -> AdapterRecord:
    """Insert ``record`` as a candidate; registering the same adapter again (a retried task)
    returns the stored row unchanged, with new metrics only when it had none."""
    values = record.model_dump(exclude={"created_at", "promoted_at", "retired_at"})
    values.update(status="candidate", promoted_by=None, retired_by=None)
    with transaction(bind) as conn:
        existing = _get(conn, record.adapter_id, lock=True)
        if existing is None:
            conn.execute(insert(adapters).values(**values))
            log.info(
                "registered adapter %s (%s) as candidate", record.adapter_id, record.schema_name
            )
        elif not existing.metrics and record.metrics:
            conn.execute(
                update(adapters)
                .where(adapters.c.adapter_id == record.adapter_id)
                .values(metrics=record.metrics)
            )
        stored = _get(conn, record.adapter_id)
    assert stored is not None
    return stored


def _get(conn: Connection, adapter_id: str, lock: bool = False) -> AdapterRecord | None:
    query = select(adapters).where(adapters.c.adapter_id == adapter_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return AdapterRecord(**row._mapping) if row is not None else None


def get_adapter(bind: Bind, adapter_id: str) -> AdapterRecord:
    with transaction(bind) as conn:
        record = _get(conn, adapter_id)
    if record is None:
        raise RegistryError(
            f"no adapter {adapter_id!r} in ops.adapters (see `rrief adapters list`)"
        )
    return record


def list_adapters(bind: Bind, schema_name: str | None = None) -> list[AdapterRecord]:
    query = select(adapters).order_by(adapters.c.schema_name, adapters.c.created_at)
    if schema_name:
        query = query.where(adapters.c.schema_name == schema_name)
    with transaction(bind) as conn:
        return [AdapterRecord(**r._mapping) for r in conn.execute(query)]


def production_adapter(bind: Bind, schema_name: str) -> AdapterRecord | None:
    query = select(adapters).where(
        adapters.c.schema_name == schema_name, adapters.c.status == "production"
    )
    with transaction(bind) as conn:
        row = conn.execute(query).first()
    return AdapterRecord(**row._mapping) if row is not None else None


def _lock_schema(conn: Connection, schema_name: str) -> None:
    """Serialize status changes of one schema's adapters (two promotions wait for each other)."""
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('rrief.adapters'), hashtext(:schema))"),
        {"schema": schema_name},
    )


def promote(bind: Bind, adapter_id: str, by: str) -> tuple[AdapterRecord, AdapterRecord | None]:
    """Make ``adapter_id`` its schema's production adapter and retire the previous one, in one
    transaction. Returns (promoted, retired or None). Promoting a retired adapter is a rollback;
    promoting the production adapter again changes nothing."""
    with transaction(bind) as conn:
        target = _get(conn, adapter_id)
        if target is None:
            raise RegistryError(f"no adapter {adapter_id!r} in ops.adapters")
        _lock_schema(conn, target.schema_name)
        current = conn.execute(
            select(adapters.c.adapter_id).where(
                adapters.c.schema_name == target.schema_name, adapters.c.status == "production"
            )
        ).scalar()
        if current == adapter_id:
            return target, None
        retired = None
        if current is not None:
            conn.execute(
                update(adapters)
                .where(adapters.c.adapter_id == current)
                .values(status="retired", retired_at=func.now(), retired_by=by)
            )
            retired = _get(conn, current)
        conn.execute(
            update(adapters)
            .where(adapters.c.adapter_id == adapter_id)
            .values(
                status="production",
                promoted_at=func.now(),
                promoted_by=by,
                retired_at=None,
                retired_by=None,
            )
        )
        promoted = _get(conn, adapter_id)
    assert promoted is not None
    log.info(
        "promoted adapter %s for %s%s",
        adapter_id,
        target.schema_name,
        f" (retired {retired.adapter_id})" if retired else "",
    )
    return promoted, retired


def retire(bind: Bind, adapter_id: str, by: str) -> AdapterRecord:
    """Retire ``adapter_id``; a retired production adapter leaves its schema without one (the
    pipeline then needs ``RRIEF_ADAPTER`` or another promotion)."""
    with transaction(bind) as conn:
        target = _get(conn, adapter_id)
        if target is None:
            raise RegistryError(f"no adapter {adapter_id!r} in ops.adapters")
        _lock_schema(conn, target.schema_name)
        if target.status != "retired":
            conn.execute(
                update(adapters)
                .where(adapters.c.adapter_id == adapter_id)
                .values(status="retired", retired_at=func.now(), retired_by=by)
            )
        record = _get(conn, adapter_id)
    assert record is not None
    return record


# --- what the pipeline extracts with ----------------------------------------------------------


class AdapterChoice(BaseModel):
    """The adapter one schema is extracted with, and why."""

    model_config = ConfigDict(frozen=True)

    ref: str = Field(description="what the backend loads: directory (hf) or served name (openai)")
    adapter_id: str = Field(description="recorded in raw.extractions.adapter_id")
    source: Literal["override", "registry"]


def choose_adapter(
    bind: Bind, schema_name: str, backend: str, override: str
) -> AdapterChoice | None:
    """``override`` (``RRIEF_ADAPTER``'s entry for the schema) when set, else the schema's
    production adapter; None when neither exists. An override that names a registered adapter
    (id, directory or served name) is recorded by that adapter's id, any other by itself."""
    if override:
        with transaction(bind) as conn:
            row = conn.execute(
                select(adapters.c.adapter_id).where(
                    adapters.c.schema_name == schema_name,
                    (adapters.c.adapter_id == override)
                    | (adapters.c.path == override)
                    | (adapters.c.served_name == override),
                )
            ).scalar()
        log.info("RRIEF_ADAPTER overrides the registry for %s: %s", schema_name, override)
        return AdapterChoice(ref=override, adapter_id=row or override, source="override")
    record = production_adapter(bind, schema_name)
    if record is None:
        return None
    ref = record.served_name if backend == "openai" else record.path  # hf, cascade (hf inside)
    return AdapterChoice(ref=ref, adapter_id=record.adapter_id, source="registry")


def describe(records: Sequence[AdapterRecord]) -> list[str]:
    """One line per adapter for ``rrief adapters list``."""
    lines = []
    for r in records:
        micro = r.metrics.get("micro_f1")
        score = f"micro-F1 {micro:.3f}" if isinstance(micro, int | float) else "no metrics"
        lines.append(
            f"{r.adapter_id}  {r.schema_name}@{r.schema_version}  {r.status:<10}  {score}  "
            f"trained on {r.training_size} ({r.training_sha256[:12]})"
        )
    return lines
