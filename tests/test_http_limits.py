"""The shared request-body limit: 413 from Content-Length before reading, 413 the moment a
chunked body passes the limit (never the framework's 400 for a body it could not read)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from extractors.http_limits import BodyLimit


def app_with_limit(limit: int) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    read: list[int] = []

    @app.post("/echo")
    async def echo(payload: dict) -> dict:  # FastAPI reads and parses the whole body
        read.append(len(str(payload)))
        return {"keys": len(payload)}

    @app.post("/raw")
    async def raw(request: Request) -> dict:
        body = await request.body()
        read.append(len(body))
        return {"bytes": len(body)}

    app.add_middleware(BodyLimit, max_bytes=limit)
    return app, read


@pytest.mark.parametrize("path", ["/echo", "/raw"])
def test_declared_and_chunked_bodies_over_the_limit_get_413(path: str) -> None:
    app, read = app_with_limit(1000)
    with TestClient(app) as client:
        assert client.post(path, json={"a": "x" * 100}).status_code == 200
        declared = client.post(path, content=b"{" + b" " * 5000 + b"}")
        assert declared.status_code == 413 and "limit is 1000" in declared.text

        def chunks() -> Iterator[bytes]:
            yield b'{"a": "'
            for _ in range(50):
                yield b"x" * 100
            yield b'"}'

        chunked = client.post(path, content=chunks())
        assert chunked.status_code == 413, chunked.text
    assert len(read) == 1  # only the small request reached the route
