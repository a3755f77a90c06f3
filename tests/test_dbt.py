"""The dbt project: generated column lists equal the schemas, and a real ``dbt build`` (every
data and unit test passing), enforced contracts, persisted column docs, incremental builds equal
to a full refresh, reclassified reports, docs generation, the uncertain-label policy and the
researcher's access."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError

from extractors.demo.reports import DemoReport, generate_reports
from extractors.demo.ris import RIS_TABLE, add_reports, ris_url, seed_ris
from extractors.pipeline.batches import plan_batches
from extractors.pipeline.context import RunContext
from extractors.pipeline.dbt import (
    GENERATED_MACRO,
    DbtError,
    column_name,
    dbt_env,
    dbt_vars,
    main,
    render_label_macro,
    run_dbt,
)
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


def test_generated_label_macro_is_current(tmp_path: Path) -> None:
    """The label columns live in a generated macro file, not in dbt_project.yml vars."""
    assert (DBT_DIR / GENERATED_MACRO).read_text(encoding="utf-8") == render_label_macro(), (
        "regenerate with python -m extractors.pipeline.dbt"
    )
    assert main(["--check"]) == 0
    project = yaml.safe_load((DBT_DIR / "dbt_project.yml").read_text())
    assert set(project["vars"]) == {"uncertain_policy", "lookback_days"}
    assert project["vars"]["uncertain_policy"] == "exclude"
    stale = tmp_path / GENERATED_MACRO
    stale.parent.mkdir(parents=True)
    stale.write_text("{# old #}\n")
    assert main(["--check", "--project-dir", str(tmp_path)]) == 1
    assert main(["--project-dir", str(tmp_path)]) == 0
    assert stale.read_text(encoding="utf-8") == render_label_macro()


def test_one_yaml_beside_each_model() -> None:
    """One convention: every model has its own <model>.yml beside it, describing only it."""
    for sql in sorted((DBT_DIR / "models").rglob("*.sql")):
        doc = yaml.safe_load(sql.with_suffix(".yml").read_text(encoding="utf-8"))
        assert [m["name"] for m in doc["models"]] == [sql.stem]
    for other in (DBT_DIR / "models").rglob("*.yml"):
        if not other.with_suffix(".sql").exists():
            assert other.name.startswith("_"), f"{other}: not beside a model, not a _sources file"


def test_every_mart_and_cohort_has_an_enforced_contract() -> None:
    for path in sorted((DBT_DIR / "models" / "marts").rglob("*.sql")):
        model = yaml.safe_load(path.with_suffix(".yml").read_text())["models"][0]
        assert model["config"]["contract"] == {"enforced": True}, path.stem
        assert all(c.get("data_type") for c in model["columns"]), path.stem


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
def ris_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ris") / "ris.sqlite"


def load_window(engine: Engine, ris: Path, start: datetime, run_id: str) -> None:
    """The DAG's fetch, plan and extract steps over one day of the RIS file."""
    end = start + timedelta(days=1)
    fetch_window(
        SqlConnector(ris_url(ris), table_name=RIS_TABLE), start, end, DEMO_PSEUDONYM_KEY, engine
    )
    for i, batch in enumerate(plan_batches(engine, start, end, 50)):
        extract_batch(
            batch, SETTINGS, engine, RunContext(run_id=run_id, task_id="extract", map_index=i)
        )


@pytest.fixture(scope="module")
def built(
    warehouse_url: str,
    warehouse_engine: Engine,
    demo_reports: list[DemoReport],
    ris_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, Path]:
    """A warehouse loaded by the pipeline steps, then ``dbt build`` (raises if any test fails)."""
    pg.truncate_warehouse(warehouse_engine)
    seed_ris(ris_file, demo_reports)
    load_window(warehouse_engine, ris_file, START, "dbt-test")
    target = tmp_path_factory.mktemp("dbt-target")
    result = run_dbt(("build",), url=warehouse_url, settings=SETTINGS, target_path=target)
    assert "ERROR=0" in result.output_tail and "WARN=0" in result.output_tail
    assert "4 unit tests" in result.output_tail  # the cohorts' first-study and policy tests
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


