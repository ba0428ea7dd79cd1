"""What every gcx HTTP API shares: the refusal format and running blocking work.

A refusal is JSON ``{"code", "message", "details"?}`` with the error's HTTP
status and an ``X-Gcx-Error`` header carrying the code, so a program can tell
a gcx refusal from anything else that answers with the same status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from gcx.errors import BodyNotUtf8, BodyTooLarge, GcxError, InputError, MultipartInvalid
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


@contextlib.contextmanager
def multipart_errors() -> Iterator[None]:
    """Turn aiohttp's failures on a malformed multipart body into :class:`MultipartInvalid`.

    aiohttp raises ``ValueError`` (no boundary, a boundary too long, garbage
    after one, a body cut short), ``AssertionError`` (not multipart at all) and
    ``HttpProcessingError`` (a control character in a part's headers); none of
    them is a refusal a person can read, and each used to become a 500. Wrap
    every read of a multipart body in this.
    """
    try:
        yield
    except GcxError:
        raise
    except (ValueError, AssertionError, LookupError, HttpProcessingError) as exc:
        raise MultipartInvalid() from exc


async def multipart_reader(request: web.Request) -> MultipartReader:
    """The request's multipart/form-data body as a reader, or a refusal saying why not."""
    if request.content_type != "multipart/form-data":
        raise MultipartInvalid("This form must be sent as multipart/form-data.")
    with multipart_errors():
        return await request.multipart()


# A quoted filename parameter as sent; aiohttp strips leading slashes and
# backslashes from it, which would quietly turn "/etc/passwd" into "etc/passwd".
_QUOTED_FILENAME = re.compile(r';\s*filename\s*=\s*"((?:[^"\\]|\\.)*)"', re.IGNORECASE)


def part_filename(part: BodyPartReader) -> str | None:
    """A file part's name exactly as the sender gave it (None for a plain field).

    Never a silently repaired name: a name with a path in it is passed on as
    sent, so :func:`gcx.protocol.message.check_file_name` refuses it.
    """
    name = part.filename
    if name is None:
        return None
    sent = _QUOTED_FILENAME.search(part.headers.get("Content-Disposition", ""))
    if sent is not None:
        raw = re.sub(r"\\(.)", r"\1", sent.group(1))
        if raw != name and raw.lstrip("\\/") == name:
            name = raw
    return _utf8(name, "file name")


def part_media_type(part: BodyPartReader) -> str:
    """A file part's media type without its parameters ("text/plain; charset=utf-8")."""
    value = part.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
    return _utf8(value or "application/octet-stream", "media type")[:255]


def _utf8(value: str, what: str) -> str:
    # aiohttp decodes part headers with surrogateescape, so bytes that are not
    # UTF-8 arrive as lone surrogates, which fail far from here when encoded.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BodyNotUtf8(f"A part's {what} is not valid UTF-8 text.") from exc
    return value


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
