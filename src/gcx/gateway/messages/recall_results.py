"""Which answers to a signed recall are believed, for every path a recall takes.

A gateway answers a recall with one signed result per organisation it hosts.
A result is believed only if it is signed by an organisation that gateway
hosts, is about this very message, and checks against that organisation's
key; anything else counts as a refusal with a sentence saying why. The
sender's own recall (gateway/messages/recall.py) and a recall forwarded through the
outbox after an in-flight batch (gateway/messages/control.py) both judge answers
here, so neither can believe a bare 200.
"""

from __future__ import annotations

from typing import Any

from gcx.errors import GcxError
from gcx.gateway.peer import verify_signed_by_org
from gcx.protocol import directory as dirproto
from gcx.protocol import strict_json
from gcx.protocol.batch import RECALL_RESULT_TYPE, RECALL_TYPE, Recall, RecallResult

Outcome = tuple[str, str | None]


def judge_recall_answer(
    directory: dirproto.Directory, peer_name: str, document: bytes, body: bytes
) -> Outcome:
    """What a peer's 200 answer body to our signed recall ``document`` says."""
    try:
        data = strict_json.loads(body)
    except ValueError:
        return "refused", f"gateway {peer_name} answered 200 with a body that is not JSON"
    if not isinstance(data, dict):
        return "refused", f"gateway {peer_name} answered 200 without an object"
    return judge_recall_results(directory, peer_name, document, data.get("results", []))


def judge_recall_results(
    directory: dirproto.Directory, peer_name: str, document: bytes, results: Any
) -> Outcome:
    """What ``peer_name``'s answer to our signed recall ``document`` says, believing only
    results signed by an organisation that gateway hosts, about this very message."""
    entry = directory.gateway_named(peer_name)
    hosted = set(entry.organisations) if entry is not None else set()
    envelope_id = Recall.from_bytes(
        verify_signed_by_org(directory, document, RECALL_TYPE, claimed=None)
    ).envelope_id
    if not isinstance(results, list):
        return "refused", f"gateway {peer_name} answered without a list of results"
    outcome: Outcome = ("recalled", None)
    for raw in results:
        try:
            payload = verify_signed_by_org(
                directory, str(raw).encode(), RECALL_RESULT_TYPE, claimed=None
            )
            result = RecallResult.from_bytes(payload)
            # Checked again against the key of exactly the organisation it speaks
            # for, which must be one that gateway hosts, about this very message.
            verify_signed_by_org(
                directory, str(raw).encode(), RECALL_RESULT_TYPE, claimed=result.organisation
            )
        except GcxError as error:
            return "refused", f"gateway {peer_name} sent an invalid recall result: {error.message}"
        if result.organisation not in hosted or result.envelope_id != envelope_id:
            return "refused", f"gateway {peer_name} answered for another message or organisation"
        if result.outcome != "recalled":
            outcome = ("refused", result.message)
    return outcome
