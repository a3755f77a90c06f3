"""Cost of `rrief evaluate`'s bootstrap: 1,000 resamples over 1,000 reports x 14 labels.

Run: ``.venv/bin/python bench/evaluate_bootstrap.py``. The issue's bound is well under 2 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extractors.evaluate.metrics import evaluate_tasks, make_task

STATES = ["positive", "negative", "uncertain", "not_mentioned"]


def random_tasks(n_reports: int, n_tasks: int, seed: int, accuracy: float = 0.8) -> list:
    """Four-state gold and predictions that agree with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(n_tasks):
        gold = list(rng.choice(STATES, n_reports))
        pred = [g if rng.random() < accuracy else str(rng.choice(STATES)) for g in gold]
        tasks.append(make_task(f"f{k}", STATES, gold, pred, STATES, STATES[:3], "weighted_f1"))
    return tasks


def main() -> None:
    tasks = random_tasks(1000, 14, seed=3)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        evaluate_tasks(tasks, resamples=1000, seed=0)
        best = min(best, time.perf_counter() - start)
    print(f"bootstrap 1000 resamples x 1000 reports x 14 labels: {best:.3f} s (bound: 2 s)")


if __name__ == "__main__":
    main()
