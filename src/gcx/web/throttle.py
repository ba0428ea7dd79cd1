"""Slowing down password guessing across accounts, per network address.

Each account locks after five failures in a row, which stops guessing one
person's password but not trying one common password against every account.
This counts failed password steps per client address over a sliding five
minutes and refuses that address's further attempts once there are too many,
until the oldest failure ages out. The count is kept in memory, per process:
replicas each keep their own, and a restart forgets it (the per-account
lockout, which is stored, still holds).

Behind the organisation's proxy every request comes from the proxy, so when
``web_public_url`` is set the client is the rightmost address in
``X-Forwarded-For``, the one the proxy itself appended; anything further left
came from the client and is not believed. The listener only accepts loopback
connections, so only a process on this machine can set that header.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from aiohttp import web

from gcx.errors import SignInThrottled

WINDOW_SECONDS = 300.0
MAX_ADDRESSES = 10_000


class SignInThrottle:
    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        # Least recently failing first, so the oldest address is dropped when full.
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, address: str) -> None:
        """Refuse the attempt if ``address`` already failed ``limit`` times in the window."""
        recent = self._recent(address)
        if recent is not None and len(recent) >= self.limit:
            minutes = max(1, math.ceil((recent[0] + self.window - self._clock()) / 60))
            raise SignInThrottled(
                f"There have been too many failed sign-ins from your network address; try "
                f"again in {minutes} minute{'s' if minutes > 1 else ''}."
            )

    def failed(self, address: str) -> bool:
        """Count a failure; True when this one brings ``address`` to the limit."""
        recent = self._recent(address)
        if recent is None:
            recent = self._failures[address] = deque()
            if len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        recent.append(self._clock())
        return len(recent) == self.limit

    def _recent(self, address: str) -> deque[float] | None:
        recent = self._failures.get(address)
        if recent is None:
            return None
        horizon = self._clock() - self.window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._failures[address]
            return None
        return recent


def client_address(request: web.Request, behind_proxy: bool) -> str:
    """Who is signing in: the proxy's word for it behind a proxy, else the socket's peer."""
    if behind_proxy:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        if forwarded:
            last = forwarded[-1].split(",")[-1].strip()
            if last:
                return last
    return request.remote or "unknown"
