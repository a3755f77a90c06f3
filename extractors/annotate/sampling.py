"""Which reports to annotate: ``rrief annotate sample`` makes tasks from reports of a schema's
type that have no task for that schema version yet.

- ``random``: a seeded random order of the candidates.
- ``stratified``: balances over the current extractor's positive labels: one stratum per
  ``path=value`` it asserts (anything but the schema default, negative, absent, not mentioned
  or not stated) plus one for reports with none, taken round-robin from the rarest up, so rare
  findings are not swamped by normals.
- ``disagreement``: reports where the rules and another extractor disagree (the newest stored
  result of a non-rules backend in raw.extractions for the same text, or a live one passed in),
  or where the rules said ``uncertain``; the most disputed first.

``double`` gives that share of the new tasks to two annotators (agreement, adjudication).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text

from extractors.annotate.agreement import value_at
from extractors.annotate.forms import label_paths
from extractors.extract.base import Extractor
from extractors.gold.annotations import AnnotationError, Bind, NewTask, add_tasks
from extractors.results import ReportInput
from extractors.schemas import SchemaSpec
from extractors.warehouse.load import transaction

log = logging.getLogger("rrief.annotate")
Strategy = Literal["random", "stratified", "disagreement"]
STRATEGIES: tuple[str, ...] = ("random", "stratified", "disagreement")
DEFAULT_POOL = 5000
NOT_POSITIVE = {None, "negative", "absent", "not_mentioned", "no", "none", "normal"}
EXTRACT_BATCH = 64


class Candidate(BaseModel):
    report_key: str
    text: str
    content_sha256: str


class SampleResult(BaseModel):
    """What a sampling run did."""

    schema_id: str
    strategy: str
    batch: str
    candidates: int
    created: int
    double: int
    reasons: dict[str, int]
    notes: list[str]


def _order(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def candidates(bind: Bind, schema: SchemaSpec, *, pool: int, seed: int) -> list[Candidate]:
    """Up to ``pool`` reports of the schema's type (``report_type`` = schema name, or one of its
    modalities) without a task for this schema version, in a seeded random order."""
    with transaction(bind) as conn:
        rows = conn.execute(
            text(
                "SELECT r.report_key, r.report_text, r.content_sha256 FROM raw.reports r "
                "WHERE (r.report_type = :name OR r.modality = ANY(:modalities)) "
                "AND NOT EXISTS (SELECT 1 FROM annotation.tasks t WHERE t.report_key = r.report_key "
                "AND t.schema_name = :name AND t.schema_version = :version) "
                "ORDER BY md5(:seed || r.report_key) LIMIT :pool"
            ),
            {
                "name": schema.name,
                "version": schema.version,
                "modalities": list(schema.modalities),
                "seed": str(seed),
                "pool": pool,
            },
        ).all()
    return [Candidate(report_key=r[0], text=r[1], content_sha256=r[2]) for r in rows]


def _extract(
    extractor: Extractor, cands: Sequence[Candidate], tick: Callable[[int], None]
) -> dict[str, dict[str, Any]]:
    """Labels per report key (reports the extractor fails on are left out)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(cands), EXTRACT_BATCH):
        chunk = cands[i : i + EXTRACT_BATCH]
        results = extractor.extract_batch(
            [ReportInput(report_id=c.report_key, text=c.text) for c in chunk]
        )
        for c, r in zip(chunk, results, strict=True):
            if r.status == "ok" and r.labels is not None:
                out[c.report_key] = r.labels
        tick(len(chunk))
    return out


def positive_strata(schema: SchemaSpec, labels: dict[str, Any]) -> list[str]:
    """``path=value`` for every value the labels assert (see the module docstring)."""
    defaults = schema.empty_labels()
    found = []
    for path in label_paths(schema):
        value, default = value_at(labels, path), value_at(defaults, path)
        if value == default:
            continue
        items = value if isinstance(value, tuple) else (value,)
        found += [f"{path}={v}" for v in items if v not in NOT_POSITIVE]
    return found


def _stratified(schema: SchemaSpec, cands: list[Candidate], labels: dict[str, dict], n: int) -> list[tuple[Candidate, str]]:  # fmt: skip
    strata: dict[str, list[Candidate]] = {}
    for c in cands:
        if c.report_key not in labels:
            continue
        for s in positive_strata(schema, labels[c.report_key]) or ["no positive label"]:
            strata.setdefault(s, []).append(c)
    order = sorted(strata, key=lambda s: (len(strata[s]), s))
    taken: dict[str, tuple[Candidate, str]] = {}
    cursors = dict.fromkeys(order, 0)
    while len(taken) < n and any(cursors[s] < len(strata[s]) for s in order):
        for s in order:
            while cursors[s] < len(strata[s]) and strata[s][cursors[s]].report_key in taken:
                cursors[s] += 1
            if cursors[s] < len(strata[s]) and len(taken) < n:
                c = strata[s][cursors[s]]
                taken[c.report_key] = (c, f"stratified: {s}")
                cursors[s] += 1
    return list(taken.values())


