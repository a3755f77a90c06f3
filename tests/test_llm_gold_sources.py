"""`rrief train --gold-format openi-mesh|cddcesm`: partial public golds as training examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from extractors.cli import cli
from extractors.llm.training import TrainingError, load_training_examples
from extractors.schemas import get_schema

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OPENI_HEADER = "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"


def test_openi_mesh_terms_become_positives_and_the_rest_defaults(tmp_path: Path) -> None:
    csv = tmp_path / "reports.csv"
    csv.write_text(
        OPENI_HEADER
        + "1,Cardiomegaly/mild;Pleural Effusion/right,x,x,x,x,Heart enlarged.,Small effusion.\n"
        + "2,No Indexing,x,x,x,x,Something.,Else.\n"
        + "3,normal,x,x,x,x,,\n"
        + "4,normal,x,x,x,x,Lungs clear.,Normal chest.\n"
    )
    examples, warning = load_training_examples(csv, get_schema("cxr"), "openi-mesh")
    assert [e.report_id for e in examples] == ["1", "4"]  # unindexed and empty reports skipped
    first = examples[0].labels
    assert first["Cardiomegaly"] == first["Pleural Effusion"] == "positive"
    assert first["Pneumothorax"] == "not_mentioned"
    assert examples[0].text == "FINDINGS: Heart enlarged.\nIMPRESSION: Small effusion."
    assert examples[1].labels["No Finding"] == "positive"
    assert warning and "learns to affirm findings but not to deny them" in warning


def test_partial_gold_must_match_its_schema(tmp_path: Path) -> None:
    csv = tmp_path / "reports.csv"
    csv.write_text(OPENI_HEADER + "1,normal,x,x,x,x,Clear.,Normal.\n")
    with pytest.raises(TrainingError, match="openi-mesh gold trains schema cxr, not mammo@1"):
        load_training_examples(csv, get_schema("mammo"), "openi-mesh")
    with pytest.raises(TrainingError, match="cannot read"):
        load_training_examples(csv, get_schema("mammo"), "cddcesm")


def test_cddcesm_rows_train_their_own_breast_only() -> None:
    source = DATA / "mammo_cddcesm" / "breast_reports.csv"
    if not source.exists():
        pytest.skip(f"shared dev data not found at {source}")
    examples, warning = load_training_examples(source, get_schema("mammo"), "cddcesm")
    assert len(examples) == 225 and warning
    first = examples[0]  # patient 1, left: architectural distortion, BI-RADS 4
    assert first.report_id == "1L" and first.text.startswith("LEFT BREAST:")
    assert first.labels["birads"] == {"left": "4", "right": None}
    assert first.labels["architectural_distortion"] == {"left": "present", "right": "not_mentioned"}
    assert all(e.labels["density"] is None for e in examples)  # the text has no density


def test_train_cli_refuses_a_gold_for_another_schema(tmp_path: Path, tiny_base_model: Path) -> None:
    csv = tmp_path / "reports.csv"
    csv.write_text(OPENI_HEADER + "1,normal,x,x,x,x,Clear.,Normal.\n")
    result = CliRunner().invoke(
        cli,
        [
            "train", "--schema", "ccta", "--base-model", str(tiny_base_model),
            "--train", str(csv), "--gold-format", "openi-mesh", "--output", str(tmp_path / "a"),
        ],
    )  # fmt: skip
    assert result.exit_code == 1 and "openi-mesh gold trains schema cxr" in result.output