@pytest.mark.slow
def test_column_docs_are_persisted_in_postgres(
    built: tuple[str, Path], warehouse_engine: Engine
) -> None:
    """`\\d+ marts.cxr_findings` shows each column's meaning: COMMENTs from the model YAML."""
    doc = yaml.safe_load((DBT_DIR / "models" / "marts" / "cxr_findings.yml").read_text())
    model = doc["models"][0]
    expected = {c["name"]: c["description"] for c in model["columns"]}
    with warehouse_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.attname, d.description FROM pg_attribute a "
                "LEFT JOIN pg_description d ON d.objoid = a.attrelid AND d.objsubid = a.attnum "
                "WHERE a.attrelid = 'marts.cxr_findings'::regclass AND a.attnum > 0 "
                "AND NOT a.attisdropped"
            )
        ).all()
        table_doc = conn.execute(
            text("SELECT obj_description('marts.cxr_findings'::regclass, 'pg_class')")
        ).scalar_one()
    assert {r.attname: r.description for r in rows} == expected
    assert table_doc == model["description"]


@pytest.mark.slow
def test_a_contract_violation_fails_the_build(
    built: tuple[str, Path], warehouse_engine: Engine, tmp_path: Path
) -> None:
    """A mart whose SQL yields another type than its contract declares is not built."""
    url, _ = built
    project = tmp_path / "dbt"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    sql = project / "models" / "marts" / "cxr_findings.sql"
    body = sql.read_text(encoding="utf-8")
    assert "    schema_version,\n" in body
    sql.write_text(
        body.replace("    schema_version,\n", "    schema_version::text as schema_version,\n")
    )
    settings = SETTINGS.model_copy(update={"dbt_project_dir": str(project)})
    with pytest.raises(DbtError, match="contract"):
        run_dbt(
            ("run", "--select", "cxr_findings", "--full-refresh"),
            url=url,
            settings=settings,
            target_path=tmp_path / "target",
        )
    with warehouse_engine.connect() as conn:  # the mart is as it was
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = 'marts' "
                "AND table_name = 'cxr_findings' AND column_name = 'schema_version'"
            )
        ).scalar_one()
    assert kind == "integer"


def _model_checksums(engine: Engine) -> dict[str, str]:
    sums = pg.table_checksums(engine)
    return {k: v for k, v in sums.items() if k.split(".")[0] in ("intermediate", "marts")}


@pytest.mark.slow
def test_incremental_builds_equal_a_full_refresh_and_a_reclassified_report_moves(
    built: tuple[str, Path],
    warehouse_engine: Engine,
    demo_reports: list[DemoReport],
    ris_file: Path,
    tmp_path: Path,
) -> None:
    """A day of new reports and a report reclassified in the RIS (CXR -> MG, same text): the
    incremental build gives byte-identical models to ``--full-refresh``, and the reclassified
    report counts only in the mart of its current type (issue 11 item 6)."""
    url, _ = built
    moved = next(r for r in demo_reports if r.report_type == "cxr")
    mammo = next(r for r in demo_reports if r.report_type == "mammo")
    from sqlalchemy import create_engine

    ris = create_engine(ris_url(ris_file))
    try:
        with ris.begin() as conn:
            conn.execute(
                text(
                    "UPDATE report_feed SET modality = :m, procedure = :p "
                    "WHERE accession_number = :a"
                ),
                {"m": mammo.modality, "p": mammo.procedure, "a": moved.accession_number},
            )
    finally:
        ris.dispose()
    with warehouse_engine.connect() as conn:
        n_cxr_before = conn.execute(text("SELECT count(*) FROM marts.cxr_findings")).scalar_one()
    day2 = [  # the generator numbers accessions per call: make them unique in the RIS
        r.model_copy(update={"accession_number": f"L{r.accession_number}"})
        for r in generate_reports(date(2025, 3, 4), days=1, per_day=60, seed=10)
    ]
    add_reports(ris_file, day2)
    load_window(warehouse_engine, ris_file, START, "dbt-test-reclassify")
    load_window(warehouse_engine, ris_file, START + timedelta(days=1), "dbt-test-day2")

    run_dbt(("build",), url=url, settings=SETTINGS, target_path=tmp_path / "incremental")
    incremental = _model_checksums(warehouse_engine)
    with warehouse_engine.connect() as conn:
        key = conn.execute(
            text(
                "SELECT r.report_key FROM raw.reports r WHERE r.report_type = 'mammo' AND "
                "EXISTS (SELECT 1 FROM raw.extractions e WHERE e.report_key = r.report_key "
                "AND e.schema_name = 'cxr' AND e.status = 'ok')"
            )
        ).scalar_one()
        in_cxr = conn.execute(
            text("SELECT count(*) FROM marts.cxr_findings WHERE report_key = :k"), {"k": key}
        ).scalar_one()
        in_mammo = conn.execute(
            text("SELECT count(*) FROM marts.mammo_exams WHERE report_key = :k"), {"k": key}
        ).scalar_one()
        mammo_ok = conn.execute(
            text(
                "SELECT count(*) FROM raw.extractions WHERE report_key = :k "
                "AND schema_name = 'mammo' AND status = 'ok'"
            ),
            {"k": key},
        ).scalar_one()
        n_cxr = conn.execute(text("SELECT count(*) FROM marts.cxr_findings")).scalar_one()
    assert in_cxr == 0
    assert in_mammo == mammo_ok == 1
    assert n_cxr > n_cxr_before  # the new day's studies arrived incrementally

    run_dbt(("build", "--full-refresh"), url=url, settings=SETTINGS, target_path=tmp_path / "full")
    full = _model_checksums(warehouse_engine)
    assert "marts.cxr_findings" in full and "intermediate.int_extractions__latest_valid" in full
    assert incremental == full


