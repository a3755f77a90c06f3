"""``rrief models import-gguf``: a local GGUF file becomes a transformers model directory.

Sites often already hold GGUF files (Ollama, llama.cpp and LM Studio keep them). transformers
reads them with the ``gguf`` package (``from_pretrained(dir, gguf_file=name)``) and dequantizes
the weights, but a model loaded that way refuses ``save_pretrained`` (its config carries a
``quantization_config`` naming gguf). So: load it, build a fresh model from the same config
without that entry, copy the dequantized state dict in, and save safetensors plus the tokenizer
(with its chat template). ``rrief_import.json`` beside the weights records where they came from
(source file name, sha256, quantization type) so an adapter's base-model fingerprint can be
traced back to the exact file.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from extractors.llm.adapters import now_iso, sha256_file

log = logging.getLogger("rrief.models")

GGUF_MAGIC = b"GGUF"
PROVENANCE_FILE = "rrief_import.json"


class GGUFImportError(ValueError):
    """The file is missing, not a GGUF, or of an architecture transformers cannot load."""


class ImportProvenance(BaseModel):
    """What ``rrief_import.json`` records about an imported model."""

    source_file: str
    source_sha256: str
    source_bytes: int
    architecture: str
    quantization: str
    imported_at: str
    transformers_version: str
    dtype: str


def check_gguf_file(path: Path) -> None:
    """A readable file that starts with the GGUF magic bytes, or :class:`GGUFImportError`."""
    if not path.exists():
        raise GGUFImportError(f"GGUF file {path} does not exist")
    if not path.is_file():
        raise GGUFImportError(f"{path} is not a file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise GGUFImportError(
            f"{path} is not a GGUF file (it does not start with the bytes 'GGUF'); "
            "pass a .gguf file as written by llama.cpp, Ollama or LM Studio"
        )


def read_gguf_header(path: Path) -> tuple[str, str]:
    """(architecture, quantization type) from the GGUF metadata, e.g. ``("llama", "Q4_1")``."""
    from gguf import GGUFReader, LlamaFileType

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the gguf package raises bare ValueErrors on damaged files
        raise GGUFImportError(f"{path} cannot be read as GGUF: {exc}") from None

    def field(name: str) -> Any:
        f = reader.fields.get(name)
        return None if f is None else f.contents()

    architecture = str(field("general.architecture") or "unknown")
    file_type = field("general.file_type")
    if file_type is not None:
        try:
            quantization = LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            quantization = f"file_type {file_type}"
    else:  # older files: the most common tensor type names it
        types = [t.tensor_type.name for t in reader.tensors]
        quantization = max(set(types), key=types.count) if types else "unknown"
    return architecture, quantization


def supported_architectures() -> set[str]:
    """GGUF architectures this transformers version can load."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return set(GGUF_CONFIG_MAPPING) - {"general", "tokenizer"}  # metadata sections, not models


def import_gguf(source: str | Path, output: str | Path, dtype: str = "float32") -> ImportProvenance:
    """Convert the GGUF file ``source`` into the transformers directory ``output``.

    ``output`` must not exist or be empty. Nothing half-written is left behind: the model is
    saved to a sibling ``.NAME.partial`` directory that is renamed to ``output`` at the end.
    """
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = Path(source).expanduser().resolve()
    output = Path(output).expanduser()
    check_gguf_file(source)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise GGUFImportError(f"output {output} exists and is not an empty directory")
    architecture, quantization = read_gguf_header(source)
    supported = supported_architectures()
    if architecture not in supported:
        raise GGUFImportError(
            f"{source.name}: architecture {architecture!r} cannot be loaded by transformers "
            f"{transformers.__version__} (GGUF architectures it supports: "
            f"{', '.join(sorted(supported))})"
        )
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    folder, name = str(source.parent), source.name
    log.info("loading %s (%s, %s); dequantizing takes a while", name, architecture, quantization)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise GGUFImportError(f"transformers cannot load {name}: {exc}") from None
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch_dtype
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # tied output heads are not separate tensors in the state dict
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise GGUFImportError(
            f"{name}: the dequantized weights do not fit the rebuilt model "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    del loaded
    # written beside OUTPUT and renamed at the end: an interrupted import leaves no half model
    partial = output.parent / f".{output.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    provenance = ImportProvenance(
        source_file=name,
        source_sha256=sha256_file(source),
        source_bytes=source.stat().st_size,
        architecture=architecture,
        quantization=quantization,
        imported_at=now_iso(),
        transformers_version=transformers.__version__,
        dtype=dtype,
    )
    (partial / PROVENANCE_FILE).write_text(
        json.dumps(provenance.model_dump(), indent=2) + "\n", encoding="utf-8"
    )
    if output.exists():
        output.rmdir()  # checked empty above
    partial.rename(output)
    log.info("imported %s to %s", name, output)
    return provenance
