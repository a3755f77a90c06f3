"""The README documents what the code reads: every setting and every CLI command."""

from __future__ import annotations

from pathlib import Path

from extractors.cli import cli
from extractors.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented() -> None:
    missing = [f"RRIEF_{name.upper()}" for name in Settings.model_fields]
    missing = [var for var in missing if f"`{var}`" not in README]
    assert not missing, f"README lacks settings: {missing}"


def test_every_command_is_shown() -> None:
    missing = [name for name in cli.commands if f"rrief {name}" not in README]
    assert not missing, f"README shows no example of: {missing}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    assert "make demo" in setup and "make test" in setup
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
