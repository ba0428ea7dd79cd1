"""Bodies over a limit are refused whether or not their length is declared.

Both sides go over a real socket: requests to a gcx API (``read_body``) and
answers to a call gcx makes (``read_capped``), each with a Content-Length
and with chunked encoding that declares nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gcx.errors import BackendAnswerTooLarge
from gcx.gateway.services.common import read_capped
from gcx.httpapi import error_middleware, read_body

LIMIT = 1000


async def chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 100):
        yield b"x" * 100


async def echo_length(request: web.Request) -> web.Response:
    return web.json_response({"length": len(await read_body(request, LIMIT))})


async def answer(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    if request.query.get("chunked"):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in chunks(size):
            await response.write(chunk)
        await response.write_eof()
        return response
    return web.Response(body=b"x" * size)


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/echo", echo_length)
    app.router.add_get("/answer", answer)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.mark.parametrize("chunked", [False, True])
async def test_request_at_the_limit_is_read_whole(
    client: TestClient[web.Request, web.Application], chunked: bool
) -> None:
    data = chunks(LIMIT) if chunked else b"x" * LIMIT
    response = await client.post("/echo", data=data)
    assert response.status == 200
    assert await response.json() == {"length": LIMIT}


@pytest.mark.parametrize("chunked", [False, True])
async def test_request_over_the_limit_is_refused(
    client: TestClient[web.Request, web.Application], chunked: bool
) -> None:
    data = chunks(LIMIT + 100) if chunked else b"x" * (LIMIT + 1)
    response = await client.post("/echo", data=data)
    assert response.status == 413
    body = await response.json()
    assert body["code"] == "body-too-large"
    assert f"limit of {LIMIT} bytes" in body["message"]
    assert response.headers["X-Gcx-Error"] == "body-too-large"


@pytest.mark.parametrize("chunked", [False, True])
async def test_answer_within_the_limit_is_read_whole(
    client: TestClient[web.Request, web.Application], chunked: bool
) -> None:
    query = {"size": str(LIMIT), "chunked": "1" if chunked else ""}
    async with client.get("/answer", params=query) as response:
        assert await read_capped(response, LIMIT, BackendAnswerTooLarge) == b"x" * LIMIT


@pytest.mark.parametrize("chunked", [False, True])
async def test_answer_over_the_limit_is_refused(
    client: TestClient[web.Request, web.Application], chunked: bool
) -> None:
    query = {"size": str(LIMIT + 100), "chunked": "1" if chunked else ""}
    async with client.get("/answer", params=query) as response:
        assert (response.content_length is None) is chunked
        with pytest.raises(BackendAnswerTooLarge, match=f"over the limit of {LIMIT} bytes"):
            await read_capped(response, LIMIT, BackendAnswerTooLarge)
