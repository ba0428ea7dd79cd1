"""Properties of envelope, batch and message-content parsers: refuse with a gcx error or parse.

Signed headers are mutated two ways: as bytes on the wire (the signature
must then fail, or the result be exactly the original header), and as a
payload re-signed with the sender's genuine key, which is what a faulty or
hostile but admitted peer can send and which reaches every check behind the
signature.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz import _network as net
from tests.unit.fuzz._strategies import (
    byte_mutants,
    dsse_payload,
    json_mutants,
    json_texts,
    mutants,
    parse_or_refuse,
)

from gcx import crypto
from gcx.errors import EnvelopeMalformed, EnvelopeUnreadable, GcxError
from gcx.protocol.batch import frame_batch, unframe_batch
from gcx.protocol.envelope import PAYLOAD_TYPE, EnvelopeHeader, frame, unframe
from gcx.protocol.message import Address, AttachmentInfo, MessageContent

# -- framing ---------------------------------------------------------------------------


@given(st.one_of(st.binary(max_size=300), byte_mutants(net.sealed().framed())))
def test_unframe_parses_or_refuses(data: bytes) -> None:
    """Arbitrary bytes and damaged envelopes unframe or raise a gcx error."""
    parse_or_refuse(unframe, data)


@given(st.binary(max_size=200), st.lists(st.binary(max_size=100), max_size=5))
def test_frame_round_trip(header: bytes, parts: list[bytes]) -> None:
    """unframe(frame(h, parts)) gives back exactly h and parts."""
    assert unframe(frame(header, parts)) == (header, parts)


@given(st.one_of(st.binary(max_size=300), byte_mutants(frame_batch([net.sealed().framed()] * 2))))
def test_unframe_batch_parses_or_refuses(data: bytes) -> None:
    """Arbitrary bytes and damaged batches unframe or raise a gcx error."""
    parse_or_refuse(unframe_batch, data)


@given(st.lists(st.binary(max_size=100), min_size=1, max_size=5))
def test_batch_round_trip(envelopes: list[bytes]) -> None:
    """unframe_batch(frame_batch(envelopes)) gives back exactly the envelopes."""
    assert unframe_batch(frame_batch(envelopes)) == envelopes


# -- the header --------------------------------------------------------------------------

_HEADER = dsse_payload(net.sealed().signed_header)


@given(st.one_of(st.binary(max_size=300), json_texts(), mutants(_HEADER)))
def test_header_parses_or_refuses(data: bytes) -> None:
    """A header payload parses, and then writes and reads back equal, or is refused."""
    header = parse_or_refuse(EnvelopeHeader.from_bytes, data)
    if header is not None:
        assert EnvelopeHeader.from_bytes(header.to_bytes()) == header


def test_header_round_trip() -> None:
    """The header gcx writes when sealing reads back equal."""
    header = net.sealed().header
    assert EnvelopeHeader.from_bytes(header.to_bytes()) == header


@given(mutants(net.sealed().signed_header))
def test_unverified_header_parses_or_refuses(data: bytes) -> None:
    """Reading the claimed sender of a damaged signed header never fails but with a gcx error."""
    parse_or_refuse(crypto.unverified_header, data)


def _verify(signed_header: bytes, parts: tuple[bytes, ...] | list[bytes]) -> EnvelopeHeader:
    return crypto.verify_envelope(
        signed_header,
        parts,
        net.network().orgs[net.SENDER].signing.public,
        sender_organisation=net.SENDER,
        now=net.NOW + dt.timedelta(minutes=1),
    )


@given(mutants(net.sealed().signed_header))
def test_changed_signed_header_is_refused_or_unchanged(data: bytes) -> None:
    """A signed header changed on the wire fails verification or verifies as the original."""
    envelope = net.sealed()
    header = parse_or_refuse(lambda d: _verify(d, envelope.parts), data)
    if header is not None:
        assert header == envelope.header
        assert data == envelope.signed_header


@given(st.data())
def test_changed_part_is_refused(data: st.DataObject) -> None:
    """A part changed on the wire fails verification, or is the original part."""
    envelope = net.sealed()
    index = data.draw(st.integers(0, len(envelope.parts) - 1))
    changed = data.draw(byte_mutants(envelope.parts[index]))
    parts = list(envelope.parts)
    parts[index] = changed
    header = parse_or_refuse(lambda _: _verify(envelope.signed_header, parts), b"")
    assert (header is not None) == (changed == envelope.parts[index])


@given(st.one_of(json_mutants(_HEADER), json_texts()))
def test_resigned_header_is_refused_or_opens(payload: bytes) -> None:
    """A hostile header signed with the sender's genuine key is refused, or verifies and opens."""
    envelope = net.sealed()
    document = net.network().sign(PAYLOAD_TYPE, payload, net.SENDER)
    header = parse_or_refuse(lambda d: _verify(d, envelope.parts), document)
    if header is not None:
        org = net.network().orgs["MPS"]
        parse_or_refuse(
            lambda _: crypto.open_envelope(header, envelope.parts, "MPS", org.encryption), b""
        )


