"""The ``rrief serve`` click command (attached by ``extractors.llm.commands.register``).

Kept apart from the server so the CLI stays light: torch, transformers and FastAPI are imported
only when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from extractors.llm.server_guard import DEFAULT_MAX_BODY_BYTES


def parse_adapters(pairs: tuple[str, ...]) -> dict[str, Path]:
    """``NAME=PATH`` pairs (as vLLM's ``--lora-modules``) to a name -> directory mapping."""
    adapters: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise click.BadParameter(f"{pair!r} is not NAME=PATH", param_hint="--adapter")
        if name in adapters:
            raise click.BadParameter(f"adapter name {name!r} given twice", param_hint="--adapter")
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise click.BadParameter(f"{directory} is not a directory", param_hint="--adapter")
        adapters[name] = directory
    return adapters


@click.command("serve")
@click.option(
    "--base-model",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Local directory of the base model (never downloaded).",
)
@click.option(
    "--adapter",
    "adapter_pairs",
    multiple=True,
    metavar="NAME=PATH",
    help="A LoRA adapter to serve as model NAME (repeatable), like vLLM's --lora-modules.",
)
@click.option(
    "--served-model-name",
    default=None,
    help="Name of the base model in /v1/models (default: the base model directory's name).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available).")
@click.option("--dtype", default=None, help="auto, float32, bfloat16, float16 (default: auto).")
@click.option(
    "--max-batch-size",
    default=32,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Most requests generated together in one batch.",
)
@click.option(
    "--api-key",
    default=None,
    help="Require 'Authorization: Bearer KEY' on /v1 (as vLLM's --api-key). "
    "Default: RRIEF_LLM_API_KEY; prefer the variable (a command line is visible to others).",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(1024),
    help="Refuse larger request bodies (413) before reading them.",
)
@click.option(
    "--batch-window-ms",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0, 10_000),
    help="How long the first waiting request waits for companions to batch with.",
)
@click.option(
    "--allow-runtime-lora-updating",
    "allow_lora_updating",
    is_flag=True,
    help="Add POST /v1/load_lora_adapter and /v1/unload_lora_adapter, as vLLM does with "
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True (a new adapter without a restart; use with --api-key "
    "off loopback).",
)
def serve(
    base_model: Path,
    adapter_pairs: tuple[str, ...],
    served_model_name: str | None,
    host: str,
    port: int,
    device: str | None,
    dtype: str | None,
    max_batch_size: int,
    api_key: str | None,
    max_body_bytes: int,
    batch_window_ms: float,
    allow_lora_updating: bool,
) -> None:
    """Serve a base model and its LoRA adapters over an OpenAI-compatible HTTP API.

    Clients pick an adapter with "model": NAME (the base model's name: no adapter). Point
    `rrief extract --backend openai --endpoint http://HOST:PORT/v1 --adapter NAME` at it.
    Binds 127.0.0.1 by default (another address is warned about); report text is never logged.
    """
    from extractors.settings import get_settings

    adapters = parse_adapters(adapter_pairs)
    key = api_key or get_settings().llm_api_key or None
    from extractors.llm.adapters import AdapterError
    from extractors.llm.server import serve as run_server

    try:
        run_server(
            base_model,
            dict(adapters),
            host=host,
            port=port,
            served_name=served_model_name,
            device=device,
            dtype=dtype,
            max_batch_size=max_batch_size,
            batch_window_ms=batch_window_ms,
            api_key=key,
            max_body_bytes=max_body_bytes,
            allow_lora_updating=allow_lora_updating,
        )
    except (AdapterError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
