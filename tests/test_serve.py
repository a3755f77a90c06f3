"""``rrief serve`` over real HTTP, and the openai backend end to end through it.

The server runs with uvicorn in a background thread on a free 127.0.0.1 port, serving the tiny
base model with three LoRA adapters (two cxr adapters with different random weights and one
mammo adapter). Adapters use random LoRA weights (``init_lora_weights=False``) so that each one
really changes the model's outputs.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from click.testing import CliRunner  # noqa: E402

from extractors.extract.registry import BACKENDS, BackendError, make_extractor  # noqa: E402
from extractors.llm.adapters import (  # noqa: E402
    AdapterMetadata,
    TrainingDataInfo,
    adapter_version,
    base_model_fingerprint,
    now_iso,
    sha256_file,
    write_adapter_metadata,
)
from extractors.llm.prompts import PROMPT_TEMPLATE_VERSION, build_messages  # noqa: E402
from extractors.results import ReportInput  # noqa: E402
from extractors.schemas import get_schema  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
CXR = get_schema("cxr")
MAMMO = get_schema("mammo")


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_model(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny base model (conftest's ``tiny_base_model``), built here if absent."""
    torch.set_num_threads(2)
    try:
        return Path(request.getfixturevalue("tiny_base_model"))
    except pytest.FixtureLookupError:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            "_tiny_llm", Path(__file__).parent / "tiny_llm.py"
        )
        assert spec is not None and spec.loader is not None
        tiny_llm = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tiny_llm)
        return tiny_llm.build_tiny_llama(tmp_path_factory.mktemp("tiny-base"))


