"""What both sides of a service call share: headers, limits, backends, reading capped bodies."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gcx.errors import GcxError, InputError

REQUEST_HEADER = "X-Gcx-Call-Request"
RESPONSE_HEADER = "X-Gcx-Call-Response"
CALL_ID_HEADER = "X-Gcx-Call-Id"
USER_HEADER = "X-Gcx-User"
PURPOSE_HEADER = "X-Gcx-Purpose"
REPLAY_WINDOW = 100_000


class CallReplayed(InputError):
    code = "call-replayed"
    status = 409
    default_message = "A call with this id was already answered; the repeat was refused."


@dataclass(frozen=True)
class Backend:
    provider: str
    name: str
    url: str


async def read_capped(response: aiohttp.ClientResponse, limit: int, error: type[GcxError]) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise error(f"The answer is {response.content_length} bytes, over the limit of {limit}.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise error(f"The answer is over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
