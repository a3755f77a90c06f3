"""Skip a test for a missing system tool on a developer's machine, but fail it in CI.

CI (``CI=true``, as ``.ci/run`` runs) installs the tools, so a skip there would hide a check
that never ran; elsewhere the skip message says how to install the tool.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_unless_ci(message: str) -> None:
    """``pytest.skip(message)`` outside CI, ``pytest.fail(message)`` in CI."""
    if in_ci():
        pytest.fail(f"CI must run this check: {message}")
    pytest.skip(message)
