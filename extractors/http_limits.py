"""The request-body limit of RRIEF's HTTP apps (``rrief serve``, the annotation workbench).

:class:`BodyLimit` is ASGI middleware: a body declared larger than ``max_bytes``
(``Content-Length``) is answered 413 before any of it is read; a chunked body is counted as it
arrives and answered 413 the moment it passes the limit. The app's own answer to the cut-off
request (frameworks turn a failed body read into a 400) is then dropped, so the client always
sees the 413. Apps shape the answer by overriding :meth:`BodyLimit.response`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


class _TooLarge(Exception):
    pass


async def send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """One complete HTTP response with ``headers`` and a ``content-length``."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over ``max_bytes``, decided before reading past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def response(self, declared: str | None) -> tuple[bytes, Headers]:
        """Body and headers of the 413 (``declared``: the Content-Length, None if chunked)."""
        size = f"{declared} bytes" if declared is not None else "more bytes"
        text = f"the request body has {size}; the limit is {self.max_bytes}"
        return text.encode(), [(b"content-type", b"text/plain; charset=utf-8")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await send_response(send, 413, *self.response(declared.decode("latin-1")))
            return
        received = 0
        started = refused = False

        async def counted() -> Any:
            nonlocal received, started, refused
            message = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    if not started:
                        started = True
                        await send_response(send, 413, *self.response(None))
                    raise _TooLarge
            return message

        async def tracked(message: Any) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out: the app's answer to the cut-off body is dropped
            started = started or message.get("type") == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):  # the 413 is out; the app stopped reading
            await self.app(scope, counted, tracked)
