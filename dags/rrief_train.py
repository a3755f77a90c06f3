"""
### rrief_train — annotations → candidate adapter → gate → registry → promotion

Triggered by hand with params (`schema`, `hyperparameters`, `auto_promote`, gate margins), or by
the `rrief_gold` asset, which **rrief_gold_watch** (daily) updates when a schema has at least
`RRIEF_TRAIN_MIN_NEW_LABELS` final labels beyond those its newest adapter was trained on.

1. **snapshot** — the schema's final gold labels, train and frozen test split (by a hash of the
   report key), into immutable files named by their SHA-256 (`RRIEF_LIFECYCLE_DIR/snapshots`).
2. **train** — a LoRA adapter on the train snapshot into `RRIEF_ADAPTERS_DIR` (the volume vLLM
   mounts); `gpu` queue, `llm` pool.
3. **evaluate** — candidate, production adapter and rules on the test snapshot; the candidate
   is compared with the production adapter (the rules when there is none) by paired bootstrap
   (`rrief evaluate --compare`).
4. **gate** — micro-F1 not worse than the current extractor by more than
   `RRIEF_GATE_MICRO_F1_MARGIN`, no label's F1 dropping more than `RRIEF_GATE_LABEL_F1_DROP`.
   A failure is an `ops.alerts` row (check `gate`) and a failed task with the table in its log.
5. **register** — the candidate in `ops.adapters` with its test-split metrics.
6. **promote** — when `auto_promote` (param, else `RRIEF_AUTO_PROMOTE`): production, the
   previous adapter retired, and the `rrief_adapter_promoted` asset updated (it starts
   rrief_reextract); otherwise skipped, the candidate waits for `rrief adapters promote`.

All logic lives in `extractors.lifecycle`; this file only wires it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from extractors.lifecycle import tasks

LLM_ROUTING = tasks.LLM_ROUTING


@dag(
    dag_id="rrief_gold_watch",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=tasks.default_args(retries=1),
    tags=["rrief", "lifecycle"],
    doc_md="Updates the `rrief_gold` asset (starting rrief_train) when a schema has at least "
    "`RRIEF_TRAIN_MIN_NEW_LABELS` new final labels; skipped otherwise.",
)
def rrief_gold_watch() -> None:
    @task(outlets=[tasks.GOLD], retries=0)
    def watch_gold() -> dict[str, Any]:
        return tasks.watch_gold(get_current_context())

    watch_gold()


@dag(
    dag_id="rrief_train",
    schedule=[tasks.GOLD],
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=tasks.default_args(retries=1),
    params={
        "schema": Param(
            "cxr", type="string", description="schema to train (asset runs: its event's)"
        ),
        "hyperparameters": Param(
            {}, type="object", description="TrainConfig fields, e.g. {'epochs': 3}"
        ),
        "auto_promote": Param(
            None, type=["null", "boolean"], description="null: RRIEF_AUTO_PROMOTE"
        ),
    },
    tags=["rrief", "lifecycle"],
    doc_md=__doc__,
)
def rrief_train() -> None:
    @task
    def snapshot() -> dict[str, Any]:
        return tasks.snapshot(get_current_context())

    @task(retries=0, **LLM_ROUTING)  # a failed training is looked at, not repeated blindly
    def train(snap: dict[str, Any]) -> dict[str, Any]:
        return tasks.train(get_current_context(), snap)

    @task(**LLM_ROUTING)
    def evaluate(snap: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
        return tasks.evaluate(get_current_context(), snap, trained)

    @task(task_id="gate", retries=0)  # a failed gate is a finding; retrying only repeats it
    def gate(
        comparison: dict[str, Any], snap: dict[str, Any], trained: dict[str, Any]
    ) -> dict[str, Any]:
        return tasks.gate_candidate(get_current_context(), comparison, snap, trained)

    @task
    def register(trained: dict[str, Any], metrics: dict[str, Any]) -> str:
        return tasks.register(get_current_context(), trained, metrics)

    @task(outlets=[tasks.PROMOTED])
    def promote(adapter_id: str) -> dict[str, Any]:
        return tasks.promote(get_current_context(), adapter_id)

    snap = snapshot()
    trained = train(snap)
    metrics = gate(evaluate(snap, trained), snap, trained)
    promote(register(trained, metrics))


rrief_gold_watch()
rrief_train()
