#!/usr/bin/env python
"""GPU throughput of the LLM path: batched extraction reports/s and LoRA training step time.

Builds a randomly initialised model with the Llama-3-8B architecture (hidden 4096, 32 layers,
32 heads, 8 KV heads, intermediate 14336, vocab 128256) in bf16 on CUDA -- no weights are needed
to measure speed -- attaches a rank-16 LoRA adapter on all linear layers (the vLLM-compatible
default of ``rrief train``) and measures:

1. batched generation at the lengths of prompt template 2 as measured on Open-i by
   ``bench/prompt_tokens.py`` (compact-instruction prompts ~160 tokens, sparse JSON answers ~40
   tokens), one report at a time versus larger batches, with the adapter active;
2. the same, JSON-constrained to the cxr schema's sparse answer schema (every property
   optional, schema order) with lm-format-enforcer, when that package and
   the project (pydantic, pyyaml) import -- otherwise the row is skipped with a note;
3. LoRA training step time (sequence 288: p95 prompt + answer, batch 4 and 8, gradient checkpointing, AdamW,
   loss on the answer tokens only, as ``rrief train`` does).

Needs only torch, transformers and peft (the GPU machine reaches no package registry); the
project is imported from the repository path. Runs in well under 8 minutes on one H100.
``--tiny`` runs the same code on a small float32 model on CPU (a smoke test, not a benchmark).

    python bench/gpu_throughput.py                # the real run (CUDA)
    python bench/gpu_throughput.py --tiny         # smoke test on CPU
    python bench/gpu_throughput.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # import the project from the repository, no install needed

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessor  # noqa: E402

OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
TIME_BUDGET_S = 7 * 60  # stop starting new measurements after this (the issue allows 8 min)


@dataclass(frozen=True)
class Profile:
    """Model size, device and workload of one run."""

    name: str
    model: dict[str, int]
    device: str
    dtype: torch.dtype
    gen_batches: tuple[int, ...]
    min_reports: int  # measure at least this many reports per batch size (>= 1 batch)
    prompt_mean: int = 160  # template 2, Open-i: median prompt 154, p95 220 (prompt_tokens.py)
    prompt_sd: int = 40
    answer_tokens: int = 40  # sparse answer of fully labelled reports: median 40, p95 57
    train_seq: int = 288
    train_batches: tuple[int, ...] = (4, 8)
    train_steps: int = 3
    lora_rank: int = 16


LLAMA3_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
}
GPU = Profile("llama-3-8b-arch", LLAMA3_8B, "cuda", torch.bfloat16, (1, 16, 64), 64)
TINY = Profile(
    "tiny-cpu",
    {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 4096,
        "max_position_embeddings": 1024,
    },
    "cpu",
    torch.float32,
    (1, 8),
    8,
    train_batches=(4,),
    train_steps=2,
)


@dataclass
class Row:
    """One line of the result table."""

    what: str
    batch: int
    reports: int
    seconds: float
    reports_per_s: float | None = None
    tokens_per_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- model ------------------------------------------------------------------------------------
def build_model(p: Profile) -> torch.nn.Module:
    """Random-init Llama of the profile's size, directly on the device, with a LoRA adapter."""
    config = LlamaConfig(
        **p.model,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(p.dtype)  # initialise in bf16 directly: no fp32 copy of 8B params
    try:
        with torch.device(p.device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    lora = LoraConfig(
        r=p.lora_rank,
        lora_alpha=2 * p.lora_rank,
        lora_dropout=0.05,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def prompt_batch(p: Profile, batch: int, rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded random prompts with report-like length spread (pad id 0)."""
    vocab = p.model["vocab_size"]
    lengths = [
        max(p.prompt_mean // 2, min(int(rng.gauss(p.prompt_mean, p.prompt_sd)), 2 * p.prompt_mean))
        for _ in range(batch)
    ]
    width = max(lengths)
    ids = torch.zeros((batch, width), dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, width - n :] = torch.tensor([rng.randrange(3, vocab) for _ in range(n)])
        mask[i, width - n :] = 1
    return ids.to(p.device), mask.to(p.device)


# -- constrained decoding (optional: lm-format-enforcer + the project) -------------------------
@dataclass(frozen=True)
class Constraint:
    """Constrained decoding for the benchmark: processor factory, token budget, output check."""

    make: Callable[[int], LogitsProcessor]  # prompt width -> fresh logits processor
    budget: int  # max_new_tokens: the schema's longest possible answer
    is_valid: Callable[[list[int]], bool]  # generated token ids -> schema-valid labels?


def build_constraint(p: Profile) -> tuple[Constraint | None, str]:
    """The project's own constraint (lm-format-enforcer) for the cxr schema, or None and why."""
    try:
        import lmformatenforcer  # noqa: F401
    except ImportError:
        return None, "lm-format-enforcer is not installed: constrained rows skipped"
    try:
        from extractors.llm.constrained import (
            JsonConstraintProcessor,
            build_tokenizer_data,
            make_enforcer,
        )
        from extractors.llm.json_bounds import max_new_tokens_for_schema
        from extractors.llm.sparse import parse_sparse, sparse_json, sparse_json_schema
        from extractors.schemas import get_schema
    except ImportError as exc:
        return (
            None,
            f"the project does not import here ({exc.name} missing): constrained rows skipped",
        )
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    schema = get_schema("cxr")
    json_schema = sparse_json_schema(schema)  # what adapters of template 2 answer
    # No Llama-3 tokenizer can be downloaded: train a byte-level BPE on label JSON so answers
    # have realistic token counts. Its vocabulary is far smaller than 128256, so the per-step
    # masking cost is an underestimate of a real tokenizer's (noted in the output).
    rng = random.Random(1)
    corpus = [
        sparse_json(
            schema,
            {f.name: rng.choice(schema.allowed_values(f) or [None]) for f in schema.fields},
        )
        for _ in range(400)
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(400, p.model["vocab_size"]),
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    data = build_tokenizer_data(tokenizer, [2], len(tokenizer))

    def make(prompt_width: int) -> LogitsProcessor:
        return JsonConstraintProcessor(make_enforcer(data, json_schema), prompt_width, [2])

    note = (
        "constrained rows use the project's lm-format-enforcer constraint for the cxr schema "
        f"with a stand-in tokenizer of {len(tokenizer)} tokens (a real 128k vocabulary costs more "
        "per step); a random model spells the JSON in short tokens, so its answers are longer "
        "than a trained model's (~40 tokens for cxr, sparse)"
    )

    def is_valid(ids: list[int]) -> bool:
        try:
            parse_sparse(schema, tokenizer.decode(ids, skip_special_tokens=True))
        except ValueError:
            return False
        return True

    return Constraint(make, max_new_tokens_for_schema(json_schema), is_valid), note


# -- measurements -----------------------------------------------------------------------------
def measure_generation(
    model: torch.nn.Module,
    p: Profile,
    batch: int,
    constraint: Constraint | None,
    rng: random.Random,
) -> Row:
    """Generate for >= ``p.min_reports`` reports in batches of ``batch``; reports/s over all."""
    rounds = max(1, math.ceil(p.min_reports / batch)) if batch > 1 else min(3, p.min_reports)
    total_s, new_tokens, valid = 0.0, 0, 0
    for _ in range(rounds):
        ids, mask = prompt_batch(p, batch, rng)
        kwargs: dict[str, Any] = {
            "attention_mask": mask,
            "do_sample": False,
            "pad_token_id": 0,
            "eos_token_id": 2,
        }
        if constraint is None:
            # a random model never ends on its own: force exactly the realistic answer length
            kwargs.update(max_new_tokens=p.answer_tokens, min_new_tokens=p.answer_tokens)
        else:
            # the constraint ends the answer (EOS) once the JSON is complete; the budget is the
            # schema's longest possible answer, so nothing is ever cut off
            kwargs.update(
                max_new_tokens=constraint.budget, logits_processor=[constraint.make(ids.shape[1])]
            )
        sync(p.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, **kwargs)
        sync(p.device)
        total_s += time.perf_counter() - start
        generated = out[:, ids.shape[1] :]
        new_tokens += int(((generated != 0) & (generated != 2)).sum())
        if constraint is not None:
            valid += sum(constraint.is_valid(row) for row in generated.tolist())
    reports = rounds * batch
    what = "generate (constrained)" if constraint else "generate (unconstrained)"
    extra: dict[str, Any] = {"mean_answer_tokens": round(new_tokens / reports, 1)}
    if constraint is not None:
        extra["schema_valid"] = f"{valid}/{reports}"
    return Row(what, batch, reports, total_s, reports / total_s, new_tokens / total_s, extra)


def measure_training(model: torch.nn.Module, p: Profile, batch: int) -> Row:
    """Time LoRA optimizer steps at ``p.train_seq`` tokens per example (loss on answer only)."""
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    vocab = p.model["vocab_size"]
    gen = torch.Generator().manual_seed(batch)
    ids = torch.randint(3, vocab, (batch, p.train_seq), generator=gen).to(p.device)
    labels = ids.clone()
    labels[:, : p.train_seq - p.answer_tokens] = -100  # prompt tokens masked, as in training

    def step() -> float:
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    step()  # warm-up (allocations, kernels)
    sync(p.device)
    if p.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(p.train_steps):
        loss = step()
    sync(p.device)
    seconds = time.perf_counter() - start
    model.eval()
    extra: dict[str, Any] = {
        "s_per_step": round(seconds / p.train_steps, 3),
        "loss": round(loss, 3),
    }
    if p.device == "cuda":
        extra["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
        torch.cuda.empty_cache()
    return Row(
        f"train step (seq {p.train_seq})",
        batch,
        batch * p.train_steps,
        seconds,
        None,
        batch * p.train_seq * p.train_steps / seconds,
        extra,
    )


# -- output -----------------------------------------------------------------------------------
def print_table(rows: list[Row], header_only: bool = False, rows_only: bool = False) -> None:
    header = (
        f"{'measurement':<28} {'batch':>5} {'reports':>7} {'seconds':>8} "
        f"{'reports/s':>10} {'tokens/s':>10}  notes"
    )
    if not rows_only:
        print(header)
        print("-" * len(header))
    if header_only:
        return
    for r in rows:
        rps = f"{r.reports_per_s:.2f}" if r.reports_per_s is not None else "-"
        tps = f"{r.tokens_per_s:.0f}" if r.tokens_per_s is not None else "-"
        notes = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        print(
            f"{r.what:<28} {r.batch:>5} {r.reports:>7} {r.seconds:>8.2f} "
            f"{rps:>10} {tps:>10}  {notes}"
        )


def environment(p: Profile) -> dict[str, str]:
    import peft
    import transformers

    env = {
        "profile": p.name,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "device": p.device,
    }
    if p.device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small CPU model (smoke test)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--skip-constrained", action="store_true", help="unconstrained rows only")
    args = parser.parse_args(argv)

    p = TINY if args.tiny else GPU
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rows as they come
    if p.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU machine, or use --tiny for a CPU smoke test")
        return 2
    if p.device == "cpu":
        torch.set_num_threads(2)
    t0 = time.perf_counter()
    env = environment(p)
    print(" ".join(f"{k}={v}" for k, v in env.items()))

    model = build_model(p)
    model.eval()
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    build_s = time.perf_counter() - t0
    print(
        f"model built in {build_s:.1f}s: {total / 1e9:.2f}B parameters, "
        f"LoRA trainable {trainable / 1e6:.1f}M"
    )

    notes: list[str] = []
    constraint: Constraint | None = None
    note = "constrained rows skipped (--skip-constrained)"
    if not args.skip_constrained:
        constraint, note = build_constraint(p)
    notes.append(note)

    rng = random.Random(0)
    rows: list[Row] = []
    # warm-up: kernels, allocator, cuBLAS handles (not timed)
    ids, mask = prompt_batch(p, 2, rng)
    with torch.inference_mode():
        model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0
        )

    print_table([], header_only=True)
    plans: list[tuple[str, int]] = [("gen", b) for b in p.gen_batches]
    if constraint is not None:
        plans += [("cgen", b) for b in p.gen_batches if b > 1]
    plans += [("train", b) for b in p.train_batches]
    for kind, batch in plans:
        done = len(rows)
        if time.perf_counter() - t0 > TIME_BUDGET_S:
            notes.append(f"time budget reached: skipped {kind} batch {batch}")
            continue
        try:
            if kind == "gen":
                rows.append(measure_generation(model, p, batch, None, rng))
            elif kind == "cgen":
                rows.append(measure_generation(model, p, batch, constraint, rng))
            else:
                model.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
                model.enable_input_require_grads()
                rows.append(measure_training(model, p, batch))
        except OOM:
            notes.append(f"out of memory: {kind} batch {batch}")
            if p.device == "cuda":
                torch.cuda.empty_cache()
        if len(rows) > done:
            print_table(rows[-1:], rows_only=True)  # as we go, in case the run is cut short

    print("\nsummary")
    print_table(rows)
    single = next((r for r in rows if r.what.startswith("generate (un") and r.batch == 1), None)
    best = max(
        (r for r in rows if r.what.startswith("generate (un")),
        key=lambda r: r.reports_per_s or 0,
        default=None,
    )
    if single and best and single.reports_per_s:
        notes.append(
            f"batch {best.batch} vs one at a time: "
            f"{best.reports_per_s / single.reports_per_s:.1f}x reports/s (unconstrained)"
        )
    notes.append(f"total wall time {time.perf_counter() - t0:.0f}s")
    for n in notes:
        print(f"note: {n}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"environment": env, "rows": [asdict(r) for r in rows], "notes": notes}, indent=2
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
