"""``rrief serve``'s runtime adapter endpoints, shaped like vLLM's ``/v1/load_lora_adapter`` and
``/v1/unload_lora_adapter`` (VLLM_ALLOW_RUNTIME_LORA_UPDATING): a newly promoted adapter is
served without a restart, and only when the server was started to allow it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from extractors.llm.prompts import build_messages
from extractors.schemas import get_schema

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine(tiny_base_model: Path) -> Any:
    from extractors.llm.engine import HFEngine

    return HFEngine(tiny_base_model, device="cpu")


@pytest.fixture
def client(engine: Any) -> Iterator[TestClient]:
    from extractors.llm.server import create_app

    with TestClient(create_app(engine, "base", allow_lora_updating=True)) as c:
        yield c


def chat(client: TestClient, model: str) -> Any:
    messages = build_messages(get_schema("cxr"), "FINDINGS: Small left pleural effusion.")
    return client.post(
        "/v1/chat/completions", json={"model": model, "messages": messages, "max_tokens": 4}
    )


def test_endpoints_exist_only_when_allowed(engine: Any) -> None:
    from extractors.llm.server import create_app

    with TestClient(create_app(engine, "base")) as plain:
        body = {"lora_name": "x", "lora_path": "/tmp"}
        assert plain.post("/v1/load_lora_adapter", json=body).status_code == 404
        assert plain.post("/v1/unload_lora_adapter", json={"lora_name": "x"}).status_code == 404


def test_load_serve_and_unload_an_adapter_at_runtime(
    client: TestClient, tiny_adapter: Path, tmp_path: Path
) -> None:
    assert chat(client, "cxr-new").status_code == 404
    loaded = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "cxr-new", "lora_path": str(tiny_adapter)}
    )
    assert loaded.status_code == 200
    assert loaded.text == "Success: LoRA adapter 'cxr-new' added successfully."
    cards = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert cards["cxr-new"]["parent"] == "base" and cards["cxr-new"]["rrief"]["schema"] == "cxr@1"
    assert chat(client, "cxr-new").status_code == 200

    again = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "cxr-new", "lora_path": str(tiny_adapter)}
    )
    assert again.status_code == 400 and "already been loaded" in again.json()["error"]["message"]
    missing = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "y", "lora_path": str(tmp_path / "none")}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "lora_path"
    not_lora = client.post(
        "/v1/load_lora_adapter", json={"lora_name": "y", "lora_path": str(tmp_path)}
    )
    assert not_lora.status_code == 400 and "adapter_config.json" in not_lora.text

    unloaded = client.post("/v1/unload_lora_adapter", json={"lora_name": "cxr-new"})
    assert unloaded.status_code == 200 and "removed successfully" in unloaded.text
    assert "cxr-new" not in {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert chat(client, "cxr-new").status_code == 404
    assert chat(client, "base").status_code == 200  # the bare base model still serves
    gone = client.post("/v1/unload_lora_adapter", json={"lora_name": "cxr-new"})
    assert gone.status_code == 404
    base = client.post("/v1/unload_lora_adapter", json={"lora_name": "base"})
    assert base.status_code == 404  # the base model is not an adapter
