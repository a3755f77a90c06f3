"""``rrief evaluate``: score an extraction file against a gold standard, optionally against a rival.

:func:`run_evaluation` does the work and returns a JSON-ready dict (usable from notebooks and
benchmarks); the click command only parses options, prints and writes files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from extractors.evaluate.metrics import evaluate_tasks, paired_deltas, primary_key
from extractors.evaluate.predictions import PredictionFileError, PredictionSet, load_predictions
from extractors.evaluate.report import (
    CONVENTIONS,
    comparison_rows,
    coverage_dict,
    render_text,
    section_result,
    write_outputs,
)
from extractors.evaluate.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, holm, mcnemar_from_correct
from extractors.evaluate.tasks import Section, UncertainPolicy, build_sections
from extractors.gold import GOLD_FORMATS, GoldError, GoldSet, guess_gold_format, load_gold
from extractors.schemas import SchemaError, get_schema
from extractors.settings import get_settings

log = logging.getLogger("rrief.evaluate")


class EvaluationError(ValueError):
    """Inputs that cannot be scored together (reported to the user as one precise message)."""


def run_evaluation(
    schema_ref: str,
    pred_path: Path,
    gold_path: Path,
    gold_format: str = "auto",
    compare_path: Path | None = None,
    uncertain_policy: UncertainPolicy = "both",
    findings: Sequence[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    gold_id_col: str | None = None,
    schema_search_path: Sequence[Path] = (),
) -> dict[str, Any]:
    """Score ``pred_path`` (and ``compare_path``) against the gold; returns the result dict.

    ``schema_search_path``: directories of site schema files (``RRIEF_SCHEMA_PATH``).
    """
    try:
        schema = get_schema(schema_ref, schema_search_path)
        fmt = guess_gold_format(gold_path) if gold_format == "auto" else gold_format
        gold = load_gold(gold_path, fmt, schema, gold_id_col)
        preds = load_predictions(pred_path, schema)
        sections, cov = build_sections(schema, gold, preds, uncertain_policy, findings)
    except (SchemaError, GoldError, PredictionFileError) as exc:
        raise EvaluationError(str(exc)) from None
    _check_overlap(gold, preds)
    if cov.n_invalid == cov.n_gold:
        log.warning("no gold report has a usable prediction: every prediction is an error line")
    result: dict[str, Any] = {
        "schema": schema.id,
        "gold": {
            "format": fmt,
            "path": str(gold_path),
            "kind": gold.kind,
            "reports": len(gold),
            "skipped": len(gold.skipped),
            "findings": gold.findings,
            "note": gold.note,
        },
        "predictions": {
            "path": str(pred_path),
            "lines": preds.lines,
            "coverage": coverage_dict(cov),
        },
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
        "uncertain_policy": uncertain_policy,
        "conventions": CONVENTIONS,
        "sections": [section_result(s, evaluate_tasks(s.tasks, resamples, seed)) for s in sections],
    }
    if compare_path is not None:
        try:
            other = load_predictions(compare_path, schema)
            _check_overlap(gold, other)
            other_sections, other_cov = build_sections(
                schema, gold, other, uncertain_policy, findings
            )
        except (GoldError, PredictionFileError) as exc:
            raise EvaluationError(str(exc)) from None
        result["comparison"] = {
            "a": str(pred_path),
            "b": str(compare_path),
            "b_coverage": coverage_dict(other_cov),
            "rows": [
                row
                for sa, sb in zip(sections, other_sections, strict=True)
                for row in _compare_section(sa, sb, resamples, seed)
            ],
        }
    return result


def _check_overlap(gold: GoldSet, preds: PredictionSet) -> None:
    """Refuse predictions that share no report id with the gold: every score would be 0."""
    if not preds.labels and not preds.errors:
        raise EvaluationError(f"prediction file {preds.path} holds no prediction lines")
    if not set(gold.labels) & preds.ids():
        raise EvaluationError(
            f"none of the {len(gold)} gold report ids appears among the {len(preds.ids())} "
            f"report ids of {preds.path}: do both files describe the same reports? "
            "(check --gold-id-col and the id column given to rrief extract)"
        )


def _compare_section(a: Section, b: Section, resamples: int, seed: int) -> list[dict[str, Any]]:
    """Paired bootstrap per finding and for the aggregates; McNemar per finding; Holm per family."""
    task_keys = [primary_key(t) for t in a.tasks]
    reported = list(dict.fromkeys(c for t in a.tasks for c in t.reported))
    agg_keys = [("agg", c, avg, "f1") for c in reported for avg in ("micro", "macro")]
    overall = [("overall", "chexbert_weighted_f1"), ("overall", "exact_match")]
    deltas = paired_deltas(a.tasks, b.tasks, [*task_keys, *agg_keys, *overall], resamples, seed)
    mcnemars = {
        ta.name: mcnemar_from_correct(ta.correct, tb.correct)
        for ta, tb in zip(a.tasks, b.tasks, strict=True)
    }
    boot_ps = [deltas[k].p_value if k in deltas else float("nan") for k in task_keys]
    holm_boot = dict(zip(task_keys, holm(boot_ps), strict=True))
    names = [t.name for t in a.tasks]
    holm_mc = dict(zip(names, holm([mcnemars[n].p_value for n in names]), strict=True))
    return comparison_rows(a, deltas, mcnemars, holm_boot, holm_mc)


def _split_findings(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


@click.command("evaluate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--schema",
    "schema_ref",
    required=True,
    help="Schema of the predictions (cxr, mammo, ccta, cxr@1 or a schema file).",
)
@click.option(
    "--pred",
    "pred_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Result JSONL written by `rrief extract` (system A).",
)
@click.option(
    "--gold",
    "gold_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Gold standard file.",
)
@click.option(
    "--gold-format",
    type=click.Choice(["auto", *GOLD_FORMATS]),
    default="auto",
    show_default=True,
    help="jsonl: report_id/text/labels lines in the schema's format (as `rrief train` reads); "
    "openi-mesh: Open-i reports.csv MeSH terms (positive-only); chestxray14: NegBio "
    "labels_gold_chestxray14.csv (positive-only); cddcesm: CDD-CESM breast_reports.csv. "
    "auto guesses from the file name and header.",
)
@click.option(
    "--gold-id-col",
    default=None,
    help="Id column/key of the gold (default: report_id for jsonl, uid for Open-i CSVs).",
)
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A second result JSONL (system B): adds paired bootstrap P-values and McNemar "
    "per finding, Holm-adjusted.",
)
@click.option(
    "--uncertain-policy",
    type=click.Choice(["both", "positive", "negative"]),
    default="both",
    show_default=True,
    help="Positive-only gold: count a predicted 'uncertain' as positive (U-ones), as negative "
    "(U-zeros), or report both.",
)
@click.option(
    "--findings",
    "findings",
    multiple=True,
    help="Score only these findings/fields (repeat or comma-separate; a field name selects "
    "all its keys).",
)
@click.option(
    "--bootstrap",
    "resamples",
    default=DEFAULT_RESAMPLES,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Bootstrap resamples over reports for the 95% CIs (0: no CIs).",
)
@click.option(
    "--seed",
    default=DEFAULT_SEED,
    show_default=True,
    type=int,
    help="Bootstrap seed (same seed, same CIs).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(),
    default=None,
    help="Write NAME.json, NAME.csv (long format), NAME.txt: a directory (files named "
    "evaluation.*) or a path prefix.",
)
def evaluate(
    schema_ref: str,
    pred_path: Path,
    gold_path: Path,
    gold_format: str,
    gold_id_col: str | None,
    compare_path: Path | None,
    uncertain_policy: str,
    findings: tuple[str, ...],
    resamples: int,
    seed: int,
    out: str | None,
) -> None:
    """Score PRED against GOLD: per-finding precision, recall and F1 with 95% bootstrap CIs.

    Prints a paper-style table (rows = findings; micro, macro and support-weighted rows) and the
    invalid/error-output rate. Error lines, predictions that fail the schema and gold reports
    with no prediction count as misses — never dropped. Positive-only golds (Open-i MeSH,
    ChestX-ray14) are scored as binary detection of the positive class over the findings they
    cover. With --compare, each finding also gets a paired bootstrap P-value and McNemar's test,
    Holm-adjusted over the findings.

    \b
    Examples:
      rrief evaluate --schema cxr --pred out.jsonl --gold ../shared/data/cxr_openi/reports.csv
      rrief evaluate --schema cxr --pred rules.jsonl --compare llm.jsonl \\
          --gold labels_gold_chestxray14.csv --out results/
      rrief evaluate --schema mammo --pred mammo.jsonl --gold-format cddcesm \\
          --gold breast_reports.csv
    """
    if uncertain_policy not in ("both", "positive", "negative"):  # pragma: no cover - click guards
        raise click.BadParameter(uncertain_policy)
    try:
        result = run_evaluation(
            schema_ref,
            pred_path,
            gold_path,
            gold_format,
            compare_path,
            uncertain_policy,  # type: ignore[arg-type]
            _split_findings(findings) or None,
            resamples,
            seed,
            gold_id_col,
            get_settings().schema_dirs(),
        )
    except EvaluationError as exc:
        raise click.ClickException(str(exc)) from None
    text = render_text(result)
    click.echo(text)
    if out is not None:
        for path in write_outputs(result, text, out):
            click.echo(f"wrote {path}", err=True)
