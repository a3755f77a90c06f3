"""``rrief serve``: a small OpenAI-compatible HTTP server over the in-process engine.

It speaks the subset of vLLM's protocol that ``rrief extract --backend openai`` uses, so the same
client code runs against vLLM on a GPU worker and against this server on a CPU box (and in the
test suite):

* ``GET /v1/models`` -- the base model under its served name, then one entry per LoRA adapter
  with ``parent`` = the base model's name, as vLLM lists ``--lora-modules``. Adapters trained by
  ``rrief train`` also carry an ``rrief`` object (schema id, prompt template version, version
  string) that the openai backend checks before extracting.
* ``POST /v1/chat/completions`` and ``POST /v1/completions`` -- ``model`` picks the adapter (the
  base model's name: no adapter). ``response_format`` ``{"type": "json_schema", "json_schema":
  {"schema": ...}}`` (or vLLM's ``structured_outputs: {"json": ...}``, or ``{"type":
  "json_object"}``) constrains the output through the engine's JSON-constrained decoding.
  Decoding is always greedy (``temperature`` and other sampling parameters are accepted and
  ignored); ``stream``, ``n > 1``, ``stop`` and ``logprobs`` are refused with a 400.
* ``GET /health`` -- 200 when the server is up.

Errors use OpenAI's JSON shape ``{"error": {"message", "type", "param", "code"}}``: 404 for an
unknown model, 400 for a bad request. Concurrent requests are collected by a micro-batcher
(requests for the same adapter, schema and token budget that arrive within
``batch_window_ms`` share one batched ``generate``); the engine itself is driven by one thread
only, since generation is not thread-safe. Prompts and outputs are never logged.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from extractors.llm.json_bounds import UnboundedSchemaError, max_new_tokens_for_schema
from extractors.llm.server_guard import (
    DEFAULT_MAX_BODY_BYTES,
    SchemaProblem,
    check_json_schema,
    install_guards,
    max_prompt_chars,
)

if TYPE_CHECKING:
    from extractors.llm.engine import Generation, HFEngine

log = logging.getLogger("rrief.serve")

DEFAULT_CHAT_MAX_TOKENS = 512  # unconstrained chat without max_tokens
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's (and vLLM's) default for /v1/completions


# -- errors ---------------------------------------------------------------------------------------
class APIError(Exception):
    """An error answered in OpenAI's JSON shape."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def response(self) -> JSONResponse:
        body = {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.status,
        }
        return JSONResponse(status_code=self.status, content={"error": body})


def bad_request(message: str, param: str | None = None) -> APIError:
    return APIError(400, message, "BadRequestError", param)


# -- request bodies (the OpenAI subset we honour; unknown fields are accepted and ignored) --------
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class JsonSchemaFormat(_Lenient):
    name: str = "output"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ContentPart(_Lenient):
    type: str
    text: str | None = None


class ChatMessage(_Lenient):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        if any(p.type != "text" for p in self.content):
            raise bad_request("only text content parts are supported", "messages")
        return "".join(p.text or "" for p in self.content)


