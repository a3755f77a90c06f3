"""The in-process engine and ``--backend hf``: constrained output, refusals, error lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.extract.registry import BACKENDS, BackendError, make_extractor
from extractors.llm.adapters import AdapterError
from extractors.llm.json_bounds import max_new_tokens_for_schema
from extractors.llm.prompts import build_messages
from extractors.results import ReportInput
from extractors.schemas import get_schema
from tests.tiny_llm import TRAIN_CXR, build_tiny_llama

REPORTS = [
    "FINDINGS: The lungs are clear. No effusion.\nIMPRESSION: Normal chest.",
    "FINDINGS: Moderate cardiomegaly. Small left pleural effusion.",
    "CORONARY CTA: 70% stenosis of the proximal LAD. CAD-RADS 4A.",
    "Mammogram: right breast mass with pleomorphic calcifications, BI-RADS 5. Density c.",
]


@pytest.fixture(scope="module")
def engine(tiny_base_model: Path):
    import torch

    from extractors.llm.engine import HFEngine

    torch.set_num_threads(2)
    torch.manual_seed(0)
    return HFEngine(tiny_base_model, device="cpu")


@pytest.mark.parametrize("name", ["cxr", "mammo", "ccta"])
def test_untrained_model_constrained_output_is_always_schema_valid(engine, name: str) -> None:
    schema = get_schema(name)
    prompts = [engine.render_chat(build_messages(schema, text)) for text in REPORTS]
    budget = max_new_tokens_for_schema(schema.json_schema())
    generations = engine.generate(prompts, json_schema=schema.json_schema(), max_new_tokens=budget)
    assert len(generations) == len(REPORTS)
    for gen in generations:
        assert gen.finish_reason == "stop"
        assert gen.completion_tokens <= budget
        raw = json.loads(gen.text)
        labels = schema.validate_labels(raw)
        assert list(raw) == list(labels)  # schema key order
        # compact (no whitespace outside strings); repeated list items are possible
        # (uniqueItems is not enforced while decoding) and removed by validation
        assert gen.text == json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def test_untrained_plain_prompt_model_is_constrained_too(tiny_base_model_plain: Path) -> None:
    from extractors.llm.engine import HFEngine

    engine = HFEngine(tiny_base_model_plain, device="cpu")
    schema = get_schema("ccta")
    prompts = [engine.render_chat(build_messages(schema, t)) for t in REPORTS[:2]]
    for gen in engine.generate(prompts, json_schema=schema.json_schema(), max_new_tokens=400):
        schema.validate_labels(json.loads(gen.text))


def test_unconstrained_generation_reports_length_and_counts(engine) -> None:
    prompts = ["FINDINGS: clear.", "FINDINGS: a much longer report text with several more words."]
    gens = engine.generate(prompts, max_new_tokens=6)
    assert [g.prompt_tokens for g in gens] == [
        len(engine.tokenizer(p)["input_ids"]) for p in prompts
    ]
    for g in gens:
        assert g.completion_tokens <= 6
        assert g.finish_reason in {"stop", "length"}


def test_batched_equals_one_at_a_time(engine) -> None:
    schema = get_schema("cxr")
    prompts = [engine.render_chat(build_messages(schema, t)) for t in REPORTS]
    js, budget = schema.json_schema(), max_new_tokens_for_schema(schema.json_schema())
    batched = [g.text for g in engine.generate(prompts, json_schema=js, max_new_tokens=budget)]
    single = [engine.generate([p], json_schema=js, max_new_tokens=budget)[0].text for p in prompts]
    assert batched == single


def test_unknown_adapter_name_is_refused(engine) -> None:
    with pytest.raises(KeyError, match="unknown adapter 'nope'"):
        engine.generate(["x"], adapter="nope")


def test_hf_backend_is_registered() -> None:
    assert BACKENDS["hf"] == "extractors.llm.hf_backend:make_hf_extractor"


def test_missing_adapter_is_a_backend_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        make_extractor("hf", get_schema("cxr"), adapter=str(tmp_path / "none"))
    with pytest.raises(BackendError, match="needs --adapter"):
        make_extractor("hf", get_schema("cxr"))


# -- with the trained adapter -----------------------------------------------------------------
def _train_reports() -> list[ReportInput]:
    rows = [
        json.loads(line)
        for line in TRAIN_CXR.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [ReportInput(report_id=r["report_id"], text=r["text"]) for r in rows]


@pytest.mark.slow
def test_schema_mismatch_is_refused(tiny_adapter: Path) -> None:
    with pytest.raises(BackendError) as info:
        make_extractor("hf", get_schema("mammo"), adapter=str(tiny_adapter))
    assert "trained for schema cxr@1" in str(info.value) and "mammo@1" in str(info.value)


@pytest.mark.slow
def test_base_model_mismatch_is_refused(tiny_adapter: Path, tmp_path: Path) -> None:
    from extractors.llm.engine import HFEngine

    other = build_tiny_llama(tmp_path / "other-base", hidden_size=32, layers=1)
    with pytest.raises(BackendError) as info:
        make_extractor("hf", get_schema("cxr"), adapter=str(tiny_adapter), base_model=str(other))
    message = str(info.value)
    assert "was trained on base model" in message and str(other.resolve()) in message
    engine = HFEngine(other, device="cpu")
    with pytest.raises(AdapterError, match="fingerprint"):
        engine.load_adapter("cxr", tiny_adapter)


@pytest.mark.slow
def test_extractor_version_and_result_lines(tiny_adapter: Path) -> None:
    extractor = make_extractor("hf", get_schema("cxr"), adapter=str(tiny_adapter), batch_size="8")
    assert (
        extractor.version.startswith("cxr-tiny@")
        and len(extractor.version) == len("cxr-tiny@") + 12
    )
    reports = [*_train_reports()[:3], ReportInput(report_id="empty", text="  ")]
    results = extractor.extract_batch(reports)
    assert [r.report_id for r in results] == [r.report_id for r in reports]
    assert [r.status for r in results] == ["ok", "ok", "ok", "error"]
    assert results[0].extractor.backend == "hf"


@pytest.mark.slow
def test_invalid_output_becomes_an_error_line_with_raw_output(tiny_adapter: Path) -> None:
    # A budget too small for any answer (sparse answers are short: 1 token, 2 on the retry):
    # the first pass and the (doubled-budget) retry are cut off.
    extractor = make_extractor(
        "hf", get_schema("cxr"), adapter=str(tiny_adapter), max_new_tokens="1"
    )
    [result] = extractor.extract_batch(_train_reports()[:1])
    assert result.status == "error" and result.labels is None
    assert "after one retry" in result.error and "cut off" in result.error
    assert result.raw_output and result.raw_output.startswith("{")
    assert "raw_output" in result.to_json_dict()


@pytest.mark.slow
def test_unconstrained_first_pass_then_constrained_retry(tiny_adapter: Path) -> None:
    extractor = make_extractor(
        "hf",
        get_schema("cxr"),
        adapter=str(tiny_adapter),
        constrained="false",
        max_new_tokens="200",
    )
    results = extractor.extract_batch(_train_reports()[:4])
    assert all(r.status == "ok" for r in results)


@pytest.mark.slow
def test_rrief_extract_with_the_hf_backend(tiny_adapter: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from extractors.cli import cli

    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli,
        ["extract", "--schema", "cxr", "--backend", "hf", "--adapter", str(tiny_adapter),
         "--input", str(TRAIN_CXR), "--output", str(out), "--no-progress", "--option", "batch_size=16"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    gold = [json.loads(line) for line in TRAIN_CXR.read_text().splitlines()]
    assert [line["report_id"] for line in lines] == [g["report_id"] for g in gold]
    assert all(line["status"] == "ok" and line["extractor"]["backend"] == "hf" for line in lines)
    assert [line["labels"] for line in lines] == [g["labels"] for g in gold]
