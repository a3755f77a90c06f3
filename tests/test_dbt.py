"""The dbt project: column lists equal the schemas, and a real ``dbt build`` (every data test
passing), docs generation, the uncertain-label policy and the researcher's access."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from extractors.demo.reports import DemoReport, generate_reports
from extractors.demo.ris import RIS_TABLE, ris_url, seed_ris
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.context import RunContext
from extractors.pipeline.dbt import DbtError, column_name, dbt_env, dbt_vars, run_dbt
from extractors.pipeline.extract import extract_batch
from extractors.pipeline.fetch import fetch_window
from extractors.privacy import DEMO_PSEUDONYM_KEY
from extractors.ris.sql import SqlConnector
from extractors.schemas import get_schema
from extractors.settings import get_settings
from tests import pg

SETTINGS = get_settings()

DBT_DIR = Path(__file__).resolve().parents[1] / "dbt"
MARTS = {"cxr": "cxr_findings", "mammo": "mammo_exams", "ccta": "ccta_exams"}
START = datetime(2025, 3, 3, tzinfo=UTC)


def test_project_vars_equal_the_schemas() -> None:
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    generated = dbt_vars()
    for name in ("rrief_label_columns", "rrief_list_columns"):
        assert project["vars"][name] == generated[name], (
            "regenerate with python -m extractors.pipeline.dbt"
        )
    assert project["vars"]["uncertain_policy"] == "exclude"


@pytest.mark.parametrize("schema_name", sorted(MARTS))
def test_mart_docs_list_every_label_column_with_its_values(schema_name: str) -> None:
    schema = get_schema(schema_name)
    doc = yaml.safe_load((DBT_DIR / "models" / "marts" / f"{MARTS[schema_name]}.yml").read_text())
    columns = {c["name"]: c for c in doc["models"][0]["columns"]}
    assert all(c.get("description") for c in columns.values())
    for entry in dbt_vars([schema_name])["rrief_label_columns"][schema_name]:
        field = schema.field(entry["path"][0])
        col = columns[entry["column"]]
        accepted = next(t["accepted_values"] for t in col["data_tests"] if isinstance(t, dict))
        assert accepted["arguments"]["values"] == schema.allowed_values(field)
    assert column_name("stenosis.LAD") == "stenosis_lad"


def test_dbt_env_from_url() -> None:
    env = dbt_env("postgresql+psycopg://alice:s3cret@db.example:6543/wh")
    assert (env["RRIEF_DBT_HOST"], env["RRIEF_DBT_PORT"], env["RRIEF_DBT_USER"]) == (
        "db.example",
        "6543",
        "alice",
    )
    assert (env["RRIEF_DBT_PASSWORD"], env["RRIEF_DBT_DBNAME"]) == ("s3cret", "wh")
    sock = dbt_env("postgresql+psycopg://pg@/rrief?host=/tmp/pgsock")
    assert sock["RRIEF_DBT_HOST"] == "/tmp/pgsock"


@pytest.fixture(scope="module")
def demo_reports() -> list[DemoReport]:
    return list(generate_reports(date(2025, 3, 3), days=1, per_day=120, seed=9))


@pytest.fixture(scope="module")
def built(
    warehouse_url: str,
    warehouse_engine: Engine,
    demo_reports: list[DemoReport],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path]:
    """A warehouse loaded by the pipeline steps, then ``dbt build`` (raises if any test fails)."""
    pg.truncate_warehouse(warehouse_engine)
    ris = tmp_path_factory.mktemp("ris") / "ris.sqlite"
    seed_ris(ris, demo_reports)
    end = START + timedelta(days=1)
    fetch_window(
        SqlConnector(ris_url(ris), table_name=RIS_TABLE),
        START,
        end,
        DEMO_PSEUDONYM_KEY,
        warehouse_engine,
    )
    for i, batch in enumerate(plan_batches(warehouse_engine, START, end, 50)):
        extract_batch(
            batch,
            get_settings(),
            warehouse_engine,
            RunContext(run_id="dbt-test", task_id="extract", map_index=i),
        )
    target = tmp_path_factory.mktemp("dbt-target")
    result = run_dbt(("build",), url=warehouse_url, settings=SETTINGS, target_path=target)
    assert "ERROR=0" in result.output_tail and "WARN=0" in result.output_tail
    return warehouse_url, target


@pytest.mark.slow
def test_build_makes_marts_researchers_can_read_and_nothing_else(
    built: tuple[str, Path], warehouse_engine: Engine, demo_reports: list[DemoReport]
) -> None:
    with warehouse_engine.connect() as conn:
        conn.execute(text("SET ROLE researcher"))
        sizes = {
            m: conn.execute(text(f"SELECT count(*) FROM marts.{m}")).scalar_one()
            for m in (
                *MARTS.values(),
                "cohort_pleural_effusion",
                "cohort_birads_4plus",
                "cohort_cad_rads_3plus",
            )
        }
        for private in (
            "raw.reports",
            "staging.stg_rrief__reports",
            "intermediate.int_extractions__latest_valid",
            "ops.run_metrics",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(f"SELECT 1 FROM {private} LIMIT 1"))
            conn.rollback()
            conn.execute(text("SET ROLE researcher"))
        columns = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'marts'"
            )
        ).all()
    by_type = {t: sum(r.report_type == t for r in demo_reports) for t in MARTS}
    assert {t: sizes[m] for t, m in MARTS.items()} == by_type
    assert all(
        sizes[c] > 0
        for c in ("cohort_pleural_effusion", "cohort_birads_4plus", "cohort_cad_rads_3plus")
    )
    # no report text in the marts: no text/evidence column, no sentence of any report
    assert not [c for c in columns if c.column_name in ("report_text", "evidence", "text")]
    sentences = [r.text.splitlines()[-1] for r in demo_reports[:20]]
    hits = [h for h in pg.find_strings(warehouse_engine, sentences) if h[0].startswith("marts.")]
    assert hits == []


@pytest.mark.slow
def test_uncertain_policy_and_docs(
    built: tuple[str, Path], warehouse_engine: Engine, tmp_path: Path
) -> None:
    url, _ = built

    def cohort() -> list[tuple[str, str]]:
        with warehouse_engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    text("SELECT index_label, uncertain_policy FROM marts.cohort_pleural_effusion")
                )
            ]

    excluded = cohort()
    assert {label for label, _ in excluded} == {"positive"}
    run_dbt(
        ("build", "--select", "cohort_pleural_effusion"),
        url=url,
        settings=SETTINGS,
        target_path=tmp_path / "t1",
        extra_vars={"uncertain_policy": "include"},
    )
    included = cohort()
    assert len(included) > len(excluded)
    assert {label for label, _ in included} == {"positive", "uncertain"}
    assert {p for _, p in included} == {"include"}
    with pytest.raises(DbtError, match="uncertain_policy must be"):
        run_dbt(
            ("build", "--select", "cohort_pleural_effusion"),
            url=url,
            settings=SETTINGS,
            target_path=tmp_path / "t2",
            extra_vars={"uncertain_policy": "maybe"},
        )
    run_dbt(
        ("run", "--select", "cohort_pleural_effusion"),
        url=url,
        settings=SETTINGS,
        target_path=tmp_path / "t3",
    )  # restore
    docs = tmp_path / "docs"
    run_dbt(("docs", "generate"), url=url, settings=SETTINGS, target_path=docs)
    catalog = json.loads((docs / "catalog.json").read_text())
    assert "model.rrief.cohort_pleural_effusion" in catalog["nodes"]
