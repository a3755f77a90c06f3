"""The adapter registry (ops.adapters) on a real PostgreSQL: register, promote (retiring the
previous production adapter in one transaction), retire, the one-production-per-schema index,
concurrent promotions, the pipeline's choice of adapter, and the `rrief adapters` command."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from extractors.lifecycle.registry import (
    AdapterRecord,
    RegistryError,
    choose_adapter,
    get_adapter,
    list_adapters,
    production_adapter,
    promote,
    register,
    retire,
)


def record(name: str, schema: str = "cxr", **extra: object) -> AdapterRecord:
    return AdapterRecord(
        adapter_id=f"{name}@{'a' * 12}",
        schema_name=schema,
        schema_version=1,
        path=f"/adapters/{name}",
        served_name=name,
        base_model="/models/base",
        base_model_sha256="b" * 64,
        prompt_template_version="1",
        training_sha256="c" * 64,
        training_size=40,
        hyperparameters={"r": 16},
        created_by="test",
        **extra,  # type: ignore[arg-type]
    )


def statuses(engine: Engine) -> dict[str, str]:
    return {r.served_name: r.status for r in list_adapters(engine)}


def test_promote_retires_the_previous_production_adapter(empty_warehouse: Engine) -> None:
    a = register(empty_warehouse, record("cxr-a", metrics={"micro_f1": 0.8}))
    b = register(empty_warehouse, record("cxr-b"))
    register(empty_warehouse, record("mammo-a", schema="mammo"))
    assert a.status == b.status == "candidate" and a.metrics == {"micro_f1": 0.8}
    assert production_adapter(empty_warehouse, "cxr") is None

    promoted, retired = promote(empty_warehouse, a.adapter_id, "alice")
    assert promoted.status == "production" and promoted.promoted_by == "alice" and retired is None
    promote(empty_warehouse, "mammo-a@" + "a" * 12, "alice")
    promoted, retired = promote(empty_warehouse, b.adapter_id, "bob")
    assert retired is not None and retired.adapter_id == a.adapter_id
    assert statuses(empty_warehouse) == {"cxr-a": "retired", "cxr-b": "production", "mammo-a": "production"}  # fmt: skip
    assert get_adapter(empty_warehouse, a.adapter_id).retired_by == "bob"
    # promoting the production adapter again changes nothing; a retired one is a rollback
    assert promote(empty_warehouse, b.adapter_id, "bob")[1] is None
    promote(empty_warehouse, a.adapter_id, "carol")
    assert statuses(empty_warehouse)["cxr-a"] == "production"
    assert get_adapter(empty_warehouse, a.adapter_id).retired_at is None


def test_register_again_keeps_the_row_and_fills_missing_metrics(empty_warehouse: Engine) -> None:
    first = register(empty_warehouse, record("cxr-a"))
    promote(empty_warehouse, first.adapter_id, "alice")
    again = register(empty_warehouse, record("cxr-a", metrics={"micro_f1": 0.7}))
    assert again.status == "production" and again.metrics == {"micro_f1": 0.7}
    assert register(empty_warehouse, record("cxr-a", metrics={"micro_f1": 0.1})).metrics == {
        "micro_f1": 0.7
    }


def test_at_most_one_production_adapter_per_schema(empty_warehouse: Engine) -> None:
    register(empty_warehouse, record("cxr-a"))
    register(empty_warehouse, record("cxr-b"))
    with empty_warehouse.begin() as conn:
        conn.execute(text("UPDATE ops.adapters SET status = 'production' WHERE served_name = 'cxr-a'"))  # fmt: skip
    with (
        pytest.raises(IntegrityError, match="ix_adapters_one_production"),
        empty_warehouse.begin() as conn,
    ):
        conn.execute(text("UPDATE ops.adapters SET status = 'production'"))


def test_concurrent_promotions_leave_exactly_one_production(empty_warehouse: Engine) -> None:
    names = [f"cxr-{i}" for i in range(6)]
    for name in names:
        register(empty_warehouse, record(name))
    errors: list[BaseException] = []

    def go(name: str) -> None:
        try:
            promote(empty_warehouse, f"{name}@{'a' * 12}", name)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = statuses(empty_warehouse)
    assert sorted(final.values()) == ["production"] + ["retired"] * 5


def test_retire_and_unknown_adapters(empty_warehouse: Engine) -> None:
    a = register(empty_warehouse, record("cxr-a"))
    promote(empty_warehouse, a.adapter_id, "alice")
    assert retire(empty_warehouse, a.adapter_id, "bob").status == "retired"
    assert production_adapter(empty_warehouse, "cxr") is None
    with pytest.raises(RegistryError, match="no adapter 'nope'"):
        promote(empty_warehouse, "nope", "alice")


def test_the_pipeline_uses_production_and_records_an_override(empty_warehouse: Engine) -> None:
    assert choose_adapter(empty_warehouse, "cxr", "hf", "") is None
    a = register(empty_warehouse, record("cxr-a"))
    promote(empty_warehouse, a.adapter_id, "alice")
    hf = choose_adapter(empty_warehouse, "cxr", "hf", "")
    openai = choose_adapter(empty_warehouse, "cxr", "openai", "")
    assert hf is not None and openai is not None
    assert (hf.ref, hf.adapter_id, hf.source) == ("/adapters/cxr-a", a.adapter_id, "registry")
    assert openai.ref == "cxr-a"  # vLLM serves it under the directory's name
    register(empty_warehouse, record("cxr-b"))
    known = choose_adapter(empty_warehouse, "cxr", "openai", "cxr-b")
    assert known is not None and (known.adapter_id, known.source) == (
        "cxr-b@" + "a" * 12,
        "override",
    )
    other = choose_adapter(empty_warehouse, "cxr", "hf", "/elsewhere/cxr-x")
    assert other is not None and other.adapter_id == "/elsewhere/cxr-x"


def test_adapters_command(empty_warehouse: Engine, warehouse_url: str, tiny_adapter: Path) -> None:
    from extractors.cli import cli

    runner = CliRunner()
    url = ["--url", warehouse_url]
    listed = runner.invoke(cli, ["adapters", "list", *url])
    assert listed.exit_code == 0 and "no adapters registered" in listed.output
    reg = runner.invoke(cli, ["adapters", "register", str(tiny_adapter), "--by", "alice", *url])
    assert reg.exit_code == 0, reg.output
    adapter_id = reg.output.split(":")[0]
    assert adapter_id.startswith("cxr-tiny@") and "candidate" in reg.output
    shown = runner.invoke(cli, ["adapters", "show", adapter_id, *url])
    assert '"created_by": "alice"' in shown.output and '"training_size": 20' in shown.output
    promoted = runner.invoke(cli, ["adapters", "promote", adapter_id, "--by", "bob", *url])
    assert promoted.exit_code == 0 and "production for cxr" in promoted.output
    assert "production" in runner.invoke(cli, ["adapters", "list", *url]).output
    retired = runner.invoke(cli, ["adapters", "retire", adapter_id, *url])
    assert retired.exit_code == 0 and retired.output.strip().endswith("retired")
    missing = runner.invoke(cli, ["adapters", "promote", "nope", *url])
    assert missing.exit_code == 1 and "no adapter 'nope'" in missing.output
