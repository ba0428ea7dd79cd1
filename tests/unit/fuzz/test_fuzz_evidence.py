"""Properties of the evidence-file verifiers: any input is refused with a gcx error or verifies.

Beyond changed bytes, which the canonical form refuses early, the properties
write mutated files back in the canonical form, and replace a signed
document inside a file with a hostile payload signed by the genuine key, so
that every check behind the form and the signatures is reached.
"""

from __future__ import annotations

import json
from typing import Any

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
from gcx.evidence import verify_call_evidence, verify_evidence
from gcx.evidence._calls import is_call_evidence
from gcx.evidence._file import serialise
from gcx.protocol import directory as dirproto
from gcx.protocol.batch import READ_RECEIPT_TYPE
from gcx.protocol.envelope import PAYLOAD_TYPE as ENVELOPE_TYPE
from gcx.protocol.receipt import PAYLOAD_TYPE as RECEIPT_TYPE
from gcx.protocol.services import REQUEST_TYPE, RESPONSE_TYPE

_ROOT = net.network().root


def _canonical(data: bytes) -> bytes:
    """``data`` rewritten in the evidence file's canonical form, where Python can read it."""
    try:
        return serialise(json.loads(data))
    except (ValueError, RecursionError):
        return data


def _report(data: bytes) -> dict[str, Any]:
    return verify_evidence(data, anchor=_ROOT).to_dict()


def test_built_file_verifies() -> None:
    """The file gcx builds verifies against the network anchor."""
    assert _report(net.evidence_file())["ok"] is True


@given(st.binary(max_size=300) | json_texts() | mutants(net.evidence_file()))
def test_changed_file_is_refused_or_unchanged(data: bytes) -> None:
    """A changed evidence file is refused with a gcx error, or is the file exported."""
    report = parse_or_refuse(_report, data)
    if report is not None:
        assert data == net.evidence_file()


@given(json_mutants(net.evidence_file()).map(_canonical))
def test_rewritten_file_is_refused_or_says_the_same(data: bytes) -> None:
    """A changed file in canonical form is refused, or establishes exactly what the original did."""
    report = parse_or_refuse(_report, data)
    if report is not None:
        assert report == _report(net.evidence_file())


def _signers() -> dict[str, tuple[str, crypto.SigningKey]]:
    orgs = net.network().orgs
    return {
        "directory": (dirproto.PAYLOAD_TYPE, net.network().root_key),
        "envelope": (ENVELOPE_TYPE, orgs[net.SENDER].signing),
        "delivery": (RECEIPT_TYPE, orgs["MPS"].signing),
        "read": (READ_RECEIPT_TYPE, orgs["MPS"].signing),
    }


@st.composite
def _resigned_files(draw: st.DrawFn) -> bytes:
    """The evidence file with one signed document replaced by a hostile one, genuinely signed."""
    value = json.loads(net.evidence_file())
    holders: dict[str, tuple[dict[str, Any], str]] = {
        "directory": (value["directory"], "document"),
        "envelope": (value["envelope"], "signed_header"),
    }
    for receipt in value["receipts"]:
        if receipt["organisation"] == "MPS":
            holders[receipt["kind"]] = (receipt, "document")
    which = draw(st.sampled_from(sorted(holders)))
    holder, field = holders[which]
    payload_type, key = _signers()[which]
    payload = draw(json_mutants(dsse_payload(holder[field].encode())) | json_texts())
    holder[field] = crypto.sign_document(
        payload_type, payload, key, crypto.key_id(key.public)
    ).decode()
    return serialise(value)


@given(_resigned_files())
def test_genuinely_signed_hostile_document_is_refused_or_verifies(data: bytes) -> None:
    """A hostile document inside a file, signed with the genuine key, is refused or verifies."""
    parse_or_refuse(_report, data)


# -- service-call evidence ------------------------------------------------------------


def _call_report(data: bytes) -> dict[str, Any]:
    return verify_call_evidence(data, anchor=_ROOT).to_dict()


def test_built_call_file_verifies() -> None:
    """The call evidence file gcx builds verifies against the network anchor."""
    assert _call_report(net.call_evidence_file())["ok"] is True


@given(st.binary(max_size=300) | json_texts() | mutants(net.call_evidence_file()))
def test_changed_call_file_is_refused_or_unchanged(data: bytes) -> None:
    """A changed call evidence file is refused with a gcx error, or is the file exported."""
    assert isinstance(is_call_evidence(data), bool)
    report = parse_or_refuse(_call_report, data)
    if report is not None:
        assert data == net.call_evidence_file()


@st.composite
def _resigned_call_files(draw: st.DrawFn) -> bytes:
    value = json.loads(net.call_evidence_file())
    orgs = net.network().orgs
    which = draw(st.sampled_from(["request", "response", "directory"]))
    if which == "directory":
        holder, field = value["directory"], "document"
        payload_type, key = dirproto.PAYLOAD_TYPE, net.network().root_key
    else:
        holder, field = value["call"], which
        payload_type, key = {
            "request": (REQUEST_TYPE, orgs[net.SENDER].signing),
            "response": (RESPONSE_TYPE, orgs["DWP"].signing),
        }[which]
    payload = draw(json_mutants(dsse_payload(holder[field].encode())) | json_texts())
    holder[field] = crypto.sign_document(
        payload_type, payload, key, crypto.key_id(key.public)
    ).decode()
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


@given(_resigned_call_files() | json_mutants(net.call_evidence_file()).map(_canonical))
def test_hostile_call_file_is_refused_or_verifies(data: bytes) -> None:
    """A call file with hostile content, even genuinely signed, is refused or verifies."""
    parse_or_refuse(_call_report, data)
