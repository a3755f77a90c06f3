"""ASGI guards of the workbench: a request-body size limit and the security headers of every
response (no external resources, no framing, no caching of pages with report text)."""

from __future__ import annotations

from typing import Any

from extractors.http_limits import BodyLimit, Headers

ASGIApp = Any
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class BodySizeLimit(BodyLimit):
    """:class:`extractors.http_limits.BodyLimit` with the workbench's text and headers."""

    def response(self, declared: str | None) -> tuple[bytes, Headers]:
        text = (
            f"request body over the limit of {self.max_bytes} bytes (RRIEF_ANNOTATE_MAX_BODY_BYTES)"
        )
        return text.encode(), [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
