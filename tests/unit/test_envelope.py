"""Envelopes: sealing, verifying and opening, header checks, and the wire framing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import struct
from collections.abc import Callable

import pytest

from gcx.crypto import EncryptionKey, SigningKey, key_id, sign_document
from gcx.crypto._envelope import (
    SealedEnvelope,
    _key_info,
    _manifest_ad,
    _part_ad,
    claimed_header,
    envelope_digest,
    open_envelope,
    seal_envelope,
    unverified_header,
    verify_envelope,
)
from gcx.errors import (
    EnvelopeDigestMismatch,
    EnvelopeExpired,
    EnvelopeFromFuture,
    EnvelopeMalformed,
    EnvelopeUnreadable,
    GcxError,
    InputError,
    MarkingNotAllowed,
    SignatureInvalid,
)
from gcx.protocol.envelope import (
    DEFAULT_MAX_FRAME_BYTES,
    MAGIC,
    MAX_HEADER_BYTES,
    MAX_PARTS,
    EnvelopeHeader,
    PartEntry,
    PlainPart,
    check_header,
    check_part_digest,
    frame,
    unframe,
)
from gcx.protocol.marking import Marking

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
COUNCIL = "E09000030"
ORGS = ("MPS", "DWP", "E08000025")
OUTSIDER = "HMRC"

PARTS = [
    PlainPart("message.json", "application/vnd.gcx.message+json", b'{"subject":"Referral"}'),
    PlainPart("referral-jane-doe.pdf", "application/pdf", b"%PDF-1.7 " + bytes(range(256)) * 40),
    PlainPart("empty.txt", "text/plain", b""),
]


@pytest.fixture(scope="module")
def sender_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def org_keys() -> dict[str, EncryptionKey]:
    return {code: EncryptionKey.generate() for code in (*ORGS, OUTSIDER)}


def _seal(
    sender_key: SigningKey,
    org_keys: dict[str, EncryptionKey],
    recipients: tuple[str, ...] = ORGS,
    *,
    marking: str = "OFFICIAL-SENSITIVE",
    parts: list[PlainPart] | None = None,
    ttl: dt.timedelta = dt.timedelta(hours=72),
) -> SealedEnvelope:
    return seal_envelope(
        kind="message",
        sender_org=COUNCIL,
        sender_user="alice",
        sender_key=sender_key,
        recipients={code: org_keys[code].public for code in recipients},
        marking=marking,
        parts=PARTS if parts is None else parts,
        now=NOW,
        ttl=ttl,
    )


@pytest.fixture(scope="module")
def sealed(sender_key: SigningKey, org_keys: dict[str, EncryptionKey]) -> SealedEnvelope:
    return _seal(sender_key, org_keys)


def _verify(
    sealed: SealedEnvelope,
    key: SigningKey,
    *,
    signed_header: bytes | None = None,
    parts: list[bytes] | tuple[bytes, ...] | None = None,
    now: dt.datetime = NOW,
) -> EnvelopeHeader:
    return verify_envelope(
        sealed.signed_header if signed_header is None else signed_header,
        sealed.parts if parts is None else parts,
        key.public,
        sender_organisation=COUNCIL,
        now=now,
    )


def _resign(signed_header: bytes, key: SigningKey, change: dict[str, object]) -> bytes:
    """Re-sign a changed header with a genuine key: the sender's own mistakes, not forgery."""
    payload = json.loads(base64.b64decode(json.loads(signed_header)["payload"]))
    payload.update(change)
    body = json.dumps(payload).encode()
    return sign_document("application/vnd.gcx.envelope+json", body, key, key_id(key.public))


# -- round trips ------------------------------------------------------------------------