def make_adapter(base: Path, out: Path, schema_name: str, schema_version: int, seed: int) -> Path:
    """A vLLM-shaped LoRA adapter with random (non-identity) weights and rrief metadata."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules="all-linear",
        bias="none",
        task_type="CAUSAL_LM",
        init_lora_weights=False,  # random A and B: the adapter changes the outputs
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    write_adapter_metadata(
        out,
        AdapterMetadata(
            rrief_version="test",
            created_at=now_iso(),
            schema_name=schema_name,
            schema_version=schema_version,
            prompt_template_version=PROMPT_TEMPLATE_VERSION,
            base_model=base_model_fingerprint(base),
            training_data=TrainingDataInfo(sha256="0" * 64, size=0),
            hyperparameters={"r": 8, "lora_alpha": 16, "init": "random (test)"},
            adapter_sha256=sha256_file(out / "adapter_model.safetensors"),
        ),
    )
    return out


@pytest.fixture(scope="module")
def adapters(base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    return {
        "cxr-a": make_adapter(base_model, root / "cxr-a", "cxr", CXR.version, seed=1),
        "cxr-b": make_adapter(base_model, root / "cxr-b", "cxr", CXR.version, seed=2),
        "mammo-a": make_adapter(base_model, root / "mammo-a", "mammo", MAMMO.version, seed=3),
    }


@pytest.fixture(scope="module")
def engine(base_model: Path, adapters: dict[str, Path]) -> Any:
    from extractors.llm.engine import HFEngine

    return HFEngine(base_model, adapters, device="cpu")


@pytest.fixture(scope="module")
def server(engine: Any) -> Any:
    """``rrief serve``'s app on a free 127.0.0.1 port; yields the base URL (``.../v1``)."""
    from extractors.llm.server import create_app

    app = create_app(engine, "tiny-base", batch_window_ms=20)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("rrief serve did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def http(server: str) -> Any:
    with httpx.Client(base_url=server + "/", timeout=120) as client:
        yield client


def cxr_reports(n: int) -> list[ReportInput]:
    rows = [
        json.loads(line)
        for line in (FIXTURES / "llm_train_cxr.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return [ReportInput(report_id=r["report_id"], text=r["text"]) for r in rows[:n]]


def prompt_for(engine: Any, text: str) -> str:
    return engine.render_chat(build_messages(CXR, text))


# -- the protocol --------------------------------------------------------------------------------
def test_models_lists_the_base_and_every_adapter_like_vllm(
    http: Any, adapters: dict[str, Path]
) -> None:
    body = http.get("models").json()
    assert body["object"] == "list"
    cards = {c["id"]: c for c in body["data"]}
    assert list(cards) == ["tiny-base", "cxr-a", "cxr-b", "mammo-a"]
    assert cards["tiny-base"]["parent"] is None
    for name, path in adapters.items():
        card = cards[name]
        assert card["object"] == "model"
        assert card["parent"] == "tiny-base"
        assert card["root"] == str(path.resolve())
        assert card["rrief"]["version"] == adapter_version(path)
        assert card["rrief"]["prompt_template_version"] == PROMPT_TEMPLATE_VERSION
    assert cards["cxr-a"]["rrief"]["schema"] == CXR.id
    assert cards["mammo-a"]["rrief"]["schema"] == MAMMO.id


def test_model_name_routes_to_that_adapters_weights(http: Any, engine: Any) -> None:
    prompt = prompt_for(engine, "FINDINGS: Small left pleural effusion.")
    texts = {}
    for model in ("tiny-base", "cxr-a", "cxr-b"):
        body = http.post(
            "completions", json={"model": model, "prompt": prompt, "max_tokens": 12}
        ).json()
        texts[model] = body["choices"][0]["text"]
        # the server's answer is exactly what the engine gives with that adapter in process
        adapter = None if model == "tiny-base" else model
        direct = engine.generate([prompt], adapter=adapter, max_new_tokens=12)[0]
        assert texts[model] == direct.text, model
    assert texts["cxr-a"] != texts["cxr-b"]
    assert len(set(texts.values())) == 3
    again = http.post(
        "completions", json={"model": "cxr-a", "prompt": prompt, "max_tokens": 12}
    ).json()
    assert again["choices"][0]["text"] == texts["cxr-a"]  # greedy: deterministic


def test_chat_completion_with_json_schema_is_schema_valid_and_shaped_like_openai(http: Any) -> None:
    request = {
        "model": "cxr-b",
        "messages": build_messages(CXR, "FINDINGS: Heart size is enlarged. No effusion."),
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "cxr", "schema": CXR.json_schema(), "strict": True},
        },
    }
    response = http.post("chat/completions", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "cxr-b"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    labels = CXR.validate_labels(json.loads(choice["message"]["content"]))
    assert list(labels) == CXR.field_names
    usage = body["usage"]
    assert usage["prompt_tokens"] > 50
    assert usage["completion_tokens"] > 10
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_vllm_structured_outputs_json_is_honoured_on_completions(http: Any, engine: Any) -> None:
    prompts = [
        prompt_for(engine, "FINDINGS: Normal study."),
        prompt_for(engine, "FINDINGS: Pneumothorax."),
    ]
    body = http.post(
        "completions",
        json={
            "model": "mammo-a",
            "prompt": prompts,
            "structured_outputs": {"json": MAMMO.json_schema()},
        },
    ).json()
    assert body["object"] == "text_completion"
    assert [c["index"] for c in body["choices"]] == [0, 1]
    for choice in body["choices"]:
        assert choice["finish_reason"] == "stop"
        MAMMO.validate_labels(json.loads(choice["text"]))


def test_unknown_model_is_a_404_in_openai_error_shape(http: Any) -> None:
    response = http.post(
        "chat/completions",
        json={"model": "cxr-zzz", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "NotFoundError"
    assert error["param"] == "model"
    assert "cxr-zzz" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "cxr-a"}, "messages"),
        (
            {"model": "cxr-a", "messages": [{"role": "user", "content": "x"}], "stream": True},
            "stream",
        ),
        ({"model": "cxr-a", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {
                "model": "cxr-a",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema"},
            },
            "response_format",
        ),
        (
            {"model": "cxr-a", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
        ),
        ({"model": "cxr-a", "prompt": "x", "max_tokens": 100_000}, "max_tokens"),
    ],
)
def test_bad_requests_are_400_with_the_offending_parameter(
    http: Any, body: dict[str, Any], param: str
) -> None:
    path = "completions" if "prompt" in body else "chat/completions"
    response = http.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "BadRequestError"
    assert error["code"] == 400
    assert error["param"] == param


def test_health(http: Any) -> None:
    assert http.get(http.base_url.join("/health")).json() == {"status": "ok"}


# -- the openai backend through the server ---------------------------------------------------------
def test_openai_backend_end_to_end_gives_schema_valid_ok_lines(
    server: str, adapters: dict[str, Path]
) -> None:
    assert BACKENDS["openai"] == "extractors.llm.openai_backend:make_openai_extractor"
    reports = cxr_reports(6)
    by_adapter = {}
    for name in ("cxr-a", "cxr-b"):
        extractor = make_extractor(
            "openai", CXR, endpoint=server, adapter=name, max_concurrency="3"
        )
        results = extractor.extract_batch(reports)
        assert [r.report_id for r in results] == [r.report_id for r in reports]
        for r in results:
            assert r.status == "ok", r.error
            assert r.extractor.backend == "openai"
            assert r.extractor.version == adapter_version(adapters[name])
            assert CXR.validate_labels(r.labels) == r.labels
            assert r.raw_output is None
        by_adapter[name] = [r.labels for r in results]
    assert by_adapter["cxr-a"] != by_adapter["cxr-b"]  # different adapters, different answers


def test_unconstrained_first_attempt_is_retried_with_the_constraint(server: str) -> None:
    # The random adapter cannot write valid labels on its own; the constrained retry always can.
    extractor = make_extractor(
        "openai", CXR, endpoint=server, adapter="cxr-a", constrained="false", max_tokens="300"
    )
    (result,) = extractor.extract_batch(cxr_reports(1))
    assert result.status == "ok", result.error


def test_invalid_output_becomes_an_error_line_with_the_raw_output(server: str) -> None:
    extractor = make_extractor("openai", CXR, endpoint=server, adapter="cxr-a", max_tokens="1")
    results = extractor.extract_batch(cxr_reports(2))
    for r in results:
        assert r.status == "error"
        assert "invalid model output after 2 attempts" in r.error
        assert "cut off at max_tokens=1" in r.error
        assert r.raw_output and r.raw_output.startswith("{")
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.raw_output)
        assert "raw_output" in r.to_json_dict()


def test_unknown_adapter_is_refused_with_the_served_models(server: str) -> None:
    with pytest.raises(
        BackendError,
        match=r"'cxr-v9' is not served by .*; it serves: tiny-base, cxr-a, cxr-b, mammo-a",
    ):
        make_extractor("openai", CXR, endpoint=server, adapter="cxr-v9")


def test_adapter_trained_for_another_schema_is_refused(server: str) -> None:
    with pytest.raises(
        BackendError, match=r"trained for schema mammo@1, but extraction asked for schema cxr@1"
    ):
        make_extractor("openai", CXR, endpoint=server, adapter="mammo-a")


def test_cli_extract_through_rrief_serve(
    server: str, tmp_path: Path, adapters: dict[str, Path]
) -> None:
    from extractors.cli import cli

    src = tmp_path / "in.jsonl"
    reports = cxr_reports(3)
    src.write_text(
        "".join(json.dumps({"report_id": r.report_id, "text": r.text}) + "\n" for r in reports)
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "extract", "--schema", "cxr", "--backend", "openai", "--endpoint", server,
            "--adapter", "cxr-b", "--option", "max_concurrency=2",
            "--input", str(src), "--output", str(out), "--no-progress",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["report_id"] for line in lines] == [r.report_id for r in reports]
    for line in lines:
        assert line["status"] == "ok"
        assert line["extractor"] == {
            "backend": "openai",
            "version": adapter_version(adapters["cxr-b"]),
        }
        CXR.validate_labels(line["labels"])


def test_cli_refuses_a_public_endpoint_before_connecting(tmp_path: Path) -> None:
    from extractors.cli import cli

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"report_id": "r1", "text": "FINDINGS: normal."}) + "\n")
    result = CliRunner().invoke(
        cli,
        [
            "extract", "--schema", "cxr", "--backend", "openai", "--endpoint", "https://8.8.8.8/v1",
            "--adapter", "cxr-a", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "refusing to send report text to 8.8.8.8" in result.output
    assert not (tmp_path / "o.jsonl").exists()


# -- the click command ----------------------------------------------------------------------------
def test_adapter_pairs_are_parsed_like_lora_modules(tmp_path: Path) -> None:
    import click

    from extractors.llm.serve_command import parse_adapters

    (tmp_path / "a").mkdir()
    assert parse_adapters((f"cxr-v1={tmp_path / 'a'}",)) == {"cxr-v1": tmp_path / "a"}
    for bad, message in [
        ("cxr-v1", "is not NAME=PATH"),
        (f"={tmp_path / 'a'}", "is not NAME=PATH"),
        (f"x={tmp_path / 'missing'}", "is not a directory"),
    ]:
        with pytest.raises(click.BadParameter, match=message):
            parse_adapters((bad,))
    with pytest.raises(click.BadParameter, match="given twice"):
        parse_adapters((f"x={tmp_path / 'a'}", f"x={tmp_path / 'a'}"))


@pytest.mark.slow
def test_serve_command_runs_a_server_in_a_subprocess(
    base_model: Path, adapters: dict[str, Path]
) -> None:
    """`rrief serve` as a user starts it: its own process, loopback bind, adapters by name."""
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "from extractors.llm.serve_command import serve; serve()"
    args = [
        sys.executable, "-c", code, "--base-model", str(base_model),
        "--adapter", f"cxr-a={adapters['cxr-a']}", "--adapter", f"mammo-a={adapters['mammo-a']}",
        "--served-model-name", "base", "--port", str(port), "--device", "cpu",
    ]  # fmt: skip
    proc = subprocess.Popen(
        args,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"rrief serve did not come up: {out[-2000:]}")
                time.sleep(0.2)
        assert [m["id"] for m in models["data"]] == ["base", "cxr-a", "mammo-a"]
        assert [m["parent"] for m in models["data"]] == [None, "base", "base"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_concurrent_requests_share_batches(
    http: Any, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests for the same adapter arriving together are generated in one batch."""
    from concurrent.futures import ThreadPoolExecutor

    sizes: list[int] = []
    original = engine.generate

    def recording_generate(prompts: list[str], *args: Any, **kwargs: Any) -> Any:
        sizes.append(len(prompts))
        return original(prompts, *args, **kwargs)

    monkeypatch.setattr(engine, "generate", recording_generate)
    texts = [f"FINDINGS: Finding number {i}." for i in range(6)]
    prompts = [prompt_for(engine, t) for t in texts]

    def ask(prompt: str) -> str:
        body = http.post("completions", json={"model": "cxr-b", "prompt": prompt, "max_tokens": 6})
        return body.json()["choices"][0]["text"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, prompts))
    assert sum(sizes) == 6
    assert max(sizes) > 1, sizes
    monkeypatch.undo()
    alone = [engine.generate([p], adapter="cxr-b", max_new_tokens=6)[0].text for p in prompts]
    assert answers == alone  # batching (left padding) does not change greedy answers
