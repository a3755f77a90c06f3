"""The openai backend's own behaviour: options, egress guard, retries and error handling.

The end-to-end path through a real ``rrief serve`` is in ``test_serve.py``. Here, retries on
429/5xx need a server that fails on purpose: a small standard-library HTTP server on 127.0.0.1
that answers a scripted sequence of status codes (a real server over real sockets; ``rrief
serve`` never answers 503 on demand).
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("httpx")

from extractors.extract.registry import BackendError
from extractors.llm.egress import EgressDenied
from extractors.llm.openai_backend import (
    OpenAIOptions,
    make_openai_extractor,
    normalize_endpoint,
)
from extractors.llm.sparse import sparse_json_schema
from extractors.results import ReportInput
from extractors.schemas import get_schema

CXR = get_schema("cxr")
REPORT = ReportInput(report_id="r1", text="FINDINGS: Small right pleural effusion.")


@pytest.fixture(autouse=True)
def _no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RRIEF_LLM_ALLOWED_HOSTS", raising=False)


class Scripted:
    """A 127.0.0.1 HTTP server answering POSTs with a scripted list of (status, body, headers)
    and GETs (``/v1/models``) with ``models``, or 404 without it."""

    def __init__(self, script: list[tuple[int, Any, dict[str, str]]], models: Any = None) -> None:
        self.script = list(script)
        self.models = models
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if outer.models is not None:
                    self._answer(200, outer.models, {})
                else:
                    self._answer(404, {"error": {"message": "no listing"}}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                outer.requests.append(
                    {
                        "path": self.path,
                        "body": json.loads(self.rfile.read(length)),
                        "authorization": self.headers.get("authorization"),
                    }
                )
                status, body, headers = outer.script.pop(0) if outer.script else (500, {}, {})
                self._answer(status, body, headers)

            def _answer(self, status: int, body: Any, headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_answer(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "cxr-v1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(script: list[tuple[int, Any, dict[str, str]]], models: Any = None) -> Scripted:
        servers.append(Scripted(script, models))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


VALID = CXR.canonical_json(CXR.empty_labels())


def test_options_arrive_as_strings_and_are_coerced() -> None:
    ex = make_openai_extractor(
        CXR,
        endpoint="http://127.0.0.1:9/v1",
        adapter="cxr-v1",
        max_concurrency="4",
        timeout="2.5",
        max_retries="1",
        backoff="0",
        max_tokens="77",
        api="completions",
        check_model="false",
        constrained="no",
    )
    assert ex.options == OpenAIOptions(
        max_concurrency=4, timeout=2.5, max_retries=1, backoff=0.0, max_tokens=77,
        api="completions", check_model=False, constrained=False,
    )  # fmt: skip
    assert ex.max_tokens == 77
    assert ex.version == "cxr-v1"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurency": "4"}, "max_concurency: Extra inputs are not permitted"),
        ({"max_concurrency": "many"}, "max_concurrency"),
        ({"max_concurrency": "0"}, "max_concurrency"),
        ({"api": "responses"}, "api"),
        ({"base_model": "/models/base"}, "--base-model is not used by the openai backend"),
    ],
)
def test_bad_options_are_refused_with_a_precise_message(
    options: dict[str, str], message: str
) -> None:
    with pytest.raises(BackendError, match=message):
        make_openai_extractor(
            CXR, endpoint="http://127.0.0.1:9/v1", adapter="a", check_model="false", **options
        )


def test_endpoint_and_adapter_are_required() -> None:
    with pytest.raises(BackendError, match="needs --endpoint"):
        make_openai_extractor(CXR, adapter="cxr-v1")
    with pytest.raises(BackendError, match="needs --adapter"):
        make_openai_extractor(CXR, endpoint="http://127.0.0.1:8000/v1")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://gpu.local:8000/openai/v1", "http://gpu.local:8000/openai/v1"),
    ],
)
def test_normalize_endpoint(given: str, expected: str) -> None:
    assert normalize_endpoint(given) == expected


def test_public_endpoint_is_refused_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Any] = []

    def forbidden(self: socket.socket, address: Any) -> None:
        opened.append(address)
        raise AssertionError("no connection may be opened to a refused endpoint")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    with pytest.raises(
        EgressDenied, match=r"refusing to send report text to 8\.8\.8\.8: not a loopback"
    ):
        make_openai_extractor(CXR, endpoint="http://8.8.8.8:8000/v1", adapter="cxr-v1")
    with pytest.raises(EgressDenied, match="RRIEF_LLM_ALLOWED_HOSTS"):
        make_openai_extractor(CXR, endpoint="https://[2001:4860:4860::8888]/v1", adapter="cxr-v1")
    assert opened == []


def test_proxy_variables_are_ignored(monkeypatch: pytest.MonkeyPatch, scripted: Any) -> None:
    """A proxy from the environment would route report text elsewhere: the client ignores it."""
    server = scripted([(200, chat_answer(VALID), {})])
    monkeypatch.setenv("HTTP_PROXY", "http://203.0.113.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://203.0.113.9:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", timeout="5")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok", result.error


def test_unreachable_endpoint_is_a_clear_startup_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(
        BackendError, match=rf"cannot reach the openai endpoint http://127\.0\.0\.1:{port}/v1"
    ):
        make_openai_extractor(CXR, endpoint=f"http://127.0.0.1:{port}/v1", adapter="cxr-v1")


def test_connection_errors_are_retried_then_become_error_lines() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ex = make_openai_extractor(
        CXR, endpoint=f"http://127.0.0.1:{port}", adapter="cxr-v1", check_model="false",
        max_retries="2", backoff="0.01",
    )  # fmt: skip
    results = ex.extract_batch([REPORT, REPORT.model_copy(update={"report_id": "r2"})])
    assert [r.report_id for r in results] == ["r1", "r2"]
    for r in results:
        assert r.status == "error"
        assert "failed after 3 attempts: ConnectError" in r.error
        assert r.raw_output is None


def test_429_and_5xx_are_retried_with_backoff_then_succeed(scripted: Any) -> None:
    server = scripted(
        [
            (503, {"error": {"message": "overloaded"}}, {}),
            (429, {"error": {"message": "slow down"}}, {"Retry-After": "0.2"}),
            (200, chat_answer(VALID), {}),
        ]
    )
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", backoff="0.01")
    start = time.perf_counter()
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok", result.error
    assert result.labels == CXR.empty_labels()
    assert len(server.requests) == 3
    assert time.perf_counter() - start >= 0.2  # Retry-After honoured
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    body = sent["body"]
    assert body["model"] == "cxr-v1"
    assert body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    # template 2 (the default): sparse answers, every property optional
    assert body["response_format"]["json_schema"]["schema"] == sparse_json_schema(CXR)
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["messages"][0]["role"] == "system"  # the fixed instruction first
    assert body["messages"][1] == {"role": "user", "content": REPORT.text}
    assert 0 < body["max_completion_tokens"] < 4000
    assert "max_tokens" not in body  # deprecated for chat completions


def test_a_template_1_adapter_gets_its_full_prompt_and_answer_schema(scripted: Any) -> None:
    card = {"id": "cxr-v1", "rrief": {"schema": "cxr@1", "prompt_template_version": "1"}}
    server = scripted([(200, chat_answer(VALID), {})], models={"data": [card]})
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", backoff="0.01")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok", result.error
    body = server.requests[0]["body"]
    assert body["response_format"]["json_schema"]["schema"] == CXR.json_schema()
    assert CXR.describe() in body["messages"][0]["content"]


def test_retries_give_up_after_max_retries(scripted: Any) -> None:
    server = scripted([(502, {"error": {"message": "bad gateway"}}, {})] * 5)
    ex = make_openai_extractor(
        CXR, endpoint=server.url, adapter="cxr-v1", max_retries="1", backoff="0"
    )
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "error"
    assert result.error.endswith("failed after 2 attempts: HTTP 502: bad gateway")
    assert len(server.requests) == 2


def test_other_4xx_are_not_retried(scripted: Any) -> None:
    message = "This model's maximum context length is 4096 tokens."
    server = scripted([(400, {"object": "error", "message": message, "code": 400}, {})])
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", backoff="0")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "error"
    assert result.error.endswith(f"refused the request (HTTP 400): {message}")
    assert len(server.requests) == 1


def test_invalid_output_is_asked_once_more_then_kept_as_raw_output(scripted: Any) -> None:
    bad = '{"No Finding": "maybe"}'
    server = scripted([(200, chat_answer("not json"), {}), (200, chat_answer(bad), {})])
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "error"
    assert result.error.startswith(
        "invalid model output after 2 attempts: does not match the schema"
    )
    assert result.raw_output == bad
    assert len(server.requests) == 2


def test_invalid_first_answer_then_valid_retry_is_ok(scripted: Any) -> None:
    server = scripted([(200, chat_answer(VALID[:20], "length"), {}), (200, chat_answer(VALID), {})])
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok"


def test_completions_api_sends_the_plain_rendered_prompt(scripted: Any) -> None:
    answer = {
        "id": "cmpl-1",
        "object": "text_completion",
        "choices": [{"index": 0, "text": VALID, "finish_reason": "stop"}],
    }
    server = scripted([(200, answer, {})])
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", api="completions")
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok", result.error
    sent = server.requests[0]
    assert sent["path"] == "/v1/completions"
    assert REPORT.text in sent["body"]["prompt"]
    assert "messages" not in sent["body"]


def test_concurrency_is_bounded(scripted: Any) -> None:
    """At most max_concurrency requests are in flight at once."""
    server = scripted([])
    in_flight, peak = 0, 0
    lock = threading.Lock()
    handler = server.httpd.RequestHandlerClass
    original = handler.do_POST

    def slow_post(self: Any) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.05)
        server.script.append((200, chat_answer(VALID), {}))
        try:
            original(self)
        finally:
            with lock:
                in_flight -= 1

    handler.do_POST = slow_post
    ex = make_openai_extractor(CXR, endpoint=server.url, adapter="cxr-v1", max_concurrency="3")
    reports = [REPORT.model_copy(update={"report_id": f"r{i}"}) for i in range(9)]
    results = ex.extract_batch(reports)
    assert [r.status for r in results] == ["ok"] * 9
    assert [r.report_id for r in results] == [f"r{i}" for i in range(9)]
    assert 2 <= peak <= 3


def test_credentials_in_the_endpoint_url_are_sent_but_never_shown(
    scripted: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``http://user:password@host/v1``: basic auth on the wire, redacted everywhere else (retry
    logs, the error line that becomes ``raw.extractions.error``, start-up messages)."""
    busy = (503, {"error": {"message": "overloaded"}}, {})
    server = scripted([busy, busy, (400, {"error": {"message": "bad request"}}, {})])
    endpoint = server.url.replace("http://", "http://rrief:s3cret-pw@")
    with caplog.at_level("DEBUG"):
        ex = make_openai_extractor(
            CXR, endpoint=endpoint, adapter="cxr-v1", check_model="false", backoff="0.01"
        )
        (result,) = ex.extract_batch([REPORT])
    assert result.status == "error" and "refused the request (HTTP 400)" in (result.error or "")
    assert ex.endpoint == server.url
    assert "retry 2" in caplog.text and "prefer RRIEF_LLM_API_KEY" in caplog.text
    for shown in (result.error or "", caplog.text, ex.endpoint, repr(ex.options)):
        assert "s3cret" not in shown and "rrief:" not in shown
    expected = "Basic " + base64.b64encode(b"rrief:s3cret-pw").decode()
    assert [r["authorization"] for r in server.requests] == [expected] * 3
    with socket.socket() as s:  # unreachable: the start-up error names the bare endpoint
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError) as err:
        make_openai_extractor(CXR, endpoint=f"http://u:s3cret@127.0.0.1:{port}/v1", adapter="a")
    assert "s3cret" not in str(err.value) and f"http://127.0.0.1:{port}/v1" in str(err.value)


def test_the_api_key_is_a_bearer_token(scripted: Any) -> None:
    server = scripted([(200, chat_answer(VALID), {})])
    ex = make_openai_extractor(
        CXR, endpoint=server.url, adapter="cxr-v1", check_model="false", api_key="k-123"
    )
    (result,) = ex.extract_batch([REPORT])
    assert result.status == "ok" and server.requests[0]["authorization"] == "Bearer k-123"
    assert "k-123" not in repr(ex.options)
