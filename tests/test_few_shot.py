"""Few-shot example selection: deterministic, order-free, covering, short; and the hf zero-shot mode."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from extractors.gold import GoldExample
from extractors.llm.few_shot import select_shots
from extractors.schemas import get_schema

CXR = get_schema("cxr")


def _example(rid: str, text: str, **values: str) -> GoldExample:
    labels = CXR.empty_labels() | {k.replace("_", " "): v for k, v in values.items()}
    return GoldExample(report_id=rid, text=text, labels=labels)


POOL = [
    _example("a", "Heart enlarged.", Cardiomegaly="positive"),
    _example("b", "Heart enlarged again.", Cardiomegaly="positive"),
    _example("c", "Small effusion.", Pleural_Effusion="positive"),
    _example("d", "Normal chest."),
    _example("e", "Edema+effusion.", Edema="positive", Pleural_Effusion="positive"),
    _example("f", "A very long report " * 40, Pneumothorax="positive"),
    _example("g", "No pneumothorax.", Pneumothorax="negative"),
]


def test_selection_is_deterministic_and_independent_of_file_order() -> None:
    first = [e.report_id for e in select_shots(CXR, POOL, 3)]
    shuffled = POOL[:]
    random.Random(1).shuffle(shuffled)
    assert [e.report_id for e in select_shots(CXR, shuffled, 3)] == first
    assert len(set(first)) == 3


def test_selection_covers_values_prefers_short_texts_and_includes_a_normal_report() -> None:
    chosen = select_shots(CXR, POOL, 4)
    ids = [e.report_id for e in chosen]
    assert "f" not in ids  # the long half is not used
    assert ids[0] == "e"  # two values at once
    assert "d" in ids  # {} is an answer too
    assert not {"a", "b"} <= set(ids)  # no second example for a value already shown


def test_edge_cases() -> None:
    assert select_shots(CXR, POOL, 0) == []
    assert len(select_shots(CXR, POOL, 50)) <= len(POOL)
    with pytest.raises(ValueError):
        select_shots(CXR, POOL, -1)


def test_zero_and_few_shot_modes_are_recorded(tiny_base_model: Path, tmp_path: Path) -> None:
    import json

    from extractors.extract.registry import BackendError, make_extractor
    from extractors.results import ReportInput

    zero = make_extractor("hf", CXR, base_model=str(tiny_base_model), device="cpu")
    (result,) = zero.extract_batch([ReportInput(report_id="r", text="FINDINGS: clear.")])
    assert result.status == "ok" and result.extractor.mode == "zero-shot"
    assert CXR.describe() in zero.prompt("x")  # the full instruction
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(e.model_dump()) + "\n" for e in POOL))
    few = make_extractor(
        "hf", CXR, base_model=str(tiny_base_model), device="cpu", few_shot=str(gold), shots="2"
    )
    (result,) = few.extract_batch([ReportInput(report_id="r", text="FINDINGS: clear.")])
    assert result.extractor.mode == "few-shot" and result.extractor.version.endswith("+2shot")
    assert result.to_json_dict()["extractor"]["mode"] == "few-shot"
    with pytest.raises(BackendError, match="shots needs few_shot"):
        make_extractor("hf", CXR, base_model=str(tiny_base_model), shots="2")
