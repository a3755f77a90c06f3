"""``--backend openai``: extraction through an OpenAI-compatible server (vLLM, ``rrief serve``).

The adapter is chosen by ``model=<adapter name>``; the output is constrained with
``response_format={"type": "json_schema", ...}`` (what vLLM >= 0.12 accepts; the old
``guided_json`` is gone), decoding is greedy (``temperature=0``) and the token limit
(``max_completion_tokens`` for chat, ``max_tokens`` for completions) is the schema's longest
possible answer. Each answer is parsed and validated by the schema.

How it talks to the server:

* **Egress guard first.** :func:`extractors.llm.egress.check_endpoint` refuses a non-private
  endpoint before any connection is opened, and the client's transport connects only to the
  addresses it checked (no second DNS lookup). Proxies from the environment are ignored
  (``trust_env=False``) and redirects are not followed, so nothing is routed elsewhere.
  Credentials in the URL (``http://user:password@host/v1``) are sent as basic auth and never
  shown; ``api_key`` (``RRIEF_LLM_API_KEY``) is the preferred way.
* **One adapter per extractor**, so all requests of a run are grouped per adapter and all start
  with the same fixed instruction message (``prompts.build_messages``): vLLM's prefix cache
  reuses it across reports. Reports are sent in input order.
* **Bounded concurrency** (``max_concurrency``, default 8 requests in flight), a per-request
  ``timeout`` (default 120 s), and up to ``max_retries`` (default 3) retries with exponential
  backoff and jitter on connection errors, timeouts, 429 and 5xx (``Retry-After`` honoured).
  Other 4xx answers are not retried: they become the report's error message.
* **Invalid output** (not JSON, not schema-valid, or cut off at ``max_tokens``) is asked once
  more; still invalid, it becomes an error line with the raw output kept in ``raw_output``
  (never logged).
* At start-up it reads ``GET /v1/models``: an unknown adapter name is refused with the list of
  served models; for adapters served by ``rrief serve`` the schema and prompt template version
  recorded at training time must match. The extractor version is the adapter's version string
  from ``rrief serve`` (``dir@sha12``, as the hf backend reports it) or, for vLLM,
  ``<adapter>@<parent model>``.

Options (``rrief extract --option KEY=VALUE``, strings are coerced): ``max_concurrency``,
``timeout``, ``max_retries``, ``backoff`` (base seconds), ``max_tokens``, ``api`` (``chat`` or
``completions``: the latter renders the prompt with the plain template, for base models without
a chat template), ``api_key`` (sent as a bearer token), ``check_model`` (default true),
``constrained`` (default true; false sends the first request without ``response_format`` to see
what the adapter writes on its own, and the retry constrained, as the hf backend does).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from extractors.extract.base import EvidenceMap, ExtractionError, Extractor, Labels
from extractors.extract.registry import BackendError
from extractors.llm.egress import (
    Resolver,
    check_endpoint,
    pinned_transport,
    resolve_host,
    url_credentials,
)
from extractors.llm.json_bounds import UnboundedSchemaError, max_new_tokens_for_schema
from extractors.llm.prompts import (
    ADAPTER_FORMAT,
    PROMPT_TEMPLATE_VERSIONS,
    PromptFormat,
    adapter_format,
    answer_json_schema,
    build_messages,
    parse_answer,
    render_prompt,
)
from extractors.results import ReportInput
from extractors.schemas import LabelValidationError, SchemaSpec

log = logging.getLogger("rrief.llm")

FALLBACK_MAX_TOKENS = 1024  # schemas with free-text fields have no length bound
MAX_BACKOFF_S = 30.0
_RETRY_STATUS = {408, 429}


class OpenAIOptions(BaseModel):
    """Backend options; values arrive as strings from the CLI and are coerced here."""

    model_config = ConfigDict(extra="forbid")

    max_concurrency: int = Field(default=8, ge=1, le=512)
    timeout: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    backoff: float = Field(default=0.5, ge=0, description="first retry waits about this (s)")
    max_tokens: int | None = Field(default=None, ge=1)
    api: Literal["chat", "completions"] = "chat"
    api_key: str | None = Field(default=None, repr=False)
    allowed_hosts: list[str] = Field(
        default_factory=list, description="non-private hosts the egress guard lets through"
    )
    check_model: bool = True
    constrained: bool = True


class _InvalidOutput(Exception):
    """The model's answer is not usable labels (the message says why)."""


def normalize_endpoint(endpoint: str) -> str:
    """Base URL ending in ``/v1`` (``http://host:8000`` and ``http://host:8000/v1/`` both work)."""
    url = endpoint.strip().rstrip("/")
    if not url.split("://", 1)[-1].count("/"):
        url += "/v1"
    return url


