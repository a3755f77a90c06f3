"""Training a candidate adapter for the ``rrief_train`` DAG: the one place the lifecycle calls the
LLM training code, so a change of the trainer's interface touches only :func:`train_candidate`.

The output directory is named by the snapshot and the hyperparameters
(``<schema>-<snapshot sha256[:8]>-<hyperparameters sha256[:8]>``): a retried task finds the
adapter it already trained and reuses it; a half-written directory (killed mid-save) is removed
and trained again, resuming from the trainer's last per-epoch checkpoint when there is one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from extractors.llm.adapters import METADATA_FILE, AdapterError, check_adapter
from extractors.schemas import SchemaSpec

log = logging.getLogger("rrief.lifecycle")


def candidate_dir(
    adapters_dir: Path, schema: SchemaSpec, snapshot_sha256: str, hyperparameters: dict[str, Any]
) -> Path:
    """Where the candidate for this snapshot and these hyperparameters is written."""
    hp = hashlib.sha256(json.dumps(hyperparameters, sort_keys=True).encode()).hexdigest()
    return adapters_dir / f"{schema.name}-{snapshot_sha256[:8]}-{hp[:8]}"


def _complete(output: Path) -> bool:
    problems = check_adapter(output)
    missing = [p for p in problems if "missing" in p or "not a directory" in p]
    return (output / METADATA_FILE).is_file() and not missing


def train_candidate(
    schema: SchemaSpec,
    base_model: Path,
    train_path: Path,
    output: Path,
    hyperparameters: dict[str, Any],
    progress: bool = False,
) -> Path:
    """Train (or find) the LoRA adapter for ``schema`` on the gold snapshot ``train_path``.

    ``hyperparameters`` are :class:`extractors.llm.training.TrainConfig` fields; unknown ones are
    an error naming them (the trainer's own validation).
    """
    from pydantic import ValidationError

    from extractors.llm.training import (
        TrainConfig,
        TrainingError,
        checkpoint_dir,
        last_checkpoint,
        train_adapter,
    )

    if output.exists():
        if _complete(output):
            log.info("adapter %s was trained already (a retried task): reused", output)
            return output
        log.warning("removing the incomplete adapter directory %s (an interrupted run)", output)
        shutil.rmtree(output)
    try:
        config = TrainConfig(**hyperparameters)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TrainingError(f"bad hyperparameters: {problems}") from None
    try:
        checkpoints = checkpoint_dir(output)  # same snapshot and hyperparameters (the name)
        resume = last_checkpoint(checkpoints) is not None
        if resume:
            log.info("resuming the training of %s from its last checkpoint", output.name)
        elif checkpoints.exists():
            shutil.rmtree(checkpoints)  # killed before its first checkpoint: nothing to keep
        result = train_adapter(
            schema, base_model, train_path, output, config=config, progress=progress, resume=resume
        )
    except BaseException:
        shutil.rmtree(output, ignore_errors=True)  # never leave a half-written candidate
        raise
    if not (result.output / METADATA_FILE).is_file():
        raise AdapterError(f"training wrote no {METADATA_FILE} to {result.output}")
    return Path(result.output)