def test_round_trip_one_recipient(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """One recipient verifies and opens the parts, names and media types intact."""
    envelope = _seal(sender_key, org_keys, ("DWP",))
    header = _verify(envelope, sender_key)
    assert header == envelope.header
    assert header.recipients == ("DWP",)
    assert open_envelope(header, envelope.parts, "DWP", org_keys["DWP"]) == PARTS


@pytest.mark.parametrize("org", ORGS)
def test_round_trip_three_recipients(
    sealed: SealedEnvelope, sender_key: SigningKey, org_keys: dict[str, EncryptionKey], org: str
) -> None:
    """Each of three recipient organisations opens the envelope with its own key."""
    header = _verify(sealed, sender_key)
    assert open_envelope(header, sealed.parts, org, org_keys[org]) == PARTS


def test_header_shows_routing_only(sealed: SealedEnvelope) -> None:
    """The header names organisations, marking, times and sizes, never names or content."""
    header = sealed.header
    assert header.format == "gcx.envelope/1"
    assert header.sender.organisation == COUNCIL and header.sender.user == "alice"
    assert header.recipients == ORGS
    assert [k.organisation for k in header.keys] == list(ORGS)
    assert header.marking is Marking.OFFICIAL_SENSITIVE
    assert header.expires_at - header.created_at == dt.timedelta(hours=72)
    assert [p.size for p in header.parts] == [len(p) for p in sealed.parts]
    wire = sealed.framed()
    for part in PARTS:
        assert part.name.encode() not in wire
        assert part.media_type.encode() not in wire
    assert PARTS[0].data not in wire
    assert PARTS[1].data[:64] not in wire


def test_ciphertext_is_fresh_each_time(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """Sealing the same content twice gives different ids, keys and ciphertexts."""
    first = _seal(sender_key, org_keys, ("DWP",))
    second = _seal(sender_key, org_keys, ("DWP",))
    assert first.header.id != second.header.id
    assert first.parts[0] != second.parts[0]
    assert first.header.keys[0].sealed_key != second.header.keys[0].sealed_key


def test_older_marking_is_mapped_in_header(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """An envelope sealed as RESTRICTED carries OFFICIAL-SENSITIVE."""
    envelope = _seal(sender_key, org_keys, ("DWP",), marking="restricted")
    assert envelope.header.marking is Marking.OFFICIAL_SENSITIVE


def test_secret_is_never_sealed(sender_key: SigningKey, org_keys: dict[str, EncryptionKey]) -> None:
    """Sealing refuses a SECRET marking before any encryption."""
    with pytest.raises(MarkingNotAllowed):
        _seal(sender_key, org_keys, ("DWP",), marking="SECRET")


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("../etc/passwd", "text/plain"),
        ("dir\\file.txt", "text/plain"),
        ("..", "text/plain"),
        ("", "text/plain"),
        ("bell\x07.txt", "text/plain"),
        ("invoice\u202efdp.exe", "application/pdf"),
        ("a" * 256, "text/plain"),
        ("ok.txt", "text"),
        ("ok.txt", "text/plain; charset=utf-8"),
    ],
)
def test_unsafe_part_names_and_types_refused(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey], name: str, media_type: str
) -> None:
    """Part names with paths or control characters, and malformed media types, are refused."""
    with pytest.raises(InputError, match="Part 0 cannot be sealed"):
        _seal(sender_key, org_keys, ("DWP",), parts=[PlainPart(name, media_type, b"x")])


@pytest.mark.parametrize("recipients", [(), ("not a code",)])
def test_bad_recipients_refused_when_sealing(
    sender_key: SigningKey, recipients: tuple[str, ...]
) -> None:
    """Sealing needs at least one recipient, each a valid organisation code."""
    public = EncryptionKey.generate().public
    with pytest.raises(InputError):
        seal_envelope(
            kind="message",
            sender_org=COUNCIL,
            sender_user="alice",
            sender_key=sender_key,
            recipients=dict.fromkeys(recipients, public),
            marking="OFFICIAL",
            parts=PARTS,
            now=NOW,
        )


def test_no_parts_refused_when_sealing(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """An envelope with nothing in it is refused."""
    with pytest.raises(InputError, match="at least one part"):
        _seal(sender_key, org_keys, ("DWP",), parts=[])


@pytest.mark.parametrize("ttl", [dt.timedelta(0), dt.timedelta(hours=-1), dt.timedelta(days=31)])
def test_bad_lifetime_refused_when_sealing(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey], ttl: dt.timedelta
) -> None:
    """A lifetime that is not positive, or longer than receivers keep ids, is refused."""
    with pytest.raises(EnvelopeMalformed):
        _seal(sender_key, org_keys, ("DWP",), ttl=ttl)


# -- what a receiving gateway refuses ------------------------------------------------


