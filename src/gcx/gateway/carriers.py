"""The registry of carriers: every kind of exchange this gateway carries, built in one place.

The worker claims rows of any kind and calls the carrier registered here for
it; a kind with no carrier is ended with an alert rather than claimed for
ever. Adding a kind of exchange means adding its carrier to this tuple.
"""

from __future__ import annotations

from collections.abc import Sequence

from gcx.gateway.exchange.carrier import Carrier
from gcx.gateway.exchange.outcomes import Outcomes
from gcx.gateway.exchange.peer_client import PeerClient
from gcx.gateway.messages.carrier import MessageCarrier
from gcx.gateway.messages.control import ControlCarrier
from gcx.gateway.notifications.carrier import NotificationCarrier
from gcx.gateway.notifications.relay import Relay
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.carrier import TransferCarrier


def carriers_for(gateway: Gateway, peers: PeerClient) -> Sequence[Carrier]:
    """Every carrier this gateway runs, sharing one way of recording outcomes."""
    outcomes = Outcomes(gateway)
    return (
        MessageCarrier(gateway, peers, outcomes),
        ControlCarrier(gateway, peers, outcomes),
        TransferCarrier(gateway, peers, outcomes),
        NotificationCarrier(gateway, outcomes, Relay.from_config(gateway.config)),
    )
