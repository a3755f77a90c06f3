"""Logging set-up for the CLI: one ``rrief`` logger on stderr at the configured level."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    """Send ``rrief.*`` logs to stderr with timestamps. Report text is never logged by design."""
    logger = logging.getLogger("rrief")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
