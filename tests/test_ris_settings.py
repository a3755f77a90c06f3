"""The RIS settings become the connectors' explicit arguments at the edge (pipeline/config.py)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from extractors.pipeline.config import connector_from_settings
from extractors.ris.fhir import FhirBundleConnector
from extractors.ris.hl7v2 import Hl7FolderConnector
from extractors.ris.sql import SqlConnector
from extractors.settings import Settings

EXAM_MAP = Path(__file__).resolve().parent / "fixtures" / "exam_map.yaml"


def test_hl7_settings_reach_the_connector(tmp_path: Path) -> None:
    connector = connector_from_settings(
        Settings(
            ris_kind="hl7v2",
            ris_folder=str(tmp_path),
            ris_timezone="Europe/Zurich",
            ris_exam_map=str(EXAM_MAP),
            ris_final_statuses="F, signed",
            ris_preliminary_statuses="P,WET READ",
            ris_include_preliminary=True,
            ris_hl7_encoding="cp1252",
            ris_hl7_exclude_obx="TCM,ADT",
        )
    )
    assert isinstance(connector, Hl7FolderConnector)
    assert connector.naive_timezone == ZoneInfo("Europe/Zurich")
    assert connector.encoding == "cp1252"
    assert connector.exclude_obx_codes == {"TCM", "ADT"}
    assert connector.statuses.final == {"F", "SIGNED"} and connector.statuses.include_preliminary
    assert connector.exams.path == str(EXAM_MAP) and len(connector.exams.rules) == 4


def test_fhir_and_sql_get_the_mapping_zone_and_preliminary_choice(tmp_path: Path) -> None:
    fhir = connector_from_settings(
        Settings(ris_kind="fhir", ris_folder=str(tmp_path), ris_include_preliminary=True)
    )
    assert isinstance(fhir, FhirBundleConnector) and fhir.include_preliminary
    sql = connector_from_settings(
        Settings(
            ris_kind="sql",
            ris_url=f"sqlite:///{tmp_path / 'ris.sqlite'}",
            ris_exam_map=str(EXAM_MAP),
            ris_timezone="America/New_York",
        )
    )
    assert isinstance(sql, SqlConnector)
    assert sql.naive_timezone == ZoneInfo("America/New_York") and len(sql.exams.rules) == 4


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"ris_timezone": "Mars/Olympus"}, "RRIEF_RIS_TIMEZONE 'Mars/Olympus' is not an IANA"),
        ({"ris_hl7_encoding": "klingon-8"}, "RRIEF_RIS_HL7_ENCODING 'klingon-8' is not a codec"),
        ({"ris_corrected_statuses": "C,F"}, "'F' is listed as final and corrected"),
        ({"ris_exam_map": "/nowhere/map.yaml"}, "exam mapping file /nowhere/map.yaml: cannot"),
    ],
)
def test_bad_ris_settings_say_which(tmp_path: Path, setting: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connector_from_settings(
            Settings(ris_kind="hl7v2", ris_folder=str(tmp_path), **setting)  # type: ignore[arg-type]
        )
