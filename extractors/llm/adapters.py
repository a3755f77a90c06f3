"""Adapter metadata (``rrief_adapter.json``), base-model fingerprints and the vLLM compatibility check.

An adapter directory holds what peft saves (``adapter_config.json``, ``adapter_model.safetensors``)
and, beside it, ``rrief_adapter.json``: which schema and prompt template it was trained for,
which base model (by fingerprint), on which data, with which hyperparameters and eval metrics.
Inference refuses an adapter whose schema or base model does not match. This module is light
(no torch): ``rrief adapter check`` runs without loading a model.
"""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

METADATA_FILE = "rrief_adapter.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
METADATA_FORMAT_VERSION = 1

# vLLM accepts --max-lora-rank in {1, 8, 16, 32, 64, 128, 256, 320, 512}; an adapter's r must be
# <= the server's --max-lora-rank. We check against 64 by default (docs/vllm.md serves with
# --max-lora-rank 64: LoRA memory is reserved per slot at the maximum rank, so keep it small);
# VLLM_MAX_SUPPORTED_RANK is the hard ceiling of any vLLM configuration.
DEFAULT_MAX_LORA_RANK = 64
VLLM_MAX_SUPPORTED_RANK = 512

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


class AdapterError(ValueError):
    """An adapter directory is missing, unreadable or does not fit the schema / base model."""


class WeightFile(BaseModel):
    name: str
    size: int


