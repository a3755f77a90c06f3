"""``check_adapter`` / ``rrief adapter check``: refuse what vLLM would reject, with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from extractors.cli import cli
from extractors.llm.adapters import (
    ADAPTER_CONFIG_FILE,
    METADATA_FILE,
    check_adapter,
    load_adapter_metadata,
)
from tests.tiny_llm import TRAIN_CXR


@pytest.fixture(scope="module")
def vllm_adapter(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default (vLLM-compatible) adapter: one quick epoch on 4 reports via the CLI."""
    import torch

    torch.set_num_threads(2)
    small = tmp_path_factory.mktemp("gold") / "train4.jsonl"
    small.write_text("".join(TRAIN_CXR.read_text(encoding="utf-8").splitlines(keepends=True)[:4]))
    out = tmp_path_factory.mktemp("adapters") / "cxr-default"
    result = CliRunner().invoke(
        cli,
        ["train", "--schema", "cxr", "--base-model", str(tiny_base_model), "--train", str(small),
         "--output", str(out), "--epochs", "1", "--batch-size", "2", "--r", "8", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def _copy_with_config(src: Path, dst: Path, **changes: object) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / ADAPTER_CONFIG_FILE).read_text())
    config.update(changes)
    (dst / ADAPTER_CONFIG_FILE).write_text(json.dumps(config))
    return dst


def test_default_adapter_passes(vllm_adapter: Path) -> None:
    assert check_adapter(vllm_adapter) == []
    config = json.loads((vllm_adapter / ADAPTER_CONFIG_FILE).read_text())
    assert config["bias"] == "none" and not config.get("modules_to_save")
    result = CliRunner().invoke(cli, ["adapter", "check", str(vllm_adapter)])
    assert result.exit_code == 0 and "ok" in result.output


def test_metadata_records_schema_base_data_and_hyperparameters(
    vllm_adapter: Path, tiny_base_model: Path
) -> None:
    meta = load_adapter_metadata(vllm_adapter)
    assert meta.schema_id == "cxr@1"
    assert Path(meta.base_model.path) == tiny_base_model.resolve()
    assert len(meta.base_model.sha256) == 64 and meta.base_model.weight_files
    assert meta.training_data.size == 4 and len(meta.training_data.sha256) == 64
    assert meta.hyperparameters["r"] == 8 and meta.hyperparameters["epochs"] == 1
    assert meta.metrics["train_loss_first"] is not None
    assert meta.prompt_template_version and meta.created_at and meta.rrief_version


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
        ({"bias": "all"}, "bias='all'"),
        ({"r": 128}, "exceeds the documented maximum 64"),
        ({"r": 1024}, "exceeds vLLM's largest"),
        ({"use_dora": True}, "DoRA"),
        ({"rank_pattern": {"q_proj": 4}}, "rank_pattern"),
    ],
)
def test_configurations_vllm_rejects_are_flagged(
    vllm_adapter: Path, tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    bad = _copy_with_config(vllm_adapter, tmp_path / "bad", **changes)
    problems = check_adapter(bad)
    assert any(expected in p for p in problems), problems
    result = CliRunner().invoke(cli, ["adapter", "check", str(bad)])
    assert result.exit_code == 1
    assert expected in result.output


def test_rank_limit_follows_the_server_setting(vllm_adapter: Path, tmp_path: Path) -> None:
    wide = _copy_with_config(vllm_adapter, tmp_path / "wide", r=128)
    assert check_adapter(wide, max_rank=128) == []
    assert (
        CliRunner().invoke(cli, ["adapter", "check", "--max-rank", "128", str(wide)]).exit_code == 0
    )


def test_missing_files_are_flagged(vllm_adapter: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(vllm_adapter, bare)
    (bare / "adapter_model.safetensors").unlink()
    (bare / METADATA_FILE).unlink()
    problems = check_adapter(bare)
    assert any("adapter_model.safetensors is missing" in p for p in problems)
    assert any("rrief_adapter.json" in p for p in problems)
    assert check_adapter(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'} is not a directory"]


@pytest.mark.slow
def test_lm_head_test_adapter_is_not_vllm_compatible(tiny_adapter: Path) -> None:
    problems = check_adapter(tiny_adapter)
    assert any("modules_to_save" in p for p in problems)
    assert any("non-LoRA tensors" in p for p in problems)
    assert any("test-only lm_head" in p for p in problems)
