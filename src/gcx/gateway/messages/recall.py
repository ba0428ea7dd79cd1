"""Recalling a sent message everywhere it went, for the API and the web pages alike.

Recall has two halves. What has not left this gateway is withdrawn from the
outbox at once. What has arrived at a peer gateway is withdrawn there by a
signed recall, which the peer refuses if anyone has read the message; its
answer is one signed result per organisation it hosts, each checked against
the key of exactly that organisation before it is believed.
"""

from __future__ import annotations

from typing import Any

from gcx.errors import GcxError
from gcx.gateway.exchange.peer_client import PeerClient, refusal_of
from gcx.gateway.messages.messaging import Messaging
from gcx.gateway.messages.peer_api import apply_recall
from gcx.gateway.messages.recall_results import Outcome, judge_recall_answer, judge_recall_results
from gcx.gateway.peer import verify_signed_by_org
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.httpapi import run_sync
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import RECALL_TYPE, Recall


async def recall_everywhere(
    messaging: Messaging, peers: PeerClient, caller: Caller, envelope_id: str
) -> dict[str, Any]:
    """Withdraw what has not left, ask each gateway holding the message, record the answers.

    Raises :class:`gcx.errors.RecallRefused` naming each gateway that
    would not withdraw it.
    """
    gateway = messaging.gateway
    held_by = await run_sync(messaging.withdraw_unsent, caller, envelope_id)
    outcomes: dict[str, Outcome] = {}
    if held_by:
        directory = gateway.directory.current()
        document = await run_sync(messaging.recall_signed, caller, envelope_id)
        for peer_name in held_by:
            outcomes[peer_name] = await recall_at(gateway, peers, directory, peer_name, document)
    result: dict[str, Any] = await run_sync(messaging.finish_recall, caller, envelope_id, outcomes)
    return result


async def recall_at(
    gateway: Gateway,
    peers: PeerClient,
    directory: dirproto.Directory,
    peer_name: str,
    document: bytes,
) -> Outcome:
    """``("recalled", None)`` if every organisation at ``peer_name`` withdrew it, else why not."""
    if peer_name == gateway.config.name:
        # Sender and recipient share this gateway: apply it here, as a peer would.
        signed = verify_signed_by_org(directory, document, RECALL_TYPE, claimed=None)
        results: Any = await run_sync(apply_recall, gateway, peer_name, Recall.from_bytes(signed))
    else:
        entry = directory.gateway_named(peer_name)
        if entry is None:
            return "refused", f"gateway {peer_name} is not in the directory"
        try:
            answer = await peers.request("POST", entry, "/peer/v1/recalls", document)
        except GcxError as error:
            return "refused", error.message
        if answer.status != 200:
            return "refused", refusal_of(answer, f"Gateway {peer_name}").message
        return judge_recall_answer(directory, peer_name, document, answer.body)
    return judge_recall_results(directory, peer_name, document, results)