class BaseModelFingerprint(BaseModel):
    """Identity of a base model directory without hashing gigabytes of weights.

    ``sha256`` covers the exact bytes of ``config.json``, of the weights index when there is one,
    and the names and sizes of the weight files: a different architecture, checkpoint layout or
    re-sharded/converted model gives a different value.
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    config_sha256: str
    weights_index_sha256: str | None = None
    weight_files: list[WeightFile] = Field(default_factory=list)


class TrainingDataInfo(BaseModel):
    sha256: str
    size: int
    eval_sha256: str | None = None
    eval_size: int | None = None


class AdapterMetadata(BaseModel):
    """The content of ``rrief_adapter.json``."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = METADATA_FORMAT_VERSION
    rrief_version: str
    created_at: str
    schema_name: str
    schema_version: int
    prompt_template_version: str
    with_evidence: bool = False
    base_model: BaseModelFingerprint
    training_data: TrainingDataInfo
    hyperparameters: dict[str, Any]
    metrics: dict[str, float | int | None] = Field(default_factory=dict)
    adapter_sha256: str = Field(description="sha256 of adapter_model.safetensors")
    train_lm_head_for_tests: bool = Field(
        default=False,
        description="True only for test adapters; such adapters are not vLLM-loadable",
    )

    @property
    def schema_id(self) -> str:
        return f"{self.schema_name}@{self.schema_version}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def base_model_fingerprint(path: str | Path) -> BaseModelFingerprint:
    """Fingerprint the base model directory at ``path`` (see :class:`BaseModelFingerprint`)."""
    root = Path(path).expanduser().resolve()
    config = root / "config.json"
    if not config.is_file():
        raise AdapterError(f"base model directory {root} has no config.json")
    index_sha = None
    for name in _WEIGHT_INDEX_FILES:
        if (root / name).is_file():
            index_sha = sha256_file(root / name)
            break
    weights = sorted(
        (
            WeightFile(name=p.name, size=p.stat().st_size)
            for p in root.iterdir()
            if p.suffix in _WEIGHT_SUFFIXES
        ),
        key=lambda w: w.name,
    )
    config_sha = sha256_file(config)
    payload = json.dumps(
        {"config": config_sha, "index": index_sha, "weights": [w.model_dump() for w in weights]},
        sort_keys=True,
    )
    return BaseModelFingerprint(
        path=str(root),
        sha256=hashlib.sha256(payload.encode()).hexdigest(),
        config_sha256=config_sha,
        weights_index_sha256=index_sha,
        weight_files=weights,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_adapter_metadata(adapter_dir: str | Path, metadata: AdapterMetadata) -> Path:
    path = Path(adapter_dir) / METADATA_FILE
    path.write_text(metadata.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_adapter_metadata(adapter_dir: str | Path) -> AdapterMetadata:
    """Read ``rrief_adapter.json``; :class:`AdapterError` names the file and the problem."""
    path = Path(adapter_dir) / METADATA_FILE
    if not Path(adapter_dir).is_dir():
        raise AdapterError(f"adapter directory {adapter_dir} does not exist")
    if not path.is_file():
        raise AdapterError(f"{path} is missing: not an adapter trained with `rrief train`")
    try:
        return AdapterMetadata.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AdapterError(f"{path} is invalid: {problems}") from None


def adapter_version(adapter_dir: str | Path, metadata: AdapterMetadata | None = None) -> str:
    """``<adapter directory name>@<first 12 hex of the weights sha256>``: the extractor version."""
    meta = metadata or load_adapter_metadata(adapter_dir)
    return f"{Path(adapter_dir).resolve().name}@{meta.adapter_sha256[:12]}"


def verify_base_model(
    metadata: AdapterMetadata, base_model: str | Path, adapter_dir: str | Path
) -> None:
    """Raise :class:`AdapterError` unless ``base_model`` has the fingerprint the adapter was trained on."""
    actual = base_model_fingerprint(base_model)
    if actual.sha256 != metadata.base_model.sha256:
        raise AdapterError(
            f"adapter {adapter_dir} was trained on base model {metadata.base_model.path} "
            f"(fingerprint {metadata.base_model.sha256[:16]}), but the base model given is "
            f"{actual.path} (fingerprint {actual.sha256[:16]}); use the same base model"
        )


def verify_schema(metadata: AdapterMetadata, schema_id: str, adapter_dir: str | Path) -> None:
    """Raise :class:`AdapterError` unless the adapter was trained for schema ``schema_id``."""
    if metadata.schema_id != schema_id:
        raise AdapterError(
            f"adapter {adapter_dir} was trained for schema {metadata.schema_id}, "
            f"but extraction asked for schema {schema_id}"
        )


def _safetensors_keys(path: Path) -> list[str]:
    """Tensor names from a safetensors header (8-byte length + JSON), without loading tensors."""
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > 100_000_000:
            raise ValueError("safetensors header is implausibly large")
        header = json.loads(fh.read(length))
    return [k for k in header if k != "__metadata__"]


def check_adapter(path: str | Path, max_rank: int = DEFAULT_MAX_LORA_RANK) -> list[str]:
    """Problems that would make vLLM (``--enable-lora --max-lora-rank max_rank``) reject the
    adapter at ``path`` or make it unusable by rrief. An empty list means the adapter is fine."""
    root = Path(path)
    if not root.is_dir():
        return [f"{root} is not a directory"]
    problems: list[str] = []
    config_path = root / ADAPTER_CONFIG_FILE
    config: dict[str, Any] = {}
    if not config_path.is_file():
        problems.append(f"{ADAPTER_CONFIG_FILE} is missing (vLLM needs it to load the adapter)")
    else:
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{ADAPTER_CONFIG_FILE} is not valid JSON: {exc}")
    if config:
        if config.get("peft_type", "LORA") != "LORA":
            problems.append(
                f"peft_type is {config.get('peft_type')!r}; vLLM serves only LoRA adapters"
            )
        if config.get("modules_to_save"):
            problems.append(
                f"modules_to_save={config['modules_to_save']!r}: vLLM rejects adapters that save full "
                "modules (e.g. a trained lm_head); train without --unsafe-train-lm-head-for-tests"
            )
        if config.get("bias", "none") != "none":
            problems.append(f"bias={config['bias']!r}: vLLM supports only bias='none'")
        if config.get("use_dora"):
            problems.append("use_dora=true: vLLM does not serve DoRA adapters")
        r = config.get("r")
        if not isinstance(r, int) or r < 1:
            problems.append(f"rank r={r!r} is not a positive integer")
        else:
            if r > VLLM_MAX_SUPPORTED_RANK:
                problems.append(
                    f"rank r={r} exceeds vLLM's largest --max-lora-rank ({VLLM_MAX_SUPPORTED_RANK})"
                )
            elif r > max_rank:
                problems.append(
                    f"rank r={r} exceeds the documented maximum {max_rank} (vLLM --max-lora-rank); "
                    "retrain with a smaller --r or serve with a larger --max-lora-rank"
                )
        for key in ("rank_pattern", "alpha_pattern"):
            if config.get(key):
                problems.append(f"{key} is set: vLLM applies one rank/alpha to all modules")
    weights = root / ADAPTER_WEIGHTS_FILE
    if not weights.is_file():
        problems.append(f"{ADAPTER_WEIGHTS_FILE} is missing")
    else:
        try:
            keys = _safetensors_keys(weights)
        except (OSError, ValueError, struct.error) as exc:
            problems.append(f"{ADAPTER_WEIGHTS_FILE} is not a readable safetensors file: {exc}")
        else:
            full = sorted({k for k in keys if "lora_" not in k})
            if full:
                problems.append(
                    f"{ADAPTER_WEIGHTS_FILE} holds {len(full)} non-LoRA tensors (e.g. {full[0]}); "
                    "vLLM loads only lora_A/lora_B weights"
                )
    try:
        meta = load_adapter_metadata(root)
    except AdapterError as exc:
        problems.append(str(exc))
    else:
        if meta.train_lm_head_for_tests:
            problems.append("trained with the test-only lm_head option: not a production adapter")
    return problems
