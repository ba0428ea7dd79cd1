"""The carriers: one per kind of exchange, registered here and nowhere else.

A carrier takes claimed outbox rows of its kinds for one receiving gateway,
hands them over through the one peer client, and records every row's outcome
(through :class:`~gcx.gateway.exchange.outcomes.Outcomes` for failures, and
with its own receipts when they were taken). The worker
(:mod:`gcx.gateway.exchange.worker`) knows nothing of any kind: it claims,
keeps leases alive and calls the carrier registered for the row's kind.

A new kind of exchange (typed documents, events, mail submitted over SMTP)
is a carrier and a schema, not a new
pipeline. The registry is :mod:`gcx.gateway.carriers`.
"""

from __future__ import annotations

from typing import Protocol

from gcx.errors import PeerUnreachable
from gcx.gateway.exchange.outbox import OutboxEntry
from gcx.gateway.runtime import Gateway
from gcx.protocol import directory as dirproto


class Carrier(Protocol):
    # The outbox kinds this carrier does.
    kinds: tuple[str, ...]
    # How many rows of these kinds one worker works on at once, each on its
    # own; None for kinds carried in batches (the worker bounds the batches).
    max_rows: int | None

    async def carry(self, peer_name: str, entries: list[OutboxEntry]) -> None:
        """Hand ``entries`` (all for ``peer_name``) over and record each one's outcome."""
        ...


def receiving_gateway(
    gateway: Gateway, peer_name: str
) -> tuple[dirproto.Directory, dirproto.GatewayEntry]:
    """The current directory and the named gateway in it, or a reason to try again later.

    Raises :class:`~gcx.errors.PeerUnreachable` (or the directory's own error)
    when it is not there: a newer directory may bring it back before the
    work expires, so every carrier retries rather than gives up.
    """
    directory = gateway.directory.current()
    peer = directory.gateway_named(peer_name)
    if peer is None:
        raise PeerUnreachable(
            f"Gateway {peer_name} is not in the current directory; it will be tried again "
            "until the work expires."
        )
    return directory, peer
