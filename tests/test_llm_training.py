"""LoRA training (``rrief train``): gold loading, loss masking, learning, reload, options."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from extractors.cli import cli
from extractors.llm.sparse import sparse_json
from extractors.llm.training import (
    TrainConfig,
    TrainingError,
    _collate,
    encode_example,
    load_training_examples,
)
from extractors.results import ReportInput
from extractors.schemas import get_schema
from tests.tiny_llm import TRAIN_CXR


def test_gold_lines_are_validated_and_bad_lines_named(tmp_path: Path) -> None:
    schema = get_schema("cxr")
    examples = load_training_examples(TRAIN_CXR, schema)[0]
    assert len(examples) == 20 and examples[0].report_id == "cxr-train-01"
    good = TRAIN_CXR.read_text(encoding="utf-8").splitlines()[0]
    cases = {
        "not valid JSON": "{not json",
        "'text' must be a non-empty string": json.dumps(
            {"report_id": "a", "text": " ", "labels": {}}
        ),
        "labels do not match schema cxr@1": json.dumps(
            {
                "report_id": "a",
                "text": "x",
                "labels": {**json.loads(good)["labels"], "Edema": "maybe"},
            }
        ),
        "appears twice": good,
    }
    for expected, bad_line in cases.items():
        path = tmp_path / "gold.jsonl"
        path.write_text(good + "\n\n" + bad_line + "\n", encoding="utf-8")
        with pytest.raises(TrainingError, match=expected) as info:
            load_training_examples(path, schema)
        assert f"{path} line 3" in str(info.value)


def test_loss_is_on_the_answer_only(tiny_base_model: Path) -> None:
    from transformers import AutoTokenizer

    schema = get_schema("cxr")
    tok = AutoTokenizer.from_pretrained(tiny_base_model, local_files_only=True)
    example = load_training_examples(TRAIN_CXR, schema)[0][0]
    item = encode_example(tok, schema, example, max_length=4096)
    answer = [t for t, lab in zip(item["input_ids"], item["labels"], strict=True) if lab != -100]
    assert tok.decode(answer, skip_special_tokens=True) == sparse_json(schema, example.labels)
    assert answer[-1] == tok.eos_token_id
    n_prompt = item["labels"].index(next(lab for lab in item["labels"] if lab != -100))
    assert all(lab == -100 for lab in item["labels"][:n_prompt])
    prompt = tok.decode(item["input_ids"][:n_prompt], skip_special_tokens=True)
    assert prompt.rstrip().endswith(example.text.strip()[-20:]) or example.text[-20:] in prompt
    # the batch the Trainer sees: padding is masked like the prompt, nothing else changes
    other = encode_example(tok, schema, load_training_examples(TRAIN_CXR, schema)[0][1], 4096)
    batch = _collate([item, other], pad_id=0)
    width = batch["input_ids"].shape[1]
    for row, it in enumerate((item, other)):
        n = len(it["input_ids"])
        assert batch["labels"][row, :n].tolist() == it["labels"]
        assert batch["labels"][row, n:].tolist() == [-100] * (width - n)
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
    assert len(tok) == tok.backend_tokenizer.get_vocab_size()  # no tokens were added
    with pytest.raises(TrainingError, match="over --max-length 50"):
        encode_example(tok, schema, example, max_length=50)


def test_qlora_without_cuda_is_a_clear_error(tiny_base_model: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from extractors.llm.training import train_adapter

    with pytest.raises(TrainingError, match="--qlora needs a CUDA GPU"):
        train_adapter(
            get_schema("cxr"),
            tiny_base_model,
            TRAIN_CXR,
            tmp_path / "q",
            config=TrainConfig(qlora=True, device="cpu"),
        )


def test_cli_train_errors_are_messages_not_tracebacks(
    tiny_base_model: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"report_id": "a", "text": "x", "labels": {"Edema": "yes"}}\n')
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--schema",
            "cxr",
            "--base-model",
            str(tiny_base_model),
            "--train",
            str(bad),
            "--output",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 1 and f"{bad} line 1" in result.output
    result = CliRunner().invoke(
        cli,
        ["train", "--schema", "cxr", "--base-model", str(tiny_base_model), "--train", str(TRAIN_CXR),
         "--output", str(tmp_path / "o"), "--with-evidence"],
    )  # fmt: skip
    assert result.exit_code == 1 and "--with-evidence is not supported" in result.output


@pytest.mark.slow
def test_cli_train_end_to_end_with_eval_and_early_stopping(
    tiny_base_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rrief")
    small = tmp_path / "train.jsonl"
    small.write_text("".join(TRAIN_CXR.read_text(encoding="utf-8").splitlines(keepends=True)[:4]))
    out = tmp_path / "adapters" / "cxr-cli"
    result = CliRunner().invoke(
        cli,
        ["train", "--schema", "cxr", "--base-model", str(tiny_base_model), "--train", str(small),
         "--eval", str(small), "--output", str(out), "--epochs", "3", "--batch-size", "2",
         "--grad-accum", "2", "--scheduler", "cosine", "--early-stopping-patience", "1", "--r", "4",
         "--lr", "1e-3", "--seed", "3", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert {"adapter_config.json", "adapter_model.safetensors", "rrief_adapter.json"} <= {
        p.name for p in out.iterdir()
    }
    meta = json.loads((out / "rrief_adapter.json").read_text())
    assert (
        meta["metrics"]["eval_loss"] is not None
        and 0.0 <= meta["metrics"]["eval_exact_match"] <= 1.0
    )
    assert (
        meta["hyperparameters"]["grad_accum"] == 2
        and meta["hyperparameters"]["scheduler"] == "cosine"
    )
    assert meta["training_data"]["eval_size"] == 4
    step_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "rrief.train" and " loss " in r.getMessage()
    ]
    assert step_lines and all(line.startswith("epoch ") for line in step_lines)
    texts = [json.loads(line)["text"] for line in small.read_text().splitlines()]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(t[:30] in logged for t in texts)  # report text is never logged
    # existing, non-empty output directories are never overwritten
    again = CliRunner().invoke(
        cli,
        [
            "train",
            "--schema",
            "cxr",
            "--base-model",
            str(tiny_base_model),
            "--train",
            str(small),
            "--output",
            str(out),
        ],
    )
    assert again.exit_code == 1 and "not empty" in again.output


@pytest.mark.slow
def test_training_drives_the_loss_down(tiny_training) -> None:
    losses = tiny_training.step_losses
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])
    meta = tiny_training.metadata
    assert meta.metrics["train_loss_first"] == losses[0]
    assert meta.train_lm_head_for_tests is True


@pytest.mark.slow
def test_reloaded_adapter_reproduces_its_training_targets(tiny_adapter: Path) -> None:
    """A fresh engine from disk + constrained greedy decoding returns every gold label exactly."""
    import torch

    from extractors.llm.hf_backend import HFExtractor

    torch.manual_seed(0)
    schema = get_schema("cxr")
    rows = [
        json.loads(line)
        for line in TRAIN_CXR.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    extractor = HFExtractor(schema, tiny_adapter, device="cpu", batch_size=10)
    results = extractor.extract_batch(
        [ReportInput(report_id=r["report_id"], text=r["text"]) for r in rows]
    )
    mismatches = [
        r.report_id
        for r, row in zip(results, rows, strict=True)
        if r.status != "ok" or r.labels != row["labels"]
    ]
    assert mismatches == []
