"""``rrief serve``'s limits over real HTTP: body size before reading, prompt length before
tokenizing, the optional bearer key, JSON Schema checks, and the warning for a public bind.

The server is ``rrief serve``'s app on the tiny local base model (no adapters needed), run by
uvicorn in a thread on a free 127.0.0.1 port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from extractors.extract.registry import BackendError  # noqa: E402
from extractors.llm.openai_backend import make_openai_extractor  # noqa: E402
from extractors.llm.server import bind_warning  # noqa: E402
from extractors.llm.server_guard import SchemaProblem, check_json_schema  # noqa: E402
from extractors.schemas import get_schema  # noqa: E402

KEY = "test-key-5f1c"
LIMIT = 256 * 1024
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Small effusion."}]}


@pytest.fixture(scope="module")
def engine(tiny_base_model: Path) -> Any:
    from extractors.llm.engine import HFEngine

    return HFEngine(tiny_base_model, {}, device="cpu")


@pytest.fixture(scope="module")
def guarded(engine: Any) -> Iterator[str]:
    """The app with a bearer key and a 256 KiB body limit; yields ``http://127.0.0.1:PORT``."""
    from extractors.llm.server import create_app

    app = create_app(engine, "tiny", api_key=KEY, max_body_bytes=LIMIT, batch_window_ms=0)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "rrief serve did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def client(guarded: str) -> Iterator[Any]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=guarded, headers=headers, timeout=60) as c:
        yield c


def raw_request(base: str, head: str, body: bytes = b"") -> str:
    """Send ``head`` (+ ``body``) over a plain socket; return the status line and body."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


def test_a_declared_oversize_body_is_refused_before_it_is_sent(guarded: str) -> None:
    """Only the headers go out: a server reading the body first would wait for 1 GB."""
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {KEY}\r\ncontent-length: 1000000000"
    )
    answer = raw_request(guarded, head)
    assert answer.startswith("HTTP/1.1 413")
    error = json.loads(answer.split("\r\n\r\n", 1)[1])["error"]
    assert error["code"] == 413 and "at most 262144" in error["message"]


def test_a_chunked_oversize_body_is_cut_off_at_the_limit(client: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
        for _ in range(200):  # 200 x 4 KiB: well over the limit
            yield b"x" * 4096
        yield b'"}]}'

    response = client.post("/v1/chat/completions", content=chunks())
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "RequestEntityTooLargeError"


def test_small_requests_are_served_while_a_big_one_waits(client: Any, guarded: str) -> None:
    host, port = guarded.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as stalled:  # headers, then nothing
        stalled.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-length: 60000\r\n"
            + f"authorization: Bearer {KEY}\r\n\r\n".encode()
            + b'{"model": "tiny", "messages": ['
        )
        response = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 2})
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] <= 2


def test_prompt_length_is_checked_in_characters_before_tokenizing(
    client: Any, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import extractors.llm.engine as engine_module

    def no_tokenizing(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an over-long prompt must be refused before tokenizing")

    monkeypatch.setattr(engine_module, "encode_prompt", no_tokenizing)
    # no token spells more characters than the longest vocabulary entry; context: 4096 tokens
    fits = 4096 * max(len(t) for t in engine.tokenizer.get_vocab())
    body = {"model": "tiny", "prompt": "a" * (fits + 1)}
    assert len(json.dumps(body)) < LIMIT  # the body limit is not what refuses it
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "prompt"
    assert f"prompt 0 has {fits + 1} characters" in error["message"]
    assert f"holds at most {fits}" in error["message"]


def test_bearer_key_is_required_on_v1_only(guarded: str) -> None:
    with httpx.Client(base_url=guarded, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            response = anonymous.get("/v1/models", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "AuthenticationError"
            assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/health").status_code == 200
        ok = anonymous.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "tiny"


def test_openai_backend_sends_the_key(guarded: str) -> None:
    cxr = get_schema("cxr")
    ex = make_openai_extractor(cxr, endpoint=guarded, adapter="tiny", api_key=KEY)
    assert ex.version == "tiny"
    with pytest.raises(BackendError, match=r"HTTP 401.*set RRIEF_LLM_API_KEY"):
        make_openai_extractor(cxr, endpoint=guarded, adapter="tiny")


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"$ref": "#/$defs/missing"}},
                }
            },
            "response_format",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "x",
                        "schema": {"type": "object", "properties": {"a": {"type": "text"}}},
                    },
                }
            },
            "response_format",
        ),
        ({"structured_outputs": {"json": {"anyOf": []}}}, "structured_outputs"),
    ],
)
def test_invalid_json_schemas_are_400_not_a_truncated_200(
    client: Any, fmt: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/chat/completions", json=CHAT | fmt)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"].startswith("invalid JSON Schema")


def test_every_builtin_schema_passes_the_check() -> None:
    for name in ("cxr", "mammo", "ccta"):
        check_json_schema(get_schema(name).json_schema())
    with pytest.raises(SchemaProblem, match="does not resolve"):
        check_json_schema({"properties": {"a": {"$ref": "#/properties/b"}}})
    with pytest.raises(SchemaProblem, match="deeper than"):
        nested: dict[str, Any] = {}
        for _ in range(100):
            nested = {"properties": {"a": nested}}
        check_json_schema(nested)


def test_binding_beyond_loopback_is_warned_about() -> None:
    assert bind_warning("127.0.0.1", False) is None
    assert bind_warning("localhost", False) is None
    assert bind_warning("::1", False) is None
    warning = bind_warning("0.0.0.0", False)
    assert warning and "beyond loopback" in warning and "RRIEF_LLM_API_KEY" in warning
    keyed = bind_warning("10.0.0.5", True)
    assert keyed and "beyond loopback" in keyed and "RRIEF_LLM_API_KEY" not in keyed