def _error_message(response: httpx.Response, limit: int = 300) -> str:
    """The server's error message from OpenAI (``{"error": {...}}``) or older vLLM JSON shapes.

    Cut to ``limit`` characters: it goes into the output line's ``error`` field (never into
    logs), and a server might echo part of the request in it.
    """
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason_phrase)[:limit]
    message = str(body)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            message = str(err["message"])
        elif isinstance(err, str):
            message = err
        elif "detail" in body:
            message = str(body["detail"])
    return message if len(message) <= limit else message[: limit - 3] + "..."


class OpenAIExtractor(Extractor):
    """Extraction through an OpenAI-compatible server with one LoRA adapter (see module doc)."""

    backend = "openai"

    def __init__(
        self,
        schema: SchemaSpec,
        endpoint: str,
        adapter: str,
        options: OpenAIOptions,
        resolve: Resolver = resolve_host,
    ) -> None:
        super().__init__(schema)
        # before anything touches the network; the transport connects only where it looked
        checked = check_endpoint(endpoint, options.allowed_hosts, resolve)
        bare, credentials = url_credentials(endpoint)
        if credentials is not None:
            log.warning(
                "the endpoint URL carries credentials: sent as HTTP basic auth and kept out of "
                "logs and messages; prefer RRIEF_LLM_API_KEY (a bearer key, as vLLM's --api-key)"
            )
        self.endpoint = normalize_endpoint(bare)  # what every message shows: no userinfo
        self.adapter = adapter
        self.options = options
        self._set_format(ADAPTER_FORMAT)
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        connect = min(10.0, options.timeout)
        limits = httpx.Limits(
            max_connections=options.max_concurrency,
            max_keepalive_connections=options.max_concurrency,
        )
        self._client = httpx.Client(
            base_url=self.endpoint + "/",
            headers=headers,
            auth=httpx.BasicAuth(*credentials) if credentials else None,
            timeout=httpx.Timeout(options.timeout, connect=connect),
            transport=pinned_transport(checked, limits),  # the checked addresses, no others
            trust_env=False,  # no proxies from the environment: straight to the checked host
            follow_redirects=False,  # a redirect could point outside; the guard checked this host
        )
        self._version = adapter
        if options.check_model:
            self._check_model()

    def _set_format(self, fmt: PromptFormat) -> None:
        """Prompt format, answer schema (sparse for template 2) and the token limit that follows."""
        self.fmt = fmt
        self.json_schema = answer_json_schema(self.schema, fmt)
        if self.options.max_tokens is not None:
            self.max_tokens = self.options.max_tokens
        else:
            try:
                self.max_tokens = max_new_tokens_for_schema(self.json_schema)
            except UnboundedSchemaError:
                self.max_tokens = FALLBACK_MAX_TOKENS

    # -- identity ---------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    def close(self) -> None:
        self._client.close()

    def _check_model(self) -> None:
        """Refuse an adapter the server does not serve or that was trained for something else."""
        try:
            response = self._client.get("models")
        except httpx.HTTPError as exc:
            raise BackendError(
                f"cannot reach the openai endpoint {self.endpoint}: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code == 404:
            log.info("%s has no /models listing; not checking the adapter name", self.endpoint)
            return
        if response.status_code in (401, 403):
            raise BackendError(
                f"{self.endpoint} refused to list its models (HTTP {response.status_code}: "
                f"{_error_message(response)}); set RRIEF_LLM_API_KEY if it needs a key"
            )
        if response.status_code != 200:
            raise BackendError(
                f"{self.endpoint}/models answered HTTP {response.status_code}: "
                f"{_error_message(response)}"
            )
        try:
            cards = [c for c in response.json()["data"] if isinstance(c, dict) and "id" in c]
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"{self.endpoint}/models did not return a model list") from None
        card = next((c for c in cards if c["id"] == self.adapter), None)
        if card is None:
            served = ", ".join(str(c["id"]) for c in cards) or "none"
            raise BackendError(
                f"model {self.adapter!r} is not served by {self.endpoint}; it serves: {served}"
            )
        meta = card.get("rrief")
        if isinstance(meta, dict):
            trained_for = meta.get("schema")
            if trained_for and trained_for != self.schema.id:
                raise BackendError(
                    f"adapter {self.adapter!r} at {self.endpoint} was trained for schema "
                    f"{trained_for}, but extraction asked for schema {self.schema.id}"
                )
            template = meta.get("prompt_template_version")
            if template and str(template) not in PROMPT_TEMPLATE_VERSIONS:
                raise BackendError(
                    f"adapter {self.adapter!r} was trained with prompt template version "
                    f"{template}; this rrief knows {', '.join(PROMPT_TEMPLATE_VERSIONS)}"
                )
            if template:  # answer the way the adapter was trained (sparse since version 2)
                self._set_format(adapter_format(str(template)))
            if meta.get("version"):
                self._version = str(meta["version"])
                return
        if card.get("parent"):
            self._version = f"{self.adapter}@{card['parent']}"

    # -- extraction -------------------------------------------------------------------------
    def extract_many(
        self, reports: Sequence[ReportInput]
    ) -> list[tuple[Labels, EvidenceMap] | Exception]:
        """All reports of the batch concurrently (at most ``max_concurrency`` in flight)."""
        if not reports:
            return []
        workers = min(self.options.max_concurrency, len(reports))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rrief-openai") as pool:
            return list(pool.map(self._extract_safely, reports))

    def _extract_safely(self, report: ReportInput) -> tuple[Labels, EvidenceMap] | Exception:
        try:
            return self.extract_labels(report)
        except Exception as exc:
            return exc

    def extract_labels(self, report: ReportInput) -> tuple[Labels, EvidenceMap]:
        """Ask the server; one more try on invalid output, then an error with the raw output."""
        problem, raw = "", ""
        for attempt in range(2):
            constrained = self.options.constrained or attempt > 0
            raw, finish_reason = self._complete(report.text, constrained)
            try:
                return self._parse(raw, finish_reason), {}
            except _InvalidOutput as exc:
                problem = str(exc)
        raise ExtractionError(f"invalid model output after 2 attempts: {problem}", raw_output=raw)

    def _parse(self, text: str, finish_reason: str | None) -> Labels:
        if finish_reason == "length":
            raise _InvalidOutput(f"the answer was cut off at max_tokens={self.max_tokens}")
        try:
            return parse_answer(self.schema, text, self.fmt)
        except json.JSONDecodeError as exc:
            raise _InvalidOutput(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
        except LabelValidationError as exc:
            raise _InvalidOutput(f"does not match the schema: {exc}") from None

    def _complete(self, report_text: str, constrained: bool = True) -> tuple[str, str | None]:
        """One completion for one report: (text, finish_reason)."""
        messages = build_messages(self.schema, report_text, self.fmt)
        body: dict[str, Any] = {"model": self.adapter, "temperature": 0}
        # Chat completions deprecated ``max_tokens`` for ``max_completion_tokens`` (vLLM and
        # ``rrief serve`` accept both); the legacy completions API only knows ``max_tokens``.
        limit = "max_completion_tokens" if self.options.api == "chat" else "max_tokens"
        body[limit] = self.max_tokens
        if constrained:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": f"{self.schema.name}_v{self.schema.version}_labels",
                    "schema": self.json_schema,
                    "strict": True,
                },
            }
        if self.options.api == "chat":
            body["messages"] = messages
            data = self._post("chat/completions", body)
        else:
            body["prompt"] = render_prompt(None, messages)
            data = self._post("completions", body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if self.options.api == "chat" else choice["text"]
            finish = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError):
            raise ExtractionError(
                f"{self.endpoint} returned a response without choices[0] text"
            ) from None
        if not isinstance(text, str):
            raise ExtractionError(f"{self.endpoint} returned no text content")
        return text, finish

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries on connection errors, timeouts, 408/429 and 5xx."""
        attempts = self.options.max_retries + 1
        last, short = "", ""  # `short` (status or exception type only) is what gets logged
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as exc:
                last, short = f"{type(exc).__name__}: {exc}", type(exc).__name__
            else:
                code = response.status_code
                if code == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        raise ExtractionError(f"{self.endpoint} returned invalid JSON") from None
                    if not isinstance(data, dict):
                        raise ExtractionError(f"{self.endpoint} returned an unexpected response")
                    return data
                message = _error_message(response)
                if code not in _RETRY_STATUS and code < 500:
                    raise ExtractionError(
                        f"{self.endpoint} refused the request (HTTP {code}): {message}"
                    )
                last, short = f"HTTP {code}: {message}", f"HTTP {code}"
                retry_after = _retry_after(response)
            if attempt + 1 < attempts:
                delay = self.options.backoff * (2**attempt) * (1 + random.random())
                if retry_after is not None:
                    delay = max(delay, retry_after)
                log.info(
                    "request to %s failed (%s); retry %d in %.2fs",
                    self.endpoint,
                    short,
                    attempt + 1,
                    delay,
                )
                time.sleep(min(delay, MAX_BACKOFF_S))
        raise ExtractionError(
            f"request to {self.endpoint} failed after {attempts} attempts: {last}"
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def make_openai_extractor(
    schema: SchemaSpec,
    endpoint: str | None = None,
    adapter: str | None = None,
    **options: Any,
) -> OpenAIExtractor:
    """Factory for the registry: ``endpoint`` (base URL) and ``adapter`` (served model name)."""
    if not endpoint:
        raise BackendError(
            "the openai backend needs --endpoint URL (e.g. http://127.0.0.1:8000/v1)"
        )
    if not adapter:
        raise BackendError(
            "the openai backend needs --adapter NAME (the served adapter's model name)"
        )
    if options.get("base_model"):
        raise BackendError(
            "--base-model is not used by the openai backend: the server holds the base model"
        )
    options.pop("base_model", None)
    try:
        parsed = OpenAIOptions.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        known = ", ".join(OpenAIOptions.model_fields)
        raise BackendError(f"bad openai backend option(s): {problems} (options: {known})") from None
    return OpenAIExtractor(schema, endpoint, adapter, parsed)
