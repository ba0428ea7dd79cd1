"""Properties of signed documents: DSSE, receipts, the directory, checkpoints, pings, recalls,
service calls and changes.

For each: (a) arbitrary bytes, hostile JSON and mutations of a valid payload
parse or raise a gcx error; (b) what gcx writes reads back equal; (c) a
signed document changed on the wire fails verification or yields exactly the
original payload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz import _network as net
from tests.unit.fuzz._strategies import (
    dsse_payload,
    json_mutants,
    json_texts,
    mutants,
    parse_or_refuse,
)

from gcx import crypto
from gcx.central.checkpoints import _claimed_gateway
from gcx.central.services import _unverified_provider
from gcx.gateway.messages.carrier import _claimed_recipient
from gcx.gateway.transfers.peer_api import _claimed_sender
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import READ_RECEIPT_TYPE, ReadReceipt, Recall, RecallResult
from gcx.protocol.checkpoint import PAYLOAD_TYPE as CHECKPOINT_TYPE
from gcx.protocol.checkpoint import Checkpoint
from gcx.protocol.ping import Ping, Pong
from gcx.protocol.receipt import Receipt
from gcx.protocol.services import (
    CallRequest,
    CallResponse,
    ServiceChange,
    ServiceEntry,
)

_hostile = st.binary(max_size=200) | json_texts()

# -- (a) payload parsers ----------------------------------------------------------------

_CHECKPOINT = Checkpoint(
    gateway="mps",
    tree_size=12,
    root_hash="ab" * 32,
    issued_at=net.NOW,
    previous_size=8,
    consistency_proof=("cd" * 32, "ef" * 32),
)
_CHANGE = ServiceChange(
    id="d" * 32,
    provider="DWP",
    issued_at=net.NOW,
    action="publish",
    service=ServiceEntry(
        provider="DWP",
        name="dwp-cis",
        version="1.0",
        title="Customer information",
        openapi={"openapi": "3.1.0", "paths": {"/customers/{id}": {"get": {}}}},
        updated_at=net.NOW,
    ),
)
_request_document, _response_document = net.signed_call()

# Each parser with a valid payload that gcx's own writer made.
PAYLOADS: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
    "receipt": (Receipt.from_bytes, net.receipt().to_bytes()),
    "directory": (dirproto.Directory.from_bytes, net.directory().to_bytes()),
    "checkpoint": (Checkpoint.from_bytes, _CHECKPOINT.to_bytes()),
    "ping": (Ping.from_bytes, Ping("E09000030", "MPS", "n" * 32, net.NOW).to_bytes()),
    "pong": (Pong.from_bytes, Pong("MPS", "mps", "n" * 32, 7).to_bytes()),
    "recall": (
        Recall.from_bytes,
        Recall("a" * 32, "MPS", "benefits.officer", net.NOW).to_bytes(),
    ),
    "recall-result": (
        RecallResult.from_bytes,
        RecallResult(
            "a" * 32, "MPS", "refused", "already-read", "It was read.", net.NOW
        ).to_bytes(),
    ),
    "read-receipt": (ReadReceipt.from_bytes, net.read_receipt().to_bytes()),
    "call-request": (CallRequest.from_bytes, dsse_payload(_request_document)),
    "call-response": (CallResponse.from_bytes, dsse_payload(_response_document)),
    "service-change": (ServiceChange.from_bytes, _CHANGE.to_bytes()),
}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payload_round_trip(name: str) -> None:
    """A payload gcx writes reads back, and writes again to the same bytes."""
    parse, valid = PAYLOADS[name]
    value = parse(valid)
    assert value.to_bytes() == valid
    assert parse(value.to_bytes()) == value


@pytest.mark.parametrize("name", sorted(PAYLOADS))
@given(data=st.data())
def test_payload_parses_or_refuses(name: str, data: st.DataObject) -> None:
    """Arbitrary bytes, hostile JSON and mutated payloads parse, and write again, or are refused."""
    parse, valid = PAYLOADS[name]
    value = parse_or_refuse(parse, data.draw(_hostile | mutants(valid)))
    if value is not None:
        assert parse(value.to_bytes()) == value


# -- claimed signers, read before verifying to pick the key ------------------------------

CLAIMED: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
    "delivery receipt": (_claimed_recipient, net.signed_receipt()),
    "transfer manifest": (_claimed_sender, net.sealed().signed_header),
    "service change": (_unverified_provider, net.network().sign("x", _CHANGE.to_bytes(), "DWP")),
    "checkpoint": (
        _claimed_gateway,
        net.network().sign(CHECKPOINT_TYPE, _CHECKPOINT.to_bytes(), "MPS"),
    ),
}


@pytest.mark.parametrize("name", sorted(CLAIMED))
@given(data=st.data())
def test_claimed_signer_is_read_or_refused(name: str, data: st.DataObject) -> None:
    """Reading who claims to sign a document, before verifying, fails only with a gcx error."""
    read, valid = CLAIMED[name]
    document = data.draw(_hostile | mutants(valid))
    parse_or_refuse(read, document)


# -- (c) signed documents changed on the wire --------------------------------------------

_DWP = net.network().orgs["DWP"].signing.public
_MPS = net.network().orgs["MPS"].signing.public
_ROOT = net.network().root_key.public


def _verify(document: bytes, payload_type: str, key: crypto.VerifyKey) -> bytes:
    return crypto.verify_document(document, payload_type, {crypto.key_id(key): key})


SIGNED: dict[str, tuple[bytes, str, crypto.VerifyKey]] = {
    "directory": (net.signed_directory(), dirproto.PAYLOAD_TYPE, _ROOT),
    "receipt": (net.signed_receipt(), "application/vnd.gcx.receipt+json", _MPS),
    "read receipt": (
        net.network().sign(READ_RECEIPT_TYPE, net.read_receipt().to_bytes(), "MPS"),
        READ_RECEIPT_TYPE,
        _MPS,
    ),
    "call response": (_response_document, "application/vnd.gcx.call-response+json", _DWP),
}


@pytest.mark.parametrize("name", sorted(SIGNED))
@given(data=st.data())
def test_changed_document_fails_or_yields_the_original(name: str, data: st.DataObject) -> None:
    """A changed signed document fails verification, or yields exactly the payload signed."""
    document, payload_type, key = SIGNED[name]
    changed = data.draw(mutants(document) | _hostile)
    payload = parse_or_refuse(lambda d: _verify(d, payload_type, key), changed)
    if payload is not None:
        assert payload == dsse_payload(document)


@given(mutants(net.signed_receipt()))
def test_changed_receipt_is_refused_or_unchanged(document: bytes) -> None:
    """verify_receipt on a changed receipt raises a gcx error or returns the receipt signed."""
    envelope = net.sealed()
    receipt = parse_or_refuse(
        lambda d: crypto.verify_receipt(
            d,
            _MPS,
            envelope_id=envelope.header.id,
            envelope_digest=envelope.digest,
            recipient="MPS",
        ),
        document,
    )
    if receipt is not None:
        assert receipt == net.receipt()


@given(json_mutants(net.receipt().to_bytes()) | json_texts())
def test_resigned_receipt_is_refused_or_parses(payload: bytes) -> None:
    """A hostile receipt payload signed with the recipient's genuine key is refused or parses."""
    envelope = net.sealed()
    document = net.network().sign("application/vnd.gcx.receipt+json", payload, "MPS")
    parse_or_refuse(
        lambda d: crypto.verify_receipt(
            d,
            _MPS,
            envelope_id=envelope.header.id,
            envelope_digest=envelope.digest,
            recipient="MPS",
        ),
        document,
    )


@given(json_mutants(net.directory().to_bytes()) | json_texts())
def test_resigned_directory_is_refused_or_judged(payload: bytes) -> None:
    """A hostile directory signed by the root is refused, or parsed and judged by the rules."""
    key = net.network().root_key
    document = crypto.sign_document(dirproto.PAYLOAD_TYPE, payload, key, crypto.key_id(key.public))

    def offer(d: bytes) -> bool:
        offered = dirproto.Directory.from_bytes(_verify(d, dirproto.PAYLOAD_TYPE, _ROOT))
        held = net.directory()
        return dirproto.accept_directory(
            held,
            held.to_bytes(),
            offered,
            payload,
            network=net.NETWORK,
            now=net.NOW + dt.timedelta(seconds=1),
        )

    parse_or_refuse(offer, document)
