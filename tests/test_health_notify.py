"""The failure notifier's message and its failure modes (the mail and webhook themselves are
received by real local sinks in tests/test_dag.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from extractors.health.notify import (
    MAX_MESSAGE_CHARS,
    NotifyTargets,
    failure_message,
    notify_failure,
)
from extractors.settings import Settings


def context(error: Exception) -> dict[str, object]:
    ti = SimpleNamespace(dag_id="rrief_daily", task_id="extract", map_index=3, try_number=2)
    return {
        "ti": ti,
        "run_id": "scheduled__2025-03-04T02:00:00+00:00",
        "exception": error,
        "data_interval_start": datetime(2025, 3, 4, 2, tzinfo=UTC),
    }


def test_targets_from_settings() -> None:
    targets = NotifyTargets.from_settings(
        Settings(alert_email_to=" a@x.example, ,b@x.example", alert_webhook_url="http://h/k")
    )
    assert targets.email_to == ["a@x.example", "b@x.example"] and targets.email_from is None
    assert targets.smtp_conn_id == "smtp_default" and not targets.empty
    assert "http://h/k" not in repr(targets)  # the URL may hold a token
    assert NotifyTargets.from_settings(Settings()).empty


def test_message_names_the_task_and_bounds_the_error() -> None:
    message = failure_message(context(RuntimeError("x" * (MAX_MESSAGE_CHARS + 50))))
    assert message.subject == "[RRIEF] rrief_daily.extract[3] failed for 2025-03-04"
    assert message.try_number == 2 and len(message.error) < MAX_MESSAGE_CHARS + 40
    assert message.error.startswith("RuntimeError: xxx") and message.error.endswith("characters)")
    assert "<script>" not in failure_message(context(ValueError("<script>"))).html()


def test_unreachable_targets_are_logged_never_raised(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    targets = NotifyTargets(
        email_to=["a@x.example"],
        smtp_conn_id="rrief_no_such_connection",
        webhook_url="http://127.0.0.1:9/hook?token=very-secret-token",
    )
    assert notify_failure(context(RuntimeError("boom")), targets) == []
    # pytest's handler or, once Airflow configured logging, the process streams get the lines
    logged = caplog.text + "".join(capfd.readouterr())
    assert "alert mail via connection 'rrief_no_such_connection' failed" in logged
    assert "alert webhook to host 127.0.0.1 failed" in logged
    assert "very-secret-token" not in logged
    assert notify_failure(context(RuntimeError("boom")), NotifyTargets()) == []
