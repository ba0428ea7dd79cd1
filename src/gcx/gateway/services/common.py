"""What both sides of a service call share: headers, limits, backends, reading capped bodies."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gcx.errors import GcxError
from gcx.httpapi import read_limited

REQUEST_HEADER = "X-Gcx-Call-Request"
RESPONSE_HEADER = "X-Gcx-Call-Response"
CALL_ID_HEADER = "X-Gcx-Call-Id"
USER_HEADER = "X-Gcx-User"
PURPOSE_HEADER = "X-Gcx-Purpose"
REPLAY_WINDOW = 100_000


@dataclass(frozen=True)
class Backend:
    provider: str
    name: str
    url: str


async def read_capped(response: aiohttp.ClientResponse, limit: int, error: type[GcxError]) -> bytes:
    """A backend's or peer's whole answer, refused with ``error`` past ``limit`` bytes."""
    return await read_limited(
        response.content,
        response.content_length,
        limit,
        lambda: error(f"The answer is over the limit of {limit} bytes."),
    )