class _GenerationRequest(_Lenient):
    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    structured_outputs: dict[str, Any] | None = None
    temperature: float | None = None
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    logprobs: Any = None

    def check_supported(self) -> None:
        if self.stream:
            raise bad_request("stream=true is not supported by rrief serve", "stream")
        if self.n != 1:
            raise bad_request("only n=1 is supported (decoding is greedy)", "n")
        if self.stop:
            raise bad_request("stop sequences are not supported by rrief serve", "stop")
        if self.logprobs not in (None, False):
            raise bad_request("logprobs are not supported by rrief serve", "logprobs")

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON Schema to follow (from ``response_format`` or ``structured_outputs``)."""
        found: dict[str, Any] | None = None
        fmt = self.response_format
        if fmt is not None and fmt.type == "json_schema":
            if fmt.json_schema is None or not isinstance(fmt.json_schema.schema_, dict):
                raise bad_request(
                    'response_format type json_schema needs {"json_schema": {"schema": {...}}}',
                    "response_format",
                )
            found = fmt.json_schema.schema_
        elif fmt is not None and fmt.type == "json_object":
            found = {"type": "object"}
        if self.structured_outputs:
            unsupported = sorted(set(self.structured_outputs) - {"json"})
            if unsupported:
                raise bad_request(
                    f"structured_outputs {', '.join(unsupported)} are not supported (only json)",
                    "structured_outputs",
                )
            value = self.structured_outputs.get("json")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise bad_request(
                        "structured_outputs.json is not valid JSON", "structured_outputs"
                    ) from None
            if not isinstance(value, dict):
                raise bad_request(
                    "structured_outputs.json must be a JSON Schema object", "structured_outputs"
                )
            if found is not None:
                raise bad_request(
                    "give response_format or structured_outputs, not both", "structured_outputs"
                )
            found = value
        if found is not None:
            try:
                check_json_schema(found)
            except SchemaProblem as exc:
                param = "structured_outputs" if self.structured_outputs else "response_format"
                raise bad_request(f"invalid JSON Schema: {exc}", param) from None
        return found


class ChatCompletionRequest(_GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(_GenerationRequest):
    prompt: str | list[str]


# -- micro-batching -------------------------------------------------------------------------------
@dataclass
class _Job:
    key: tuple[str | None, str, int]
    index: int  # position in its request (for error messages)
    prompt: str
    adapter: str | None
    json_schema: dict[str, Any] | None
    max_new_tokens: int
    future: Future[Generation] = field(default_factory=Future)


class Batcher:
    """Collects generation jobs from request threads and runs them in batches on one thread.

    Jobs with the same (adapter, schema, token budget) that are waiting together go into one
    ``engine.generate`` call (at most ``max_batch_size``); others wait for the next round, in
    arrival order. After the first job of a round arrives, the batcher waits ``window_s`` for
    companions, so concurrent clients share batches. Only the batcher's thread touches the
    engine and its tokenizer (neither is thread-safe): it also checks each prompt against the
    context length (``max_context``) and fails a prompt that does not fit with a 400.
    """

    def __init__(
        self,
        engine: HFEngine,
        max_batch_size: int = 32,
        window_s: float = 0.01,
        max_context: int | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.max_context = max_context
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        # held while the engine generates or changes adapters (runtime load/unload endpoints)
        self.engine_lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rrief-batcher", daemon=True)
        self._thread.start()

    def submit(
        self,
        prompts: list[str],
        adapter: str | None,
        json_schema: dict[str, Any] | None,
        max_new_tokens: int,
    ) -> list[Future[Generation]]:
        schema_key = json.dumps(json_schema, sort_keys=True) if json_schema is not None else ""
        jobs = [
            _Job((adapter, schema_key, max_new_tokens), i, p, adapter, json_schema, max_new_tokens)
            for i, p in enumerate(prompts)
        ]
        with self._cond:
            if self._stopped:
                raise APIError(503, "the server is shutting down", "ServiceUnavailableError")
            self._jobs.extend(jobs)
            self._cond.notify()
        return [j.future for j in jobs]

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._jobs and not self._stopped:
                self._cond.wait()
            if self._stopped and not self._jobs:
                return None
            deadline = time.monotonic() + self.window_s
            while len(self._jobs) < self.max_batch_size and not self._stopped:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            key = self._jobs[0].key
            batch, rest = [], deque()
            while self._jobs:
                job = self._jobs.popleft()
                if job.key == key and len(batch) < self.max_batch_size:
                    batch.append(job)
                else:
                    rest.append(job)
            self._jobs = rest
            return batch

    def _fits(self, job: _Job) -> bool:
        """False (and the job failed with a 400) when prompt + answer exceed the context."""
        if self.max_context is None:
            return True
        from extractors.llm.engine import encode_prompt

        n = len(encode_prompt(self.engine.tokenizer, job.prompt))
        if n + job.max_new_tokens <= self.max_context:
            return True
        job.future.set_exception(
            bad_request(
                f"This model's maximum context length is {self.max_context} tokens. However, "
                f"prompt {job.index} has {n} tokens and max_tokens is {job.max_new_tokens}.",
                "max_tokens",
            )
        )
        return False

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            batch = [job for job in batch if self._fits(job)]
            if not batch:
                continue
            first = batch[0]
            try:
                with self.engine_lock:
                    outputs = self.engine.generate(
                        [j.prompt for j in batch],
                        adapter=first.adapter,
                        json_schema=first.json_schema,
                        max_new_tokens=first.max_new_tokens,
                    )
            except Exception as exc:
                log.warning(
                    "generation failed for a batch of %d: %s", len(batch), type(exc).__name__
                )
                for job in batch:
                    job.future.set_exception(exc)
                continue
            for job, out in zip(batch, outputs, strict=True):
                job.future.set_result(out)


# -- the app --------------------------------------------------------------------------------------
@dataclass
class _Model:
    id: str
    root: str
    parent: str | None
    adapter: str | None
    rrief: dict[str, Any] | None = None


def _adapter_card(path: Path) -> dict[str, Any] | None:
    """The ``rrief`` object of an adapter trained by ``rrief train`` (None for foreign adapters)."""
    from extractors.llm.adapters import AdapterError, adapter_version, load_adapter_metadata

    try:
        meta = load_adapter_metadata(path)
    except AdapterError:
        return None
    return {
        "schema": meta.schema_id,
        "prompt_template_version": meta.prompt_template_version,
        "version": adapter_version(path, meta),
    }


def _max_context(engine: HFEngine) -> int | None:
    value = getattr(engine.model.config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) else None


def create_app(
    engine: HFEngine,
    served_name: str,
    *,
    max_batch_size: int = 32,
    batch_window_ms: float = 10.0,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_lora_updating: bool = False,
) -> FastAPI:
    """The OpenAI-compatible app: ``engine``'s base model as ``served_name``, and its adapters.

    ``api_key``: required as ``Authorization: Bearer`` on ``/v1`` when given; bodies over
    ``max_body_bytes`` are refused unread (:mod:`extractors.llm.server_guard`).
    ``allow_lora_updating`` adds vLLM's runtime ``/v1/load_lora_adapter`` and
    ``/v1/unload_lora_adapter`` (vLLM: ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``).
    """
    if served_name in engine.adapter_names:
        raise ValueError(f"served model name {served_name!r} is also an adapter name")
    created = int(time.time())
    models: dict[str, _Model] = {
        served_name: _Model(served_name, str(engine.base_model_path), None, None)
    }
    for name in engine.adapter_names:
        path = Path(engine.adapter_path(name))
        models[name] = _Model(name, str(path), served_name, name, _adapter_card(path))
    max_context = _max_context(engine)
    prompt_chars = max_prompt_chars(engine.tokenizer, max_context)
    batcher = Batcher(engine, max_batch_size, batch_window_ms / 1000, max_context)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.stop()

    app = FastAPI(
        title="rrief serve", version="1", docs_url=None, redoc_url=None, lifespan=lifespan
    )
    app.state.batcher = batcher
    install_guards(app, api_key=api_key, max_body_bytes=max_body_bytes)

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        param = None
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            param = param or (loc[0] if loc else None)
            problems.append(f"{'.'.join(loc) or 'body'}: {err.get('msg')}")
        return bad_request("; ".join(problems), param).response()

    def resolve_model(name: str) -> _Model:
        if name not in models:
            raise APIError(404, f"The model `{name}` does not exist.", "NotFoundError", "model")
        return models[name]

    def budget(requested: int | None, schema: dict[str, Any] | None, default: int) -> int:
        if requested is not None:
            return requested
        if schema is not None:
            try:
                return max_new_tokens_for_schema(schema)
            except UnboundedSchemaError:
                return DEFAULT_CHAT_MAX_TOKENS
        return default

    def run(
        prompts: list[str],
        model: _Model,
        schema: dict[str, Any] | None,
        max_new: int,
        param: str = "messages",
    ) -> list[Generation]:
        for i, prompt in enumerate(prompts):  # before tokenizing: cheap, and off the batcher
            if prompt_chars is not None and len(prompt) > prompt_chars:
                raise bad_request(
                    f"prompt {i} has {len(prompt)} characters; this model's maximum context "
                    f"length of {max_context} tokens holds at most {prompt_chars}",
                    param,
                )
        futures = batcher.submit(prompts, model.adapter, schema, max_new)
        try:
            return [f.result() for f in futures]
        except APIError:
            raise
        except (ValueError, KeyError) as exc:  # e.g. a JSON Schema the constraint cannot compile
            raise bad_request(
                f"cannot generate with this request: {type(exc).__name__}: {exc}"
            ) from None
        except Exception as exc:
            raise APIError(
                500, f"generation failed: {type(exc).__name__}", "InternalServerError"
            ) from None

    def usage(outputs: list[Generation]) -> dict[str, int]:
        prompt = sum(o.prompt_tokens for o in outputs)
        completion = sum(o.completion_tokens for o in outputs)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        data = []
        for m in models.values():
            card: dict[str, Any] = {
                "id": m.id,
                "object": "model",
                "created": created,
                "owned_by": "rrief",
                "root": m.root,
                "parent": m.parent,
                "max_model_len": max_context,
            }
            if m.rrief is not None:
                card["rrief"] = m.rrief
            data.append(card)
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatCompletionRequest) -> dict[str, Any]:
        model = resolve_model(req.model)
        req.check_supported()
        schema = req.json_schema()
        messages = [{"role": m.role, "content": m.text()} for m in req.messages]
        if messages[-1]["role"] == "assistant":
            raise bad_request("the last message must not be the assistant's", "messages")
        prompt = engine.render_chat(messages)
        max_new = budget(
            req.max_completion_tokens or req.max_tokens, schema, DEFAULT_CHAT_MAX_TOKENS
        )
        (out,) = run([prompt], model, schema, max_new)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model.id,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": out.text},
                    "logprobs": None,
                    "finish_reason": out.finish_reason,
                }
            ],
            "usage": usage([out]),
        }

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> dict[str, Any]:
        model = resolve_model(req.model)
        req.check_supported()
        schema = req.json_schema()
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        if not prompts:
            raise bad_request("prompt must not be an empty list", "prompt")
        max_new = budget(req.max_tokens, schema, DEFAULT_COMPLETION_MAX_TOKENS)
        outputs = run(prompts, model, schema, max_new, "prompt")
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model.id,
            "choices": [
                {"index": i, "text": o.text, "logprobs": None, "finish_reason": o.finish_reason}
                for i, o in enumerate(outputs)
            ],
            "usage": usage(outputs),
        }

    if allow_lora_updating:
        _add_lora_updating(app, engine, batcher, models, served_name)
    return app


class LoadLoraAdapterRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body."""

    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadLoraAdapterRequest(BaseModel):
    """vLLM's ``/v1/unload_lora_adapter`` body (``lora_int_id`` accepted and ignored)."""

    lora_name: str = Field(min_length=1)
    lora_int_id: int | None = None


