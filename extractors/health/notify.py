"""Tell people when a task fails — a health alert, a reconciliation difference or a crash:
mail through the Airflow SMTP provider's ``SmtpNotifier`` and/or a JSON POST to a webhook.

The DAG's ``on_failure_callback`` (``extractors.pipeline.tasks.AlertNotifier``) reads the
targets from the settings when a task fails and calls :func:`notify_failure`. The message is
the task's error (alerts carry counts, rates and names only, and no error message of RRIEF
holds report text) cut to :data:`MAX_MESSAGE_CHARS`; the webhook URL is never logged, it may
carry a token.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from extractors.settings import Settings

log = logging.getLogger("rrief.health")

MAX_MESSAGE_CHARS = 4000
WEBHOOK_TIMEOUT_S = 10.0


class NotifyTargets(BaseModel):
    """Who hears about failures: mail recipients (through an Airflow SMTP connection) and a
    webhook. Empty recipients and URL: nobody (the failure is still in Airflow and ops)."""

    model_config = ConfigDict(frozen=True)

    email_to: list[str] = Field(default_factory=list)
    email_from: str | None = None
    smtp_conn_id: str = "smtp_default"
    webhook_url: str = Field(default="", repr=False)

    @classmethod
    def from_settings(cls, s: Settings) -> NotifyTargets:
        """From ``RRIEF_ALERT_EMAIL_TO``/``_EMAIL_FROM``/``_SMTP_CONN_ID``/``_WEBHOOK_URL``."""
        return cls(
            email_to=[a.strip() for a in s.alert_email_to.split(",") if a.strip()],
            email_from=s.alert_email_from or None,
            smtp_conn_id=s.alert_smtp_conn_id,
            webhook_url=s.alert_webhook_url,
        )

    @property
    def empty(self) -> bool:
        return not self.email_to and not self.webhook_url


class FailureMessage(BaseModel):
    """What a notification says: which task of which run failed, and why."""

    dag_id: str | None
    task_id: str | None
    run_id: str | None
    map_index: int | None
    try_number: int | None
    data_interval_start: str | None
    error: str
    log_url: str | None = None

    @property
    def subject(self) -> str:
        task = self.task_id or "?"
        if self.map_index is not None and self.map_index >= 0:
            task = f"{task}[{self.map_index}]"
        day = f" for {self.data_interval_start[:10]}" if self.data_interval_start else ""
        return f"[RRIEF] {self.dag_id or '?'}.{task} failed{day}"

    def html(self) -> str:
        link = (
            f'<p><a href="{escape(self.log_url, quote=True)}">Task log</a></p>'
            if self.log_url
            else ""
        )
        return (
            f"<h3>{escape(self.subject)}</h3>"
            f"<p>run {escape(self.run_id or '?')}, try {self.try_number or '?'}</p>"
            f"<pre>{escape(self.error)}</pre>{link}"
            "<p>Stored alerts: ops.alerts and the RRIEF health page (Browse menu).</p>"
        )


def failure_message(context: Mapping[str, Any]) -> FailureMessage:
    """The message of an Airflow failure-callback context."""
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    error = f"{type(exc).__name__}: {exc}" if exc is not None else "task failed (no exception)"
    if len(error) > MAX_MESSAGE_CHARS:
        error = error[:MAX_MESSAGE_CHARS] + f"… ({len(error)} characters)"
    start = context.get("data_interval_start")
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    log_url = getattr(ti, "log_url", None)
    return FailureMessage(
        dag_id=getattr(ti, "dag_id", None),
        task_id=getattr(ti, "task_id", None),
        run_id=str(context["run_id"]) if context.get("run_id") is not None else None,
        map_index=map_index if isinstance(map_index, int) else None,
        try_number=try_number if isinstance(try_number, int) else None,
        data_interval_start=start.isoformat() if hasattr(start, "isoformat") else None,
        error=error,
        log_url=log_url if isinstance(log_url, str) else None,
    )


def send_mail(context: Mapping[str, Any], message: FailureMessage, targets: NotifyTargets) -> None:
    """Mail ``message`` with the SMTP provider's notifier (server and login: the connection)."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(
        to=targets.email_to,
        from_email=targets.email_from,
        subject=message.subject,
        html_content=message.html(),
        smtp_conn_id=targets.smtp_conn_id,
    ).notify(context)  # type: ignore[arg-type]


def post_webhook(message: FailureMessage, url: str, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``message`` as JSON (``{"subject", "text", ...}``); raise on a non-2xx answer."""
    payload = {"source": "rrief", "subject": message.subject, "text": message.error}
    payload |= message.model_dump(exclude={"error"})
    response = httpx.post(url, json=payload, timeout=timeout_s, follow_redirects=False)
    response.raise_for_status()


def notify_failure(context: Mapping[str, Any], targets: NotifyTargets) -> list[str]:
    """Send the failure of ``context`` to every target; returns the channels that worked.

    Never raises: a callback that fails would hide the task's own error, so problems are
    logged (without the webhook URL) and the other channel is still tried.
    """
    if targets.empty:
        return []
    message = failure_message(context)
    sent: list[str] = []
    if targets.email_to:
        try:
            send_mail(context, message, targets)
            sent.append("email")
        except Exception as exc:
            log.error("alert mail via connection %r failed: %r", targets.smtp_conn_id, exc)
    if targets.webhook_url:
        host = urlsplit(targets.webhook_url).hostname or "?"
        try:
            post_webhook(message, targets.webhook_url)
            sent.append("webhook")
        except Exception as exc:
            log.error("alert webhook to host %s failed: %s", host, type(exc).__name__)
    if sent:
        log.info("failure of %s sent by %s", message.subject, " and ".join(sent))
    return sent
