"""Gold adapters on tiny inline files and, when present, on the shared development data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractors.gold import CXR_FINDINGS, GoldError, guess_gold_format, load_gold
from extractors.gold.cddcesm import load_cddcesm_gold
from extractors.gold.chestxray14 import load_chestxray14
from extractors.gold.jsonl import load_jsonl_gold
from extractors.gold.normalize import normalize_birads
from extractors.gold.openi import load_openi_mesh, mesh_term_findings
from extractors.schemas import get_schema

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared development data not found at {path}")
    return path


# --- Open-i MeSH ----------------------------------------------------------------------------------
OPENI_CSV = """uid,MeSH,Problems,image,indication,comparison,findings,impression
1,normal,normal,PA,,,"Lungs clear.",Normal.
2,Opacity/lung/base/left;Calcified Granuloma/lung,x,PA,,,"t",i
3,"Catheters, Indwelling/right;Cardiac Shadow/enlarged/mild",x,PA,,,t,i
4,No Indexing,No Indexing,PA,,,t,i
5,Opacity/heart;Nodule/lung/upper lobe/right;Costophrenic Angle/right/blunted,x,PA,,,t,i
6,"Hydropneumothorax/right;Thickening/pleura/apex;Fractures, Bone/ribs",x,PA,,,t,i
"""


def test_openi_mesh_mapping(tmp_path: Path) -> None:
    path = tmp_path / "reports.csv"
    path.write_text(OPENI_CSV)
    gold = load_openi_mesh(path)
    assert gold.kind == "positive_only"
    assert gold.findings == list(CXR_FINDINGS)
    assert list(gold.labels) == ["1", "2", "3", "5", "6"]
    assert gold.skipped == {"4": "MeSH is 'No Indexing': no human labels"}

    def present(rid: str) -> set[str]:
        return {k for k, v in gold.labels[rid].items() if v}

    assert present("1") == {"No Finding"}
    assert present("2") == {"Lung Opacity"}  # a calcified granuloma maps to nothing
    assert present("3") == {"Support Devices", "Cardiomegaly"}
    # a heart opacity is not a lung opacity; nodule -> Lung Lesion; blunted angle -> effusion
    assert present("5") == {"Lung Lesion", "Pleural Effusion"}
    assert present("6") == {"Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture"}


def test_mesh_term_rules() -> None:
    assert mesh_term_findings("Density/lung/lingula") == {"Lung Opacity"}
    assert mesh_term_findings("Density/ribs/left") == set()
    assert mesh_term_findings("Mediastinum/prominent") == {"Enlarged Cardiomediastinum"}
    assert mesh_term_findings("Cardiac Shadow/borderline") == set()
    assert mesh_term_findings("Pulmonary Congestion/mild") == {"Edema"}
    assert mesh_term_findings("Tube, Inserted/trachea, carina") == {"Support Devices"}
    assert mesh_term_findings("Emphysema") == set()


def test_openi_mesh_missing_column_and_duplicate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("uid,findings\n1,x\n")
    with pytest.raises(GoldError, match="lacks column"):
        load_openi_mesh(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("uid,MeSH\n1,normal\n1,Cardiomegaly\n")
    with pytest.raises(GoldError, match="appears twice"):
        load_openi_mesh(dup)


# --- ChestX-ray14 ---------------------------------------------------------------------------------
CX14_HEADER = (
    "uid,Atelectasis,Cardiomegaly,Effusion,Infiltration,Mass,Nodule,Pneumonia,Pneumothorax,"
    "Consolidation,Edema,Emphysema,Fibrosis,Pleural_Thickening,Hernia,normal"
)


def test_chestxray14_mapping(tmp_path: Path) -> None:
    path = tmp_path / "cx14.csv"
    path.write_text(
        CX14_HEADER + "\n"
        "10,0,0,0,0,0,1,0,0,0,0,1,0,0,1,0\n"  # nodule -> Lung Lesion; emphysema/hernia dropped
        "11,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\n"  # normal -> No Finding
        "12,1,0,1,1,0,0,0,0,0,0,0,1,0,0,0\n"  # fibrosis -> Pleural Other, infiltration -> opacity
    )
    gold = load_chestxray14(path)
    assert gold.kind == "positive_only"
    assert len(gold.findings) == 11
    assert "Fracture" not in gold.findings and "Support Devices" not in gold.findings
    assert {k for k, v in gold.labels["10"].items() if v} == {"Lung Lesion"}
    assert {k for k, v in gold.labels["11"].items() if v} == {"No Finding"}
    assert {k for k, v in gold.labels["12"].items() if v} == {
        "Atelectasis",
        "Pleural Effusion",
        "Lung Opacity",
        "Pleural Other",
    }
    assert guess_gold_format(path) == "chestxray14"


def test_chestxray14_rejects_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "cx14.csv"
    path.write_text(CX14_HEADER + "\n10,0,0,0,0,0,yes,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(GoldError, match="line 2: column Nodule is 'yes'"):
        load_chestxray14(path)


# --- JSONL (full labels) --------------------------------------------------------------------------
def _cxr_line(rid: str, **labels: str) -> str:
    base = {name: "not_mentioned" for name in CXR_FINDINGS}
    base.update({k.replace("_", " "): v for k, v in labels.items()})
    return json.dumps({"report_id": rid, "text": "...", "labels": base})


def test_jsonl_gold_validates_and_accepts_chexpert_codes(tmp_path: Path) -> None:
    schema = get_schema("cxr")
    path = tmp_path / "gold.jsonl"
    codes = {name: "" for name in CXR_FINDINGS}
    codes.update({"Edema": "1.0", "Pneumothorax": "0.0", "Atelectasis": "-1.0"})
    path.write_text(
        _cxr_line("a", Edema="positive")
        + "\n\n"
        + json.dumps({"report_id": "b", "text": "...", "labels": codes})
        + "\n"
    )
    gold = load_jsonl_gold(path, schema)
    assert gold.kind == "labels" and list(gold.labels) == ["a", "b"]
    assert gold.labels["a"]["Edema"] == "positive"
    b = gold.labels["b"]
    assert (b["Edema"], b["Pneumothorax"], b["Atelectasis"], b["Fracture"]) == (
        "positive",
        "negative",
        "uncertain",
        "not_mentioned",
    )
    assert guess_gold_format(path) == "jsonl"


def test_jsonl_gold_errors_name_the_line(tmp_path: Path) -> None:
    schema = get_schema("cxr")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_cxr_line("a") + "\n" + _cxr_line("b", Edema="likely") + "\n")
    with pytest.raises(GoldError, match=r"line 2: labels do not match schema cxr@1: Edema") as err:
        load_jsonl_gold(bad, schema)
    assert "'b'" not in str(err.value)  # line numbers, never report ids
    dup = tmp_path / "dup.jsonl"
    dup.write_text(_cxr_line("a") + "\n" + _cxr_line("a") + "\n")
    with pytest.raises(GoldError, match="appears twice"):
        load_jsonl_gold(dup, schema)
    noid = tmp_path / "noid.jsonl"
    noid.write_text(json.dumps({"text": "x", "labels": {}}) + "\n")
    with pytest.raises(GoldError, match="no 'report_id'"):
        load_jsonl_gold(noid, schema)
    with pytest.raises(GoldError, match="does not exist"):
        load_jsonl_gold(tmp_path / "absent.jsonl", schema)


# --- CDD-CESM -------------------------------------------------------------------------------------
CDD_CSV = """patient_id,side,age,dm_findings_text,dm_opinion_text,cesm_text,label_density_acr,label_birads_dm,label_birads_cesm,label_findings_dm,label_tags_dm,label_pathology
1,L,46,upper architectural distortion is seen.,upper architectural distortion (birads 4).,x,C,4,4,Architectural distortion ,"suspicious, distortion",Malignant
1,R,46,no mass.,normal breast (birads 1).,x,_,1,1,Normal,normal,Normal
2,R,50,benign calcification and a cyst.,benign (birads 2) and probably benign (birads 3).,x,B,3$2,3,Mass,benign,Benign
"""


def test_normalize_birads() -> None:
    assert normalize_birads("3$2") == "3"
    assert normalize_birads("3$0") == "0"  # 0 ranks between 3 and 4
    assert normalize_birads(["2", "4"]) == "4"
    assert normalize_birads(5) == "5"
    assert normalize_birads("_") is None
    with pytest.raises(GoldError):
        normalize_birads("7")


def test_cddcesm_gold(tmp_path: Path) -> None:
    path = tmp_path / "breast_reports.csv"
    path.write_text(CDD_CSV)
    assert guess_gold_format(path) == "cddcesm"
    gold = load_gold(path, "cddcesm", get_schema("mammo"))
    assert gold.kind == "cddcesm"
    assert gold.labels == {
        "1L": {"side": "left", "birads": "4", "density": "c"},
        "1R": {"side": "right", "birads": "1", "density": None},
        "2R": {"side": "right", "birads": "3", "density": "b"},
    }


def test_cddcesm_gold_with_a_given_loader_and_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("x\n")
    records = [
        {"report_id": "9L", "text": "t", "gold": {"side": "L", "birads": "2", "density": "D"}}
    ]
    gold = load_cddcesm_gold(path, loader=lambda p: records)
    assert gold.labels["9L"] == {"side": "left", "birads": "2", "density": "d"}
    bad = [{"report_id": "9L", "text": "t", "gold": {"side": "up", "birads": "2"}}]
    with pytest.raises(GoldError, match="record 1"):
        load_cddcesm_gold(path, loader=lambda p: bad)


# --- shared development data ----------------------------------------------------------------------
def test_openi_mesh_on_shared_data() -> None:
    gold = load_openi_mesh(_need(DATA / "cxr_openi" / "reports.csv"))
    assert len(gold.labels) + len(gold.skipped) == 1000
    assert all(reason.startswith("MeSH is") for reason in gold.skipped.values())
    normal = sum(1 for labels in gold.labels.values() if labels["No Finding"])
    assert normal > 0.2 * len(gold.labels)
    # every one of the 14 findings is positive somewhere in a 1,000-report sample
    assert all(any(labels[f] for labels in gold.labels.values()) for f in CXR_FINDINGS)


def test_chestxray14_agrees_with_mesh_on_shared_data() -> None:
    cx14 = load_chestxray14(_need(DATA / "cxr_openi" / "labels_gold_chestxray14.csv"))
    mesh = load_openi_mesh(_need(DATA / "cxr_openi" / "reports.csv"))
    assert len(cx14.labels) == 1000
    shared = [rid for rid in mesh.labels if rid in cx14.labels]
    assert len(shared) == len(mesh.labels)
    # the two are the same human indexing through two mappings: No Finding must agree
    agree = sum(mesh.labels[r]["No Finding"] == cx14.labels[r]["No Finding"] for r in shared)
    assert agree / len(shared) > 0.95


def test_silver_chexpert_file_reads_as_jsonl_gold() -> None:
    path = _need(DATA / "cxr_openi" / "labels_silver_chexpert14.jsonl")
    gold = load_jsonl_gold(path, get_schema("cxr"), id_key="uid")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert len(gold.labels) == len(lines) > 700
    states = {v for labels in gold.labels.values() for v in labels.values()}
    assert states == {"positive", "negative", "uncertain", "not_mentioned"}


def test_cddcesm_on_shared_data() -> None:
    gold = load_gold(
        _need(DATA / "mammo_cddcesm" / "breast_reports.csv"), "cddcesm", get_schema("mammo")
    )
    assert len(gold.labels) == 225
    assert sum(1 for g in gold.labels.values() if g["density"] is None) == 16
    assert all(g["birads"] is not None for g in gold.labels.values())