@pytest.mark.slow
def test_a_non_default_researcher_role_drives_roles_grants_dbt_and_the_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """RRIEF_RESEARCHER_ROLE=analyst: `rrief warehouse upgrade` creates and grants `analyst`
    (USAGE on marts, SELECT on the marts and health marts dbt builds), the demo reads as it, and
    `researcher` gets nothing in this warehouse (issue 11 item 5)."""
    from click.testing import CliRunner
    from sqlalchemy import create_engine

    from extractors.cli import cli
    from extractors.demo.run import researcher_view

    monkeypatch.setenv("RRIEF_RESEARCHER_ROLE", "analyst")
    with pg.throwaway_database() as url:
        result = CliRunner().invoke(cli, ["warehouse", "upgrade", "--url", url])
        assert result.exit_code == 0, result.output
        settings = get_settings()
        assert settings.researcher_role == "analyst"
        run_dbt(("build",), url=url, settings=settings, target_path=tmp_path / "target")
        engine = create_engine(url)
        try:
            cohorts, marts = researcher_view(engine, settings.researcher_role)
            assert set(marts) == set(MARTS.values()) and set(cohorts)
            with engine.connect() as conn:
                privileges = {
                    (role, rel): conn.execute(
                        text("SELECT has_table_privilege(:r, :t, 'SELECT')"), {"r": role, "t": rel}
                    ).scalar_one()
                    for role in ("analyst", "researcher")
                    for rel in ("marts.cxr_findings", "marts.pipeline_health_daily")
                    if conn.execute(
                        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}
                    ).first()
                }
                usage = {
                    role: conn.execute(
                        text(
                            "SELECT has_schema_privilege(rolname, 'marts', 'USAGE') "
                            "FROM pg_roles WHERE rolname = :r"
                        ),
                        {"r": role},
                    ).scalar()
                    for role in ("analyst", "researcher")
                }
                conn.execute(text("SET ROLE analyst"))
                with pytest.raises(ProgrammingError, match="permission denied"):
                    conn.execute(text("SELECT 1 FROM raw.reports LIMIT 1"))
        finally:
            engine.dispose()
    assert privileges[("analyst", "marts.cxr_findings")] is True
    assert privileges[("analyst", "marts.pipeline_health_daily")] is True
    assert usage["analyst"] is True
    # `researcher` may exist in the cluster (other databases); here it was never granted anything
    assert usage["researcher"] in (None, False)
    assert not privileges.get(("researcher", "marts.cxr_findings"))
    assert not privileges.get(("researcher", "marts.pipeline_health_daily"))
