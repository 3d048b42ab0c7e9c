"""BodyLimit: which limit a path gets, and a streamed route left to its own limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request

from shared.inputs import BodyLimit


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/{path:path}")
    async def count(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"read": size}

    limits = {"/v1/bulk": 1_000, "/v1/bulk/small": 10, "/v1/stream/": None}
    app.add_middleware(BodyLimit, default=100, limits=limits)
    return app


async def _post(path: str, size: int, *, declared: bool) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            yield b"x" * min(left, 64)
            left -= 64

    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.post(path, content=b"x" * size if declared else chunks())


def test_the_longest_matching_prefix_sets_the_limit() -> None:
    limiter = BodyLimit(_app(), default=100, limits={"/a": 5, "/a/b": 7, "/s/": None})
    assert limiter.limit_for("/a/b/c") == 7
    assert limiter.limit_for("/a/x") == 5
    assert limiter.limit_for("/s/feed") is None
    assert limiter.limit_for("/elsewhere") == 100


async def test_limits_hold_declared_and_chunked_and_a_streamed_route_is_left_alone() -> None:
    for declared in (True, False):
        assert (await _post("/v1/other", 100, declared=declared)).json() == {"read": 100}
        assert (await _post("/v1/other", 101, declared=declared)).status_code == 413
        assert (await _post("/v1/bulk/x", 1_000, declared=declared)).status_code == 200
        assert (await _post("/v1/bulk/small", 11, declared=declared)).status_code == 413
        streamed = await _post("/v1/stream/feed", 100_000, declared=declared)
        assert streamed.json() == {"read": 100_000}
    refused = await _post("/v1/other", 101, declared=False)
    assert refused.json() == {"detail": "body: exceeds the limit of 100"}
