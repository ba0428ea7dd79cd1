"""Call evidence with batch-signed documents (gcx.batch-signed/1): checked; tampering refused."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from tests.unit.fuzz._network import NOW, SENDER, call_request, network, signed_directory

from gcx import crypto
from gcx.errors import EvidenceInvalid
from gcx.evidence import verify_call_evidence
from gcx.evidence._calls import build_call_evidence
from gcx.protocol.services import REQUEST_TYPE, RESPONSE_TYPE, CallResponse


def _batch_signed(code: str, payload_type: str, payload: bytes, others: int) -> bytes:
    """``payload`` signed by ``code`` as the third of a batch with ``others`` other documents."""
    key = network().orgs[code].signing
    items = [(payload_type, b'{"other":%d}' % i) for i in range(others)]
    items.insert(2, (payload_type, payload))
    return crypto.sign_batch(items, key, crypto.key_id(key.public))[2]


def _documents() -> tuple[bytes, bytes]:
    request = _batch_signed(SENDER, REQUEST_TYPE, call_request().to_bytes(), 4)
    response = CallResponse(
        call_id=call_request().id,
        request_sha256=crypto.sha256_hex(request),
        provider="DWP",
        provider_gateway="dwp",
        service="dwp-cis",
        status=200,
        headers={"content-type": "application/json"},
        body_sha256=crypto.sha256_hex(b"{}"),
        body_size=2,
        created_at=NOW + dt.timedelta(seconds=1),
        directory_version=7,
    )
    return request, _batch_signed("DWP", RESPONSE_TYPE, response.to_bytes(), 6)


def _evidence(request: bytes, response: bytes) -> bytes:
    net = network()
    return build_call_evidence(
        call_id=call_request().id,
        side="consumer",
        request_document=request,
        response_document=response,
        anchor_pem=net.root.pem,
        certificates={code: net.orgs[code].certificate.pem for code in (SENDER, "DWP")},
        directory_version=7,
        directory_document=signed_directory(),
    )


def test_batch_signed_call_evidence_verifies() -> None:
    """Both documents check through their paths to roots their organisations signed."""
    verified = verify_call_evidence(_evidence(*_documents()), anchor=network().root)
    details = {c.name: c.detail for c in verified.checks}
    assert verified.request.id == call_request().id
    assert "in a batch" in details["request"] and "in a batch" in details["response"]


def _with_path_changed(document: bytes) -> bytes:
    value = json.loads(document)
    first = bytearray(base64.b64decode(value["path"][0]))
    first[-1] ^= 0x80
    value["path"][0] = base64.b64encode(first).decode()
    return json.dumps(value, separators=(",", ":")).encode()


def _with_leaf_changed(document: bytes) -> bytes:
    value = json.loads(document)
    value["leaf"] = 0
    return json.dumps(value, separators=(",", ":")).encode()


@pytest.mark.parametrize("change", [_with_path_changed, _with_leaf_changed])
@pytest.mark.parametrize("which", ["request", "response"])
def test_a_changed_path_or_leaf_is_refused(which: str, change: object) -> None:
    """Evidence whose request or answer no longer leads to its signed root is refused."""
    request, response = _documents()
    assert callable(change)
    if which == "request":
        request = change(request)
        # Keep the answer naming this (changed) request, so only the signature can fail.
        response = _documents()[1]
    else:
        response = change(response)
    with pytest.raises(EvidenceInvalid) as refused:
        verify_call_evidence(_evidence(request, response), anchor=network().root)
    assert refused.value.check == which


def test_a_batch_signed_by_another_organisation_is_refused() -> None:
    """A request batch-signed with DWP's key does not pass as the council's."""
    _, response = _documents()
    request = _batch_signed("DWP", REQUEST_TYPE, call_request().to_bytes(), 2)
    with pytest.raises(EvidenceInvalid) as refused:
        verify_call_evidence(_evidence(request, response), anchor=network().root)
    assert refused.value.check == "request"
