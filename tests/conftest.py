"""Shared pytest fixtures: a tiny local base model and a small adapter trained on it.

Both are built once per session (no downloads: see ``tests/tiny_llm.py``). Tests that use
``tiny_adapter`` pay for a short LoRA training run and are marked ``slow``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.tiny_llm import TRAIN_CXR, build_tiny_llama

# Real-PostgreSQL fixtures (a throwaway database per session): see tests/pg.py.
pytest_plugins = ["tests.conftest_pg"]

# Word every report text of the RIS fixtures (tests/fixtures/hl7/variants, tests/fixtures/fhir)
# contains; `no_report_text_logged` fails a test if it shows up in any log record or stream.
TEXT_MARKER = "MARKER"


@pytest.fixture
def no_report_text_logged(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Capture every log record (any level, any logger) and the test's stdout/stderr, and fail
    if report text (the TEXT_MARKER word) reached any of them."""
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capsys.readouterr()
    records = caplog.get_records("setup") + caplog.get_records("call")  # not .records: that
    # is the teardown phase's list here
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in records)
    for where, content in (("a log record", logged), ("stdout", out), ("stderr", err)):
        assert TEXT_MARKER not in content, f"report text reached {where}"


# Property and fuzz tests: in the suite a short budget, derandomized (the same examples on every
# run, no example database); `make fuzz` (HYPOTHESIS_PROFILE=fuzz) many more, fresh seeds. No
# deadline: speed is measured in bench/, never asserted.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=_QUIET,
)
settings.register_profile("fuzz", max_examples=3000, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a random-weight tiny base model with a chat template."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def tiny_base_model_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same kind of model without a chat template (the plain prompt fallback)."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-base-plain"), chat_template=False)


@pytest.fixture(scope="session")
def tiny_train_file() -> Path:
    """20 short CXR reports with full cxr@1 labels (written for these tests)."""
    return TRAIN_CXR


@pytest.fixture(scope="session")
def tiny_training(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """A ``TrainResult``: a cxr adapter trained on the 20 reports until it memorises them.

    Uses the test-only output-head option: a random base cannot learn otherwise.
    """
    import torch

    from extractors.llm.training import train_adapter
    from extractors.schemas import get_schema
    from tests.tiny_llm import tiny_train_config

    torch.set_num_threads(2)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("adapters") / "cxr-tiny"
    return train_adapter(
        get_schema("cxr"),
        tiny_base_model,
        TRAIN_CXR,
        out,
        config=tiny_train_config(),
        progress=False,
    )


@pytest.fixture(scope="session")
def tiny_adapter(tiny_training) -> Path:
    """Directory of the trained cxr adapter (``tiny_training``'s output)."""
    return Path(tiny_training.output)