def stored_other_labels(bind: Bind, schema: SchemaSpec, cands: Sequence[Candidate]) -> tuple[dict[str, dict], str | None]:  # fmt: skip
    """The newest ok non-rules extraction of each candidate's current text, and its name."""
    if not cands:
        return {}, None
    with transaction(bind) as conn:
        rows = conn.execute(
            text(
                "SELECT DISTINCT ON (e.report_key) e.report_key, e.labels, e.backend, "
                "coalesce(e.adapter_id, e.extractor_version) FROM raw.extractions e "
                "WHERE e.report_key = ANY(:keys) AND e.schema_name = :name "
                "AND e.schema_version = :version AND e.status = 'ok' AND e.backend <> 'rules' "
                "AND e.content_sha256 = (SELECT r.content_sha256 FROM raw.reports r "
                "WHERE r.report_key = e.report_key) "
                "ORDER BY e.report_key, e.extracted_at DESC"
            ),
            {"keys": [c.report_key for c in cands], "name": schema.name, "version": schema.version},
        ).all()
    names = sorted({f"{r[2]}:{r[3]}" for r in rows})
    return {r[0]: r[1] for r in rows}, ", ".join(names) or None


def _disagreement(
    schema: SchemaSpec, cands: list[Candidate], rules: dict[str, dict], other: dict[str, dict],
    other_name: str, n: int,
) -> list[tuple[Candidate, str]]:  # fmt: skip
    scored = []
    for rank, c in enumerate(cands):
        mine = rules.get(c.report_key)
        if mine is None:
            continue
        theirs = other.get(c.report_key)
        differ = [p for p in label_paths(schema) if theirs is not None and value_at(mine, p) != value_at(theirs, p)]  # fmt: skip
        unsure = [p for p in label_paths(schema) if value_at(mine, p) == "uncertain"]
        if not differ and not unsure:
            continue
        parts = []
        if differ:
            parts.append(f"rules vs {other_name} on {', '.join(differ)}")
        if unsure:
            parts.append(f"rules uncertain on {', '.join(unsure)}")
        scored.append((-(len(differ) + len(unsure)), rank, c, "disagreement: " + "; ".join(parts)))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [(c, why[:500]) for _, _, c, why in scored[:n]]


def sample_tasks(
    bind: Bind,
    schema: SchemaSpec,
    n: int,
    strategy: Strategy,
    *,
    double: float = 0.0,
    seed: int = 0,
    batch: str | None = None,
    extractor: Extractor | None = None,
    rules: Extractor | None = None,
    against: Extractor | None = None,
    pool: int = DEFAULT_POOL,
    progress: Callable[[int], None] | None = None,
) -> SampleResult:
    """Create up to ``n`` tasks for ``schema`` and say what was done.

    ``extractor`` (the current one) drives ``stratified``; ``rules`` and, when given,
    ``against`` (else the stored non-rules results) drive ``disagreement``.
    """
    if strategy not in STRATEGIES:
        raise AnnotationError(f"unknown strategy {strategy!r}; choose {', '.join(STRATEGIES)}")
    if not 0.0 <= double <= 1.0:
        raise AnnotationError("--double is a share between 0 and 1")
    tick = progress or (lambda _: None)
    batch = batch or f"{schema.id}-{strategy}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    notes: list[str] = []
    cands = candidates(bind, schema, pool=max(pool, n) if strategy == "random" else pool, seed=seed)
    if strategy == "random":
        chosen = [(c, "random") for c in cands[:n]]
    elif strategy == "stratified":
        if extractor is None:
            raise AnnotationError(
                f"stratified sampling needs an extractor for {schema.id} to find positive "
                "labels, and none is available (rules cover cxr, mammo, ccta; set RRIEF_BACKEND "
                "and RRIEF_ADAPTER for an adapter), or use --strategy random"
            )
        chosen = _stratified(schema, cands, _extract(extractor, cands, tick), n)
    else:
        if rules is None:
            raise AnnotationError(
                f"disagreement sampling compares the rules with another extractor, and there "
                f"are no rules for {schema.id}; use --strategy random or stratified"
            )
        rule_labels = _extract(rules, cands, tick)
        if against is not None:
            other = _extract(against, cands, tick)
            other_name = f"{against.backend}:{against.version}"
        else:
            other, stored_name = stored_other_labels(bind, schema, cands)
            other_name = stored_name or "nothing"
            if not other:
                notes.append(
                    "no stored result of another extractor for these reports: picked reports "
                    "where the rules are uncertain"
                )
        chosen = _disagreement(schema, cands, rule_labels, other, other_name, n)
    if len(chosen) < n:
        notes.append(f"only {len(chosen)} of the {n} requested reports qualified")
    n_double = round(len(chosen) * double)
    doubles = {c.report_key for c, _ in sorted(chosen, key=lambda t: _order(t[0].report_key, seed + 1))[:n_double]}  # fmt: skip
    new = [
        NewTask(
            report_key=c.report_key,
            schema_name=schema.name,
            schema_version=schema.version,
            strategy=strategy,
            reason=reason,
            batch=batch,
            n_annotators=2 if c.report_key in doubles else 1,
        )
        for c, reason in chosen
    ]
    created = add_tasks(bind, new)
    reasons: dict[str, int] = {}
    for t in created:
        key = t.reason if strategy != "disagreement" else t.reason.split(" on ")[0]
        reasons[key] = reasons.get(key, 0) + 1
    log.info("sampled %d %s tasks for %s (batch %s)", len(created), strategy, schema.id, batch)
    return SampleResult(
        schema_id=schema.id,
        strategy=strategy,
        batch=batch,
        candidates=len(cands),
        created=len(created),
        double=sum(1 for t in created if t.n_annotators > 1),
        reasons=dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        notes=notes,
    )