def _add_lora_updating(
    app: FastAPI, engine: HFEngine, batcher: Batcher, models: dict[str, _Model], served_name: str
) -> None:
    """Runtime adapter loading as vLLM does it: plain-text success, OpenAI-shaped errors (400
    for a name already loaded or an unusable directory, 404 for an unknown name). The engine
    changes while no batch generates (``engine_lock``)."""
    from fastapi.responses import PlainTextResponse

    from extractors.llm.adapters import AdapterError

    @app.post("/v1/load_lora_adapter", response_class=PlainTextResponse)
    def load_lora_adapter(req: LoadLoraAdapterRequest) -> str:
        name = req.lora_name
        if name in models:
            raise bad_request(f"The lora adapter '{name}' has already been loaded.", "lora_name")
        path = Path(req.lora_path).expanduser()
        if not path.is_dir():
            raise bad_request(f"No adapter found at {req.lora_path}.", "lora_path")
        try:
            with batcher.engine_lock:
                engine.load_adapter(name, path)
        except (AdapterError, OSError, ValueError) as exc:
            raise bad_request(f"cannot load the adapter: {exc}", "lora_path") from None
        resolved = Path(engine.adapter_path(name))
        models[name] = _Model(name, str(resolved), served_name, name, _adapter_card(resolved))
        log.info("runtime load of adapter %s", name)
        return f"Success: LoRA adapter '{name}' added successfully."

    @app.post("/v1/unload_lora_adapter", response_class=PlainTextResponse)
    def unload_lora_adapter(req: UnloadLoraAdapterRequest) -> str:
        name = req.lora_name
        if name not in models or models[name].adapter is None:
            raise APIError(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError", "lora_name")  # fmt: skip
        with batcher.engine_lock:
            engine.unload_adapter(name)
        del models[name]
        log.info("runtime unload of adapter %s", name)
        return f"Success: LoRA adapter '{name}' removed successfully."


# -- running it -----------------------------------------------------------------------------------
def is_local_bind(host: str) -> bool:
    """True when ``host`` is loopback or ``localhost`` (reachable from this machine only)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_warning(host: str, has_key: bool) -> str | None:
    """What to warn about when ``host`` is reachable from beyond this machine (None: loopback)."""
    if is_local_bind(host):
        return None
    warning = (
        f"rrief serve listens on {host}, beyond loopback: report text will arrive over the "
        "network; make sure only the hospital network can reach this port"
    )
    if not has_key:
        warning += ", and set RRIEF_LLM_API_KEY (or --api-key) so that only RRIEF can call it"
    return warning


def serve(
    base_model: str | Path,
    adapters: dict[str, str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_name: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    max_batch_size: int = 32,
    batch_window_ms: float = 10.0,
    log_level: str = "info",
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_lora_updating: bool = False,
) -> None:
    """Load the engine and serve it with uvicorn until interrupted."""
    import uvicorn

    from extractors.llm.engine import HFEngine

    engine = HFEngine(base_model, adapters, device=device, dtype=dtype)
    name = served_name or engine.base_model_path.name
    app = create_app(
        engine,
        name,
        max_batch_size=max_batch_size,
        batch_window_ms=batch_window_ms,
        api_key=api_key,
        max_body_bytes=max_body_bytes,
        allow_lora_updating=allow_lora_updating,
    )
    warning = bind_warning(host, bool(api_key))
    if warning:
        log.warning("%s", warning)
    log.info(
        "serving %s with adapters %s on http://%s:%d/v1",
        name,
        ", ".join(engine.adapter_names) or "none",
        host,
        port,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
