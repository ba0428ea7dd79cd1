"""What every gcx HTTP API shares: the refusal format and running blocking work.

A refusal is JSON ``{"code", "message", "details"?}`` with the error's HTTP
status and an ``X-Gcx-Error`` header carrying the code, so a program can tell
a gcx refusal from anything else that answers with the same status.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from aiohttp import StreamReader, web

from gcx.errors import BodyTooLarge, GcxError, InputError
from gcx.protocol import strict_json

T = TypeVar("T")
log = logging.getLogger("gcx.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(error: GcxError) -> web.Response:
    body = error.to_dict()
    # The header carries the same code as the body, so a refusal passed on
    # from another gcx service keeps the code that service gave it.
    return web.json_response(body, status=error.status, headers={"X-Gcx-Error": str(body["code"])})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GcxError as error:
        if error.status >= 500:
            log.warning(
                "%s %s refused: %s (%s)", request.method, request.path, error.code, error.message
            )
        return refusal(error)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return refusal(GcxError())


async def run_sync(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (database, key operations) off the event loop."""
    return await asyncio.to_thread(partial(function, *args, **kwargs))


async def read_limited(
    content: StreamReader, declared: int | None, limit: int, refuse: Callable[[], GcxError]
) -> bytes:
    """A whole body from ``content``, refused with ``refuse()`` once it passes ``limit`` bytes.

    A declared length over the limit is refused before reading; an undeclared or
    understated one is refused as soon as the bytes pass it, so an oversized body
    is never held in memory whole. Serves requests to us and answers to our calls.
    """
    if declared is not None and declared > limit:
        raise refuse()
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise refuse()
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole request body, refused with a clear error past ``max_bytes``."""
    return await read_limited(
        request.content,
        request.content_length,
        max_bytes,
        lambda: BodyTooLarge(f"The request body is larger than the limit of {max_bytes} bytes."),
    )


async def json_body(request: web.Request, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """The request's JSON object body, or a clear refusal."""
    raw = await read_body(request, max_bytes)
    # The one strict reader: a refusal names what was wrong (malformed, a repeated
    # key, NaN, nesting too deep, not UTF-8) with its own stable code.
    return strict_json.loads_object(raw)


def require_str(body: dict[str, Any], key: str, *, max_len: int = 10_000) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"The field {key!r} is required and must be a string.")
    if len(value) > max_len:
        raise InputError(f"The field {key!r} is longer than {max_len} characters.")
    return value


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def attachment_disposition(name: str) -> str:
    """A Content-Disposition that makes the browser save ``name`` rather than show it.

    A plain ASCII name for old browsers and the exact one (RFC 6266, RFC 8187) for
    the rest; the names come from senders, so nothing in them can break the header.
    """
    plain = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    exact = urllib.parse.quote(name, safe="")
    return f"attachment; filename=\"{plain or 'file'}\"; filename*=UTF-8''{exact}"
