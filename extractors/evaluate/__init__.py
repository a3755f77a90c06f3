"""Paper-grade evaluation of extraction results: metrics, bootstrap CIs, paired tests, gold files.

Entry points: :func:`extractors.evaluate.command.run_evaluation` (a JSON-ready result) and the
``rrief evaluate`` click command in :mod:`extractors.evaluate.command`.
"""

from extractors.evaluate.metrics import Task, evaluate_tasks, make_task
from extractors.evaluate.stats import holm, mcnemar, paired_bootstrap_pvalue
from extractors.gold import GOLD_FORMATS, GoldError, GoldSet, load_gold

__all__ = [
    "GOLD_FORMATS",
    "GoldError",
    "GoldSet",
    "Task",
    "evaluate_tasks",
    "holm",
    "load_gold",
    "make_task",
    "mcnemar",
    "paired_bootstrap_pvalue",
]
