"""Batched versus one-report-at-a-time constrained generation on the tiny test model (CPU).

Builds the tiny random-weight model from ``tests/tiny_llm.py`` in a temporary directory (no
download), then extracts the same reports with ``HFEngine.generate`` one at a time and in
batches of 32, JSON-constrained to the schema, and prints reports/s and the speedup.
Target: >= 5x at batch 32. Usage: ``python bench/llm_batching.py [--reports 64] [--schema cxr]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=64, help="reports per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--schema", default="cxr")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    from extractors.llm.engine import HFEngine
    from extractors.llm.json_bounds import max_new_tokens_for_schema
    from extractors.llm.prompts import build_messages
    from extractors.schemas import get_schema
    from tests.tiny_llm import TRAIN_CXR, build_tiny_llama

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    schema = get_schema(args.schema)
    texts = [
        json.loads(line)["text"] for line in TRAIN_CXR.read_text().splitlines() if line.strip()
    ]
    texts = [texts[i % len(texts)] for i in range(args.reports)]
    json_schema = schema.json_schema()
    budget = max_new_tokens_for_schema(json_schema)
    with tempfile.TemporaryDirectory() as tmp:
        engine = HFEngine(build_tiny_llama(Path(tmp) / "tiny"), device="cpu")
        prompts = [engine.render_chat(build_messages(schema, t)) for t in texts]
        engine.generate(prompts[:2], json_schema=json_schema, max_new_tokens=budget)  # warm-up

        def run(batch_size: int) -> tuple[float, list[str]]:
            start = time.perf_counter()
            out: list[str] = []
            for i in range(0, len(prompts), batch_size):
                gens = engine.generate(
                    prompts[i : i + batch_size], json_schema=json_schema, max_new_tokens=budget
                )
                out.extend(g.text for g in gens)
            return len(prompts) / (time.perf_counter() - start), out

        single_rate, single_out = run(1)
        batch_rate, batch_out = run(args.batch_size)
    valid = sum(1 for text in batch_out if schema.validate_labels(json.loads(text)))
    print(f"schema {schema.id}, {len(prompts)} reports, torch threads {args.threads}, CPU")
    print(f"one at a time : {single_rate:8.1f} reports/s")
    print(f"batch of {args.batch_size:<4} : {batch_rate:8.1f} reports/s")
    print(f"speedup       : {batch_rate / single_rate:8.1f}x (target >= 5x)")
    print(
        f"identical outputs batched vs single: {batch_out == single_out}; schema-valid: {valid}/{len(batch_out)}"
    )


if __name__ == "__main__":
    main()
