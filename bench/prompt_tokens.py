"""Prompt and answer tokens per report, prompt template 1 vs 2, on the Open-i development reports.

Template 1 (what adapters used before): the full instruction and every field in the answer.
Template 2: the compact instruction (adapters) and sparse answers; the full template-2
instruction is what the base model gets zero-shot. Answers are measured on two label sets: the
MeSH gold (positives only) and the rules' labels (positives, negatives and uncertain: what a
fully annotated report's answer looks like). Tokens of SmolLM2's tokenizer (``make base-model``),
prompt = the rendered chat prompt, answer = the answer text plus end-of-sequence. Run::

    .venv/bin/python bench/prompt_tokens.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from extractors.extract.registry import make_extractor  # noqa: E402
from extractors.gold import load_examples  # noqa: E402
from extractors.llm.engine import encode_prompt  # noqa: E402
from extractors.llm.prompts import (  # noqa: E402
    BASE_MODEL_FORMAT,
    adapter_format,
    build_messages,
    render_prompt,
    target_text,
)
from extractors.results import ReportInput  # noqa: E402
from extractors.schemas import get_schema  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "cxr_openi" / "reports.csv"
BASE_MODEL = REPO / ".rrief" / "models" / "smollm2-135m-instruct"


def _stats(values: list[int]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered):.0f}, p95 {p95}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", type=Path, default=BASE_MODEL)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.base_model, local_files_only=True)
    schema = get_schema("cxr")
    examples, _ = load_examples(args.data, schema, "openi-mesh")
    rules = make_extractor("rules", schema).extract_batch(
        [ReportInput(report_id=e.report_id, text=e.text) for e in examples]
    )
    rule_labels = [r.labels or schema.empty_labels() for r in rules]
    formats = {
        "template 1 (full instruction, full answer)": adapter_format("1"),
        "template 2, adapter (compact instruction, sparse answer)": adapter_format("2"),
        "template 2, zero-shot (full instruction, sparse answer)": BASE_MODEL_FORMAT,
    }
    print(
        f"{len(examples)} Open-i dev reports with MeSH labels, tokenizer of {args.base_model.name}"
    )
    for title, fmt in formats.items():
        prompts = [
            len(encode_prompt(tok, render_prompt(tok, build_messages(schema, e.text, fmt))))
            for e in examples
        ]

        def answer(labels: dict, fmt=fmt) -> int:
            text = target_text(schema, labels, fmt)
            return len(tok(text, add_special_tokens=False)["input_ids"]) + 1

        mesh = [answer(e.labels) for e in examples]
        ruled = [answer(labels) for labels in rule_labels]
        print(f"- {title}: prompt {_stats(prompts)}; answer (MeSH labels) {_stats(mesh)}; "
              f"answer (rules' labels) {_stats(ruled)}")  # fmt: skip


if __name__ == "__main__":
    main()