@given(st.data())
def test_changed_ciphertext_does_not_open(data: st.DataObject) -> None:
    """A verified header with changed parts opens only to the original plaintext, or not at all."""
    envelope = net.sealed()
    index = data.draw(st.integers(0, len(envelope.parts) - 1))
    parts = list(envelope.parts)
    parts[index] = data.draw(byte_mutants(parts[index]))
    org = net.network().orgs["DWP"]
    try:
        opened = crypto.open_envelope(envelope.header, parts, "DWP", org.encryption)
    except EnvelopeUnreadable:
        assert parts[index] != envelope.parts[index]
        return
    assert opened == crypto.open_envelope(envelope.header, envelope.parts, "DWP", org.encryption)


def test_unframe_refuses_trailing_bytes() -> None:
    """A frame with bytes after its last part is refused whole."""
    try:
        unframe(net.sealed().framed() + b"\x00")
    except EnvelopeMalformed:
        return
    raise AssertionError("trailing bytes were accepted")


# -- message content (part 0 of a message envelope) ---------------------------------------

_addresses = st.builds(
    Address,
    st.sampled_from(["E09000030", "MPS", "DWP", "HMRC"]),
    st.one_of(st.none(), st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)),
)
_attachments = st.builds(
    AttachmentInfo,
    index=st.integers(1, 100),
    name=st.text(min_size=1, max_size=30),
    media_type=st.sampled_from(["text/plain", "application/pdf"]),
    size=st.integers(0, 2**40),
    sha256=st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
)
_contents = st.builds(
    MessageContent,
    sender=st.from_regex(r"[a-z0-9.]{1,20}@E09000030", fullmatch=True),
    to=st.lists(_addresses, min_size=1, max_size=3).map(tuple),
    cc=st.lists(_addresses, max_size=3).map(tuple),
    subject=st.text(max_size=50),
    body=st.text(max_size=200),
    marking=st.sampled_from(["OFFICIAL", "OFFICIAL-SENSITIVE"]),
    handling=st.one_of(st.none(), st.text(max_size=50)),
    read_receipt=st.booleans(),
    attachments=st.lists(_attachments, max_size=3).map(tuple),
)
_CONTENT = MessageContent(
    sender="alice@E09000030",
    to=(Address("MPS", "safeguarding"),),
    cc=(Address("DWP"),),
    subject="Referral",
    body="Please see the attached referral.",
    marking="OFFICIAL-SENSITIVE",
    handling="Do not forward.",
    read_receipt=True,
    attachments=(AttachmentInfo(1, "referral.pdf", "application/pdf", 1234, "ab" * 32),),
).to_bytes()


@given(st.one_of(st.binary(max_size=300), json_texts(), mutants(_CONTENT)))
def test_message_content_parses_or_refuses(data: bytes) -> None:
    """A decrypted message part parses or is refused with a gcx error."""
    parse_or_refuse(MessageContent.from_bytes, data)


@given(_contents)
def test_message_content_round_trip(content: MessageContent) -> None:
    """Message content gcx writes reads back equal."""
    assert MessageContent.from_bytes(content.to_bytes()) == content


def test_gcx_errors_are_the_only_refusals() -> None:
    """The helper the properties rest on lets any other exception through."""
    try:
        empty: dict[str, int] = {}
        parse_or_refuse(lambda _: empty["missing"], b"")
    except KeyError:
        pass
    else:
        raise AssertionError("a KeyError was swallowed")
    assert parse_or_refuse(lambda _: (_ for _ in ()).throw(GcxError()), b"") is None