@pytest.mark.parametrize("position", [0, 40, 200, 1000, -120, -30, -3])
def test_changed_byte_in_signed_header_refused(
    sealed: SealedEnvelope, sender_key: SigningKey, position: int
) -> None:
    """Any changed byte of the signed header makes verification fail."""
    tampered = bytearray(sealed.signed_header)
    tampered[position] ^= 0x01
    with pytest.raises(SignatureInvalid):
        _verify(sealed, sender_key, signed_header=bytes(tampered))


def test_every_changed_byte_of_the_wire_form_refused(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """Flipping any low bit of any byte of a framed envelope makes the receiver refuse it.

    The low bits matter: they include the unused bits of a final base64
    character, which a plain DSSE check would not notice.
    """
    envelope = _seal(
        sender_key, org_keys, ("DWP",), parts=[PlainPart("a.txt", "text/plain", b"hello")]
    )
    framed = envelope.framed()
    accepted = []
    for position in range(len(framed)):
        for bit in (0x02, 0x04, 0x08):
            changed = bytearray(framed)
            changed[position] ^= bit
            try:
                header, parts = unframe(bytes(changed))
                _verify(envelope, sender_key, signed_header=header, parts=parts)
            except GcxError:
                continue
            accepted.append((position, bit))
    assert accepted == []


def test_non_canonical_signed_header_refused(
    sealed: SealedEnvelope, sender_key: SigningKey
) -> None:
    """The same DSSE document written with other spacing is refused, though its signature holds."""
    spaced = json.dumps(json.loads(sealed.signed_header)).encode()
    assert spaced != sealed.signed_header
    with pytest.raises(SignatureInvalid, match="canonical"):
        _verify(sealed, sender_key, signed_header=spaced)


def test_changed_header_field_with_old_signature_refused(
    sealed: SealedEnvelope, sender_key: SigningKey
) -> None:
    """A header edited (here the recipients) but keeping its signature is refused."""
    document = json.loads(sealed.signed_header)
    payload = json.loads(base64.b64decode(document["payload"]))
    payload["recipients"] = ["MPS", "DWP", "HMRC"]
    document["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(SignatureInvalid):
        _verify(sealed, sender_key, signed_header=json.dumps(document).encode())


def test_wrong_signer_refused(sealed: SealedEnvelope) -> None:
    """A key other than the sender organisation's does not verify the envelope."""
    with pytest.raises(SignatureInvalid):
        _verify(sealed, SigningKey.generate())


def test_sender_must_be_the_key_owner(sealed: SealedEnvelope, sender_key: SigningKey) -> None:
    """A header claiming one sender, checked with another organisation's key, is refused."""
    with pytest.raises(SignatureInvalid, match="names E09000030"):
        verify_envelope(
            sealed.signed_header,
            sealed.parts,
            sender_key.public,
            sender_organisation="E08000025",
            now=NOW,
        )


@pytest.mark.parametrize("index", [0, 1, 2])
def test_changed_byte_in_part_refused(
    sealed: SealedEnvelope, sender_key: SigningKey, index: int
) -> None:
    """A changed byte in any part fails its digest."""
    parts = list(sealed.parts)
    changed = bytearray(parts[index])
    changed[-1] ^= 0x80
    parts[index] = bytes(changed)
    with pytest.raises(EnvelopeDigestMismatch) as caught:
        _verify(sealed, sender_key, parts=parts)
    assert caught.value.code == "envelope-digest-mismatch"


def test_truncated_part_refused(sealed: SealedEnvelope, sender_key: SigningKey) -> None:
    """A part shorter than the header says is refused before hashing it."""
    parts = list(sealed.parts)
    parts[1] = parts[1][:-1]
    with pytest.raises(EnvelopeDigestMismatch, match="bytes, not the"):
        _verify(sealed, sender_key, parts=parts)


def test_swapped_parts_refused(
    sealed: SealedEnvelope, sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """Swapped parts fail verification, and fail to open even if verification is skipped."""
    parts = list(sealed.parts)
    parts[0], parts[1] = parts[1], parts[0]
    with pytest.raises(EnvelopeDigestMismatch):
        _verify(sealed, sender_key, parts=parts)
    with pytest.raises(EnvelopeUnreadable):
        open_envelope(sealed.header, parts, "DWP", org_keys["DWP"])


@pytest.mark.parametrize("count", [2, 4])
def test_missing_or_extra_part_refused(
    sealed: SealedEnvelope, sender_key: SigningKey, count: int
) -> None:
    """A part dropped or added is refused: the signed header fixes the count."""
    parts = [*sealed.parts, b"extra"][:count]
    with pytest.raises(EnvelopeMalformed, match="carries"):
        _verify(sealed, sender_key, parts=parts)


def test_part_moved_between_envelopes_does_not_open(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """A part from another envelope with the same key holder does not authenticate."""
    first = _seal(sender_key, org_keys, ("DWP",))
    second = _seal(sender_key, org_keys, ("DWP",))
    parts = (first.parts[0], second.parts[1], first.parts[2])
    with pytest.raises(EnvelopeUnreadable):
        open_envelope(first.header, parts, "DWP", org_keys["DWP"])


def test_expired_envelope_refused(sealed: SealedEnvelope, sender_key: SigningKey) -> None:
    """At and after its expiry time the envelope is refused as expired."""
    _verify(sealed, sender_key, now=sealed.header.expires_at - dt.timedelta(seconds=1))
    for now in (sealed.header.expires_at, sealed.header.expires_at + dt.timedelta(days=1)):
        with pytest.raises(EnvelopeExpired) as caught:
            _verify(sealed, sender_key, now=now)
        assert caught.value.code == "envelope-expired"


def test_envelope_from_the_future_refused(sealed: SealedEnvelope, sender_key: SigningKey) -> None:
    """An envelope created more than five minutes ahead of our clock is refused."""
    _verify(sealed, sender_key, now=NOW - dt.timedelta(minutes=5))
    with pytest.raises(EnvelopeFromFuture):
        _verify(sealed, sender_key, now=NOW - dt.timedelta(minutes=5, seconds=1))


def test_signed_but_inconsistent_header_refused(
    sealed: SealedEnvelope, sender_key: SigningKey
) -> None:
    """A genuinely signed header whose keys do not match its recipients is refused."""
    signed = _resign(sealed.signed_header, sender_key, {"recipients": ["MPS", "DWP"]})
    with pytest.raises(EnvelopeMalformed, match="one sealed key for each"):
        _verify(sealed, sender_key, signed_header=signed)


@pytest.mark.parametrize(
    "change",
    [
        {"format": "gcx.envelope/2"},
        {"id": "ABCDEF"},
        {"kind": "parcel"},
        {"marking": "SECRET"},
        {"content_aead": "ChaCha20-Poly1305"},
        {"surprise": 1},
        {"created_at": "2026-11-21T09:00:00"},
        {"recipients": []},
    ],
)
def test_signed_header_outside_the_format_refused(
    sealed: SealedEnvelope, sender_key: SigningKey, change: dict[str, object]
) -> None:
    """A signed header with an unknown version, field or value is malformed, not trusted."""
    signed = _resign(sealed.signed_header, sender_key, change)
    with pytest.raises(EnvelopeMalformed) as caught:
        _verify(sealed, sender_key, signed_header=signed)
    assert caught.value.code == "envelope-malformed"


def test_unverified_header_reads_the_claimed_sender(sealed: SealedEnvelope) -> None:
    """The claimed sender can be read, to pick a key, before verifying."""
    assert unverified_header(sealed.signed_header).sender.organisation == COUNCIL
    with pytest.raises(EnvelopeMalformed):
        unverified_header(b"not json")


# -- pure header checks ----------------------------------------------------------------


def test_check_header_refuses_keys_not_matching_recipients(sealed: SealedEnvelope) -> None:
    """A missing, extra or doubled sealed key is refused."""
    header = sealed.header
    variants = [
        header.model_copy(update={"keys": header.keys[:2]}),
        header.model_copy(update={"keys": (*header.keys[:2], header.keys[0])}),
        header.model_copy(update={"recipients": ("MPS", "DWP", "HMRC")}),
    ]
    for variant in variants:
        with pytest.raises(EnvelopeMalformed, match="one sealed key"):
            check_header(variant, now=NOW)


def test_check_header_refuses_duplicate_recipients(sealed: SealedEnvelope) -> None:
    """The same recipient twice is refused."""
    header = sealed.header.model_copy(update={"recipients": ("MPS", "DWP", "DWP")})
    with pytest.raises(EnvelopeMalformed, match="more than once"):
        check_header(header, now=NOW)


def test_check_header_refuses_duplicate_part_index(sealed: SealedEnvelope) -> None:
    """Two parts with the same index are refused."""
    parts = sealed.header.parts
    header = sealed.header.model_copy(update={"parts": (parts[0], parts[1], parts[1])})
    with pytest.raises(EnvelopeMalformed, match="same part index"):
        check_header(header, now=NOW)


def test_check_header_refuses_gaps_in_part_indexes(sealed: SealedEnvelope) -> None:
    """Parts must be numbered 0..n-1 in order, as the wire carries them by position."""
    parts = sealed.header.parts
    gap = parts[2].model_copy(update={"index": 5})
    header = sealed.header.model_copy(update={"parts": (parts[0], parts[1], gap)})
    with pytest.raises(EnvelopeMalformed, match="in order"):
        check_header(header, now=NOW)


def test_check_header_refuses_expiry_before_creation(sealed: SealedEnvelope) -> None:
    """An envelope that expires before it was created is malformed."""
    header = sealed.header.model_copy(update={"expires_at": NOW - dt.timedelta(seconds=1)})
    with pytest.raises(EnvelopeMalformed, match="before it was created"):
        check_header(header, now=NOW)


def test_check_header_needs_an_aware_now(sealed: SealedEnvelope) -> None:
    """A naive 'now' is a programming error, caught rather than compared wrongly."""
    with pytest.raises(ValueError, match="timezone-aware"):
        check_header(sealed.header, now=NOW.replace(tzinfo=None))


def test_check_part_digest(sealed: SealedEnvelope) -> None:
    """The right digest passes; a wrong one, or a part the header lacks, is refused."""
    right = hashlib.sha256(sealed.parts[1]).hexdigest()
    check_part_digest(sealed.header, 1, right, size=len(sealed.parts[1]))
    check_part_digest(sealed.header, 1, right.upper())
    with pytest.raises(EnvelopeDigestMismatch):
        check_part_digest(sealed.header, 0, right)
    with pytest.raises(EnvelopeMalformed, match="no part 3"):
        check_part_digest(sealed.header, 3, right)


def test_part_entry_fields_are_checked() -> None:
    """Part entries need a non-negative index and size and a lower-case hex SHA-256."""
    PartEntry(index=0, size=0, sha256="0" * 64)
    for bad in ({"index": -1}, {"size": -1}, {"sha256": "A" * 64}, {"sha256": "0" * 63}):
        fields: dict[str, object] = {"index": 0, "size": 0, "sha256": "0" * 64, **bad}
        with pytest.raises(ValueError):
            PartEntry.model_validate(fields)


def test_header_bytes_round_trip(sealed: SealedEnvelope) -> None:
    """A header read back from its bytes is the same header."""
    assert EnvelopeHeader.from_bytes(sealed.header.to_bytes()) == sealed.header


# -- opening ---------------------------------------------------------------------------


def test_bindings_are_the_published_strings() -> None:
    """Associated data and HPKE info are exactly the strings docs/protocol.md gives."""
    envelope_id = "0123456789abcdef0123456789abcdef"
    assert _part_ad(envelope_id, 7) == b"gcx.envelope/1 part " + envelope_id.encode() + b" 7"
    assert _manifest_ad(envelope_id) == b"gcx.envelope/1 manifest " + envelope_id.encode()
    assert _key_info(envelope_id, "DWP") == b"gcx.envelope/1 " + envelope_id.encode() + b" DWP"


def test_non_recipient_cannot_open(
    sealed: SealedEnvelope, org_keys: dict[str, EncryptionKey]
) -> None:
    """An organisation not addressed, or a recipient's code with another key, cannot open."""
    with pytest.raises(EnvelopeUnreadable):
        open_envelope(sealed.header, sealed.parts, OUTSIDER, org_keys[OUTSIDER])
    with pytest.raises(EnvelopeUnreadable):
        open_envelope(sealed.header, sealed.parts, "DWP", org_keys[OUTSIDER])


def test_sealed_key_is_bound_to_its_organisation(
    sealed: SealedEnvelope, org_keys: dict[str, EncryptionKey]
) -> None:
    """A sealed key for MPS presented as DWP's opens for neither key."""
    mps, dwp, other = sealed.header.keys
    moved = dwp.model_copy(update={"sealed_key": mps.sealed_key})
    header = sealed.header.model_copy(update={"keys": (mps, moved, other)})
    for key in (org_keys["MPS"], org_keys["DWP"]):
        with pytest.raises(EnvelopeUnreadable):
            open_envelope(header, sealed.parts, "DWP", key)
    assert open_envelope(header, sealed.parts, "MPS", org_keys["MPS"]) == PARTS


def test_sealed_key_is_bound_to_its_envelope(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """A sealed key replayed into another envelope's header does not open it."""
    first = _seal(sender_key, org_keys, ("DWP",))
    second = _seal(sender_key, org_keys, ("DWP",))
    replayed = second.header.model_copy(update={"keys": first.header.keys})
    with pytest.raises(EnvelopeUnreadable):
        open_envelope(replayed, second.parts, "DWP", org_keys["DWP"])


def test_open_failures_are_indistinguishable(
    sealed: SealedEnvelope, org_keys: dict[str, EncryptionKey]
) -> None:
    """Every way of failing to open gives the same code and message, with no cause chained."""
    bad_manifest = sealed.header.model_copy(update={"manifest": "AAAA"})
    changed = (sealed.parts[0][:-1] + bytes([sealed.parts[0][-1] ^ 0x01]), *sealed.parts[1:])
    attempts: list[Callable[[], object]] = [
        lambda: open_envelope(sealed.header, sealed.parts, OUTSIDER, org_keys[OUTSIDER]),
        lambda: open_envelope(sealed.header, sealed.parts, "DWP", org_keys["MPS"]),
        lambda: open_envelope(bad_manifest, sealed.parts, "DWP", org_keys["DWP"]),
        lambda: open_envelope(sealed.header, changed, "DWP", org_keys["DWP"]),
        lambda: open_envelope(sealed.header, sealed.parts[:2], "DWP", org_keys["DWP"]),
    ]
    seen: set[tuple[str, str]] = set()
    for attempt in attempts:
        with pytest.raises(EnvelopeUnreadable) as caught:
            attempt()
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        seen.add((caught.value.code, caught.value.message))
    assert seen == {("envelope-unreadable", EnvelopeUnreadable.default_message)}


# -- framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("parts", [[], [b""], [b"a", b"", b"c" * 1000]])
def test_frame_round_trip(parts: list[bytes]) -> None:
    """unframe gives back exactly the header and parts that were framed."""
    assert unframe(frame(b'{"h":1}', parts)) == (b'{"h":1}', parts)


def test_frame_layout() -> None:
    """The layout is magic, 4-byte header length, header, 2-byte count, 8-byte lengths."""
    assert frame(b"HDR", [b"xy"]) == (
        b"GCXE1\n" + b"\x00\x00\x00\x03HDR" + b"\x00\x01" + b"\x00" * 7 + b"\x02xy"
    )


def test_sealed_envelope_frames_and_unframes(sealed: SealedEnvelope) -> None:
    """A sealed envelope survives the wire."""
    header, parts = unframe(sealed.framed())
    assert header == sealed.signed_header and tuple(parts) == sealed.parts


def test_every_truncation_refused() -> None:
    """Cutting the framed bytes anywhere is refused as malformed."""
    framed = frame(b"HEADER", [b"one", b"", b"three"])
    for cut in range(len(framed)):
        with pytest.raises(EnvelopeMalformed):
            unframe(framed[:cut])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GCXE2\n" + b"\x00" * 6, "magic"),
        (b"", "magic"),
        (frame(b"H", [b"p"]) + b"\x00", "after its last part"),
        (MAGIC + struct.pack(">I", MAX_HEADER_BYTES + 1), "larger than a gateway accepts"),
        (MAGIC + struct.pack(">I", 1) + b"H" + struct.pack(">H", MAX_PARTS + 1), "at most"),
        (MAGIC + struct.pack(">I", 1) + b"H" + b"\x00\x01" + b"\xff" * 8, "truncated"),
        (MAGIC + struct.pack(">I", 5) + b"H", "truncated inside the header"),
    ],
)
def test_malformed_frames_refused(data: bytes, message: str) -> None:
    """Bad magic, trailing data, oversized header or count and lying lengths are refused."""
    with pytest.raises(EnvelopeMalformed, match=message) as caught:
        unframe(data)
    assert caught.value.code == "envelope-malformed"


def test_oversized_frame_refused() -> None:
    """Data over the size limit is refused before it is parsed."""
    framed = frame(b"H", [b"x" * 100])
    assert unframe(framed, max_size=len(framed))[1] == [b"x" * 100]
    with pytest.raises(EnvelopeMalformed, match="larger than"):
        unframe(framed, max_size=len(framed) - 1)
    assert DEFAULT_MAX_FRAME_BYTES > 100 * 1024 * 1024


def test_frame_refuses_what_unframe_would() -> None:
    """The sender cannot frame more parts, or a larger header, than a receiver accepts."""
    with pytest.raises(EnvelopeMalformed):
        frame(b"H", [b""] * (MAX_PARTS + 1))
    with pytest.raises(EnvelopeMalformed):
        frame(b"H" * (MAX_HEADER_BYTES + 1), [])


def test_envelope_digest_covers_the_framed_bytes(sealed: SealedEnvelope) -> None:
    """The digest is SHA-256 of the framed envelope and changes with any byte of it."""
    digest = envelope_digest(sealed.signed_header, sealed.parts)
    assert digest == "sha256:" + hashlib.sha256(sealed.framed()).hexdigest()
    assert sealed.digest == digest
    flipped = bytes([sealed.parts[1][-1] ^ 0x01])
    changed = (sealed.parts[0], sealed.parts[1][:-1] + flipped, sealed.parts[2])
    assert envelope_digest(sealed.signed_header, changed) != digest


# -- the header read once (the receiver's path) -------------------------------------------


def test_a_header_read_once_is_verified_as_strictly_as_one_read_twice(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey]
) -> None:
    """The receiver parses the signed header once (claimed_header) and verifies that: every
    changed bit of the wire form is still refused, and the untouched envelope is accepted."""
    envelope = _seal(
        sender_key, org_keys, ("DWP",), parts=[PlainPart("a.txt", "text/plain", b"hello")]
    )
    framed = envelope.framed()

    def verified(wire: bytes) -> EnvelopeHeader:
        header, parts = unframe(wire)
        return verify_envelope(
            header,
            parts,
            sender_key.public,
            sender_organisation=COUNCIL,
            now=NOW,
            claimed=claimed_header(header),
        )

    assert verified(framed) == unverified_header(envelope.signed_header)
    accepted = []
    for position in range(len(framed)):
        for bit in (0x02, 0x04, 0x08):
            changed = bytearray(framed)
            changed[position] ^= bit
            try:
                verified(bytes(changed))
            except GcxError:
                continue
            accepted.append((position, bit))
    assert accepted == []


def test_a_header_read_once_refuses_another_key_type_or_sender(
    sealed: SealedEnvelope, sender_key: SigningKey
) -> None:
    """Through the read-once path: another key, another payload type signed by the right key,
    and a sender the key does not belong to are refused as verify_document refuses them."""
    claimed = claimed_header(sealed.signed_header)

    def verify(key: SigningKey, signed: bytes, sender: str = COUNCIL) -> EnvelopeHeader:
        return verify_envelope(
            signed,
            sealed.parts,
            key.public,
            sender_organisation=sender,
            now=NOW,
            claimed=claimed_header(signed),
        )

    with pytest.raises(SignatureInvalid):
        verify(SigningKey.generate(), sealed.signed_header)
    other_type = sign_document(
        "application/vnd.gcx.other+json", claimed.payload, sender_key, key_id(sender_key.public)
    )
    with pytest.raises(SignatureInvalid, match="expected type"):
        verify(sender_key, other_type)
    with pytest.raises(SignatureInvalid, match="names E09000030"):
        verify(sender_key, sealed.signed_header, "E08000025")


def test_a_header_read_for_another_document_is_not_trusted(
    sender_key: SigningKey, org_keys: dict[str, EncryptionKey], sealed: SealedEnvelope
) -> None:
    """A claimed header passed with a different signed header is ignored: the document given
    is parsed and verified itself."""
    other = _seal(sender_key, org_keys)
    header = verify_envelope(
        other.signed_header,
        other.parts,
        sender_key.public,
        sender_organisation=COUNCIL,
        now=NOW,
        claimed=claimed_header(sealed.signed_header),
    )
    assert header.id == unverified_header(other.signed_header).id != sealed_id(sealed)


def sealed_id(sealed: SealedEnvelope) -> str:
    return unverified_header(sealed.signed_header).id
