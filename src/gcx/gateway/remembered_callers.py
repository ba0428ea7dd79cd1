"""Callers the database vouched for, remembered briefly by the hash of their token.

Used by :class:`gcx.gateway.tokens.TokenService` (which says why and for how
long). The token itself is never kept: entries are found by its SHA-256, and
the stored hash is compared again in constant time, as the database path
does. An entry is forgotten when it ages out, when anything in this process
changed a token's standing since it was looked up
(:func:`gcx.store.tokens.standing_changed`), or when the table is full and it
is the oldest.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

from gcx import crypto
from gcx.clock import Clock
from gcx.store.tokens import standing_generation

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    caller: T
    token_hash: str
    until: dt.datetime
    generation: int


class RememberedCallers(Generic[T]):
    def __init__(self, clock: Clock, remember_for: dt.timedelta, at_most: int) -> None:
        self.clock = clock
        self.remember_for = remember_for
        self.at_most = at_most
        # Read on the event loop, written from worker threads.
        self._entries: dict[str, _Entry[T]] = {}
        self._lock = threading.Lock()

    def get(self, token: str | None) -> T | None:
        """The remembered caller for ``token``, or None (look it up)."""
        if not token:
            return None
        token_hash = crypto.hash_token(token)
        with self._lock:
            entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if (
            entry.generation != standing_generation()
            or self.clock.now() >= entry.until
            or not crypto.token_matches(token, entry.token_hash)
        ):
            with self._lock:
                if self._entries.get(token_hash) is entry:
                    del self._entries[token_hash]
            return None
        return entry.caller

    def put(self, caller: T, token_hash: str, generation: int) -> None:
        """Remember a caller looked up while ``generation`` held, unless it has changed since.

        A revocation that committed while the lookup ran has moved the number
        on: what the lookup read may already be stale, so it is not kept.
        """
        until = self.clock.now() + self.remember_for
        with self._lock:
            if generation != standing_generation():
                return
            self._entries.pop(token_hash, None)
            while len(self._entries) >= self.at_most:
                del self._entries[next(iter(self._entries))]
            self._entries[token_hash] = _Entry(caller, token_hash, until, generation)

    def __len__(self) -> int:
        return len(self._entries)

    def hashes(self) -> list[str]:
        """What the table is keyed by (for tests: never a token)."""
        with self._lock:
            return list(self._entries)
