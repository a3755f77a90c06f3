"""Metrics over labelled reports: per-class P/R/F1, micro/macro/weighted F1, accuracy.

A :class:`Task` is one thing scored per report — a finding (``Pleural Effusion``), a per-key field
(``birads.left``) or a binary view of one (``Pleural Effusion`` positive vs not). Each task has a
closed list of classes; the gold value ``None`` means "this report is not scored for this task"
(e.g. density not labelled) and any prediction outside the classes (``INVALID``: an error line,
a missing prediction, labels that failed validation) never matches, so it costs recall of the
gold class and adds no false positive. Nothing is dropped silently: an invalid prediction is a miss.

All metrics are functions of *counts* (tp/fp/fn per task and class, correct and scored per task),
so the same code gives the point estimate (column sums) and every bootstrap resample
(``W @ indicators``, see :mod:`extractors.evaluate.stats`).

Conventions (stated in every output):
- precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 tp / (2 tp + fp + fn);
  undefined (NaN, shown as "—") when the denominator is 0; support = tp + fn (gold count).
- micro (per class, over tasks): P/R/F1 from tp/fp/fn summed over tasks.
- macro (per class, over tasks): unweighted mean over tasks with gold support > 0 (in each
  bootstrap resample: tasks with support in that resample).
- weighted (per class, over tasks): mean of per-task P, R and F1 weighted by gold support.
- in both averages an undefined per-task value (e.g. precision of a class never predicted)
  counts as 0, as scikit-learn's ``zero_division=0`` does.
- CheXbert-style weighted F1 (per task): the F1s of the task's mention classes (positive,
  negative, uncertain — not the blank ``not_mentioned``) weighted by their gold support; the
  overall figure is the unweighted mean of that over tasks, as CheXbert reports it.
- accuracy (per task): exact match over the reports scored for the task; exact_match (overall):
  reports whose every scored task is correct, over reports scored for at least one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from extractors.evaluate.stats import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    Interval,
    bootstrap_counts,
    paired_bootstrap_pvalue,
    percentile_interval,
)

INVALID = "<invalid>"
"""Prediction value of an error line, a missing prediction or labels that failed validation."""

Key = tuple[str, ...]


@dataclass(frozen=True)
class Task:
    """One scored label: its classes, gold and predicted class per report (int codes).

    ``gold[i] == -1``: report ``i`` is not scored; ``pred[i] == -1``: invalid/unknown prediction.
    ``reported``: classes that get their own P/R/F1 rows; ``weighted``: classes entering the
    CheXbert-style weighted F1 (empty for tasks where it does not apply).
    """

    name: str
    classes: tuple[str, ...]
    gold: np.ndarray
    pred: np.ndarray
    reported: tuple[str, ...]
    weighted: tuple[str, ...] = ()
    primary: str = (
        "accuracy"  # metric compared between systems: "accuracy" | "f1:<class>" | "weighted_f1"
    )

    @property
    def scored(self) -> np.ndarray:
        return self.gold >= 0

    @property
    def correct(self) -> np.ndarray:
        """Per report: scored and predicted the gold class."""
        return self.scored & (self.gold == self.pred)


def make_task(
    name: str,
    classes: Sequence[str],
    gold: Sequence[str | None],
    pred: Sequence[str | None],
    reported: Sequence[str] | None = None,
    weighted: Sequence[str] = (),
    primary: str = "accuracy",
) -> Task:
    """Build a :class:`Task`; gold ``None``: not scored; pred outside: invalid."""
    if len(gold) != len(pred):
        raise ValueError(f"task {name!r}: {len(gold)} gold values but {len(pred)} predictions")
    classes = tuple(classes)
    if len(set(classes)) != len(classes):
        raise ValueError(f"task {name!r}: classes repeat: {classes}")
    code = {c: i for i, c in enumerate(classes)}
    bad = sorted({g for g in gold if g is not None and g not in code})
    if bad:
        raise ValueError(f"task {name!r}: gold values {bad} are not among its classes {classes}")
    gold_codes = np.array([-1 if g is None else code[g] for g in gold], dtype=np.int64)
    pred_codes = np.array([code.get(p, -1) if p is not None else -1 for p in pred], dtype=np.int64)
    reported = tuple(classes if reported is None else reported)
    for c in (*reported, *weighted):
        if c not in code:
            raise ValueError(f"task {name!r}: class {c!r} is not among {classes}")
    return Task(name, classes, gold_codes, pred_codes, reported, tuple(weighted), primary)


@dataclass
class Scorer:
    """Lays out the count columns of a set of tasks and turns counts into metrics."""

    tasks: list[Task]
    columns: dict[Key, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("nothing to score: no tasks")
        n = {t.gold.shape[0] for t in self.tasks}
        if len(n) != 1:
            raise ValueError("all tasks must cover the same reports")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names repeat: {names}")
        for t in self.tasks:
            for c in t.classes:
                for kind in ("tp", "fp", "fn"):
                    self.columns[(t.name, c, kind)] = len(self.columns)
            self.columns[(t.name, "correct")] = len(self.columns)
            self.columns[(t.name, "scored")] = len(self.columns)
        self.columns[("all_correct",)] = len(self.columns)
        self.columns[("any_scored",)] = len(self.columns)

    @property
    def n_reports(self) -> int:
        return int(self.tasks[0].gold.shape[0])

    def indicators(self) -> np.ndarray:
        """Reports x columns 0/1 matrix; its column sums are the counts of the full data."""
        x = np.zeros((self.n_reports, len(self.columns)), dtype=np.float64)
        all_correct = np.ones(self.n_reports, dtype=bool)
        any_scored = np.zeros(self.n_reports, dtype=bool)
        for t in self.tasks:
            scored = t.scored
            for ci, c in enumerate(t.classes):
                is_gold = t.gold == ci
                is_pred = scored & (t.pred == ci)
                x[:, self.columns[(t.name, c, "tp")]] = is_gold & is_pred
                x[:, self.columns[(t.name, c, "fp")]] = is_pred & ~is_gold
                x[:, self.columns[(t.name, c, "fn")]] = is_gold & ~is_pred
            x[:, self.columns[(t.name, "correct")]] = t.correct
            x[:, self.columns[(t.name, "scored")]] = scored
            all_correct &= t.correct | ~scored
            any_scored |= scored
        x[:, self.columns[("all_correct",)]] = all_correct & any_scored
        x[:, self.columns[("any_scored",)]] = any_scored
        return x

    def count(self, counts: np.ndarray, *key: str) -> np.ndarray:
        return counts[..., self.columns[key]]

    def metrics(self, counts: np.ndarray) -> dict[Key, np.ndarray]:
        """All metrics from counts of shape ``(..., columns)``; each value has shape ``(...)``."""
        out: dict[Key, np.ndarray] = {}
        supports: dict[str, list[np.ndarray]] = {}
        chexbert: list[np.ndarray] = []
        with np.errstate(invalid="ignore", divide="ignore"):
            for t in self.tasks:
                f1s: dict[str, tuple[np.ndarray, np.ndarray]] = {}
                for c in t.classes:
                    tp, fp, fn = (self.count(counts, t.name, c, k) for k in ("tp", "fp", "fn"))
                    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
                    f1s[c] = (f1, tp + fn)
                    if c in t.reported:
                        out[("class", t.name, c, "precision")] = _ratio(tp, tp + fp)
                        out[("class", t.name, c, "recall")] = _ratio(tp, tp + fn)
                        out[("class", t.name, c, "f1")] = f1
                        out[("class", t.name, c, "support")] = tp + fn
                        supports.setdefault(c, []).append(tp + fn)
                scored = self.count(counts, t.name, "scored")
                out[("task", t.name, "accuracy")] = _ratio(
                    self.count(counts, t.name, "correct"), scored
                )
                out[("task", t.name, "scored")] = scored
                if t.weighted:
                    f = np.stack([np.nan_to_num(f1s[c][0]) for c in t.weighted])
                    s = np.stack([f1s[c][1] for c in t.weighted])
                    wf1 = _ratio((f * s).sum(axis=0), s.sum(axis=0))
                    out[("task", t.name, "weighted_f1")] = wf1
                    chexbert.append(wf1)
            for c, support_list in supports.items():
                tasks = [t for t in self.tasks if c in t.reported]
                s = np.stack(support_list)
                tp = sum(self.count(counts, t.name, c, "tp") for t in tasks)
                fp = sum(self.count(counts, t.name, c, "fp") for t in tasks)
                fn = sum(self.count(counts, t.name, c, "fn") for t in tasks)
                out[("agg", c, "micro", "precision")] = _ratio(tp, tp + fp)
                out[("agg", c, "micro", "recall")] = _ratio(tp, tp + fn)
                out[("agg", c, "micro", "f1")] = _ratio(2 * tp, 2 * tp + fp + fn)
                for metric in ("precision", "recall", "f1"):
                    f = np.stack([np.nan_to_num(out[("class", t.name, c, metric)]) for t in tasks])
                    # macro: tasks with support in this (re)sample; undefined values count as 0
                    out[("agg", c, "macro", metric)] = _nanmean(np.where(s > 0, f, np.nan))
                    out[("agg", c, "weighted", metric)] = _ratio((f * s).sum(axis=0), s.sum(axis=0))
            if chexbert:
                out[("overall", "chexbert_weighted_f1")] = _nanmean(np.stack(chexbert))
            out[("overall", "exact_match")] = _ratio(
                self.count(counts, "all_correct"), self.count(counts, "any_scored")
            )
        return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _nanmean(stacked: np.ndarray) -> np.ndarray:
    finite = np.isfinite(stacked)
    total = np.where(finite, stacked, 0.0).sum(axis=0)
    n = finite.sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


COUNT_METRICS = ("support", "scored")
"""Metric names that are counts: reported as integers without a CI."""


@dataclass
class Evaluation:
    """Point estimates with bootstrap intervals for every metric of a set of tasks."""

    scorer: Scorer
    values: dict[Key, Interval]
    resamples: int
    seed: int


def evaluate_tasks(
    tasks: list[Task], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> Evaluation:
    """Score ``tasks`` and attach 95% percentile bootstrap CIs (``resamples`` over reports)."""
    scorer = Scorer(tasks)
    x = scorer.indicators()
    point = scorer.metrics(x.sum(axis=0))
    boot = scorer.metrics(bootstrap_counts(x, resamples, seed)) if resamples > 0 else {}
    values: dict[Key, Interval] = {}
    for key, value in point.items():
        v = float(value)
        if key[-1] in COUNT_METRICS or not boot:
            values[key] = Interval(v, float("nan"), float("nan"))
        else:
            values[key] = percentile_interval(v, boot[key])
    return Evaluation(scorer, values, resamples, seed)


def primary_key(task: Task) -> Key:
    """The metric key compared between two systems for ``task``."""
    if task.primary == "weighted_f1":
        return ("task", task.name, "weighted_f1")
    if task.primary.startswith("f1:"):
        return ("class", task.name, task.primary[3:], "f1")
    return ("task", task.name, "accuracy")


@dataclass(frozen=True)
class PairedDelta:
    """Metric of A, metric of B, A - B with its bootstrap CI, and the paired bootstrap P-value."""

    a: float
    b: float
    delta: Interval
    p_value: float


def paired_deltas(
    tasks_a: list[Task],
    tasks_b: list[Task],
    keys: Sequence[Key],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[Key, PairedDelta]:
    """Paired bootstrap of metric differences: both systems are scored on the same resamples."""
    sa, sb = Scorer(tasks_a), Scorer(tasks_b)
    if sa.n_reports != sb.n_reports or sa.columns != sb.columns:
        raise ValueError("paired comparison needs the same tasks over the same reports")
    xa, xb = sa.indicators(), sb.indicators()
    pa, pb = sa.metrics(xa.sum(axis=0)), sb.metrics(xb.sum(axis=0))
    k = xa.shape[1]
    if resamples > 0:
        boot = bootstrap_counts(np.concatenate([xa, xb], axis=1), resamples, seed)
    else:  # no resamples: deltas without CI or P-value
        boot = np.full((1, 2 * k), np.nan)
    ba, bb = sa.metrics(boot[:, :k]), sb.metrics(boot[:, k:])
    out: dict[Key, PairedDelta] = {}
    for key in keys:
        if key not in pa:
            continue
        a, b = float(pa[key]), float(pb[key])
        samples = ba[key] - bb[key]
        out[key] = PairedDelta(
            a, b, percentile_interval(a - b, samples), paired_bootstrap_pvalue(a - b, samples)
        )
    return out
