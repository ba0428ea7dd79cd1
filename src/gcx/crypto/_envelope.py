"""Sealing, verifying and opening envelopes (``gcx.envelope/1``).

The construction, in the order a sender performs it:

1. A fresh 32-byte content key is drawn for each envelope, so one
   envelope's key opens nothing else.
2. Each part is encrypted with AES-256-GCM under that key, with a random
   12-byte nonce written in front of the ciphertext, and associated data
   ``b"gcx.envelope/1 part " + id + b" " + index``: a part moved to another
   position or into another envelope no longer authenticates.
3. The part names and media types (the manifest) are encrypted the same way
   with associated data ``b"gcx.envelope/1 manifest " + id``, so that file
   names, which often name a person, never sit in the clear header.
4. The content key is sealed once per recipient organisation with HPKE
   (RFC 9180, base mode, single shot): KEM ML-KEM-768 + X25519, KDF
   HKDF-SHA256, AEAD AES-256-GCM, and ``info = b"gcx.envelope/1 " + id + b" " +
   organisation``. The hybrid KEM keeps content recorded today unreadable even
   if X25519 falls later; the info string stops a sealed key being replayed
   into another envelope or presented as another organisation's.
5. The header (with the SHA-256 of every ciphertext part) is signed as a DSSE
   document by the sending organisation's Ed25519 key. DSSE holds a list of
   signatures, so an ML-DSA signature can later sit beside it.

A receiving gateway runs :func:`verify_envelope` before it accepts, and needs
no decryption key for it: signature, structure, times, and every part's size
and digest. Only the recipient organisation's key can :func:`open_envelope`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from gcx.crypto._dsse import pae, parse_document, sign_document, verify_document
from gcx.crypto._keys import EncryptionKey, EncryptionPublicKey, SigningKey, VerifyKey
from gcx.crypto._x509 import key_id
from gcx.errors import (
    EnvelopeMalformed,
    EnvelopeUnreadable,
    InputError,
    SignatureInvalid,
)
from gcx.protocol.documents import load_model
from gcx.protocol.envelope import (
    DEFAULT_TTL,
    FORMAT,
    MAX_PARTS,
    MAX_RECIPIENTS,
    PAYLOAD_TYPE,
    EnvelopeHeader,
    Kind,
    Manifest,
    ManifestEntry,
    PartEntry,
    PlainPart,
    SealedKey,
    Sender,
    check_header,
    check_part_digest,
    frame,
    frame_pieces,
)
from gcx.protocol.identifiers import check_organisation_code
from gcx.protocol.marking import parse_marking

_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_KEY_BYTES = 32
_NONCE_BYTES = 12
_LABEL = FORMAT.encode()


def _key_info(envelope_id: str, organisation: str) -> bytes:
    return b"%b %b %b" % (_LABEL, envelope_id.encode(), organisation.encode())


def _part_ad(envelope_id: str, index: int) -> bytes:
    return b"%b part %b %d" % (_LABEL, envelope_id.encode(), index)


def _manifest_ad(envelope_id: str) -> bytes:
    return b"%b manifest %b" % (_LABEL, envelope_id.encode())


def _encrypt(aead: AESGCM, associated: bytes, plaintext: bytes) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, associated)


def _decrypt(aead: AESGCM, associated: bytes, sealed: bytes) -> bytes:
    return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated)


@dataclass(frozen=True)
class SealedEnvelope:
    """What a sender stores in its outbox and sends: the signed header and the ciphertexts."""

    header: EnvelopeHeader
    signed_header: bytes
    parts: tuple[bytes, ...]

    def framed(self) -> bytes:
        return frame(self.signed_header, self.parts)

    @property
    def digest(self) -> str:
        return envelope_digest(self.signed_header, self.parts)


def envelope_digest(signed_header: bytes, parts: Sequence[bytes]) -> str:
    """``sha256:<hex>`` of the framed envelope: what a receipt acknowledges.

    It is computed piece by piece, so the envelope is never joined in memory
    just to be hashed.
    """
    digest = hashlib.sha256()
    for piece in frame_pieces(signed_header, parts):
        digest.update(piece)
    return "sha256:" + digest.hexdigest()


def seal_envelope(
    *,
    kind: Kind,
    sender_org: str,
    sender_user: str,
    sender_key: SigningKey,
    recipients: Mapping[str, EncryptionPublicKey],
    marking: str,
    parts: Sequence[tuple[str, str, bytes]],
    now: dt.datetime,
    ttl: dt.timedelta = DEFAULT_TTL,
    envelope_id: str | None = None,
) -> SealedEnvelope:
    """Encrypt ``parts`` (name, media type, content) to ``recipients`` and sign the header.

    ``recipients`` maps each recipient organisation's code to its encryption
    key from the directory. The marking is parsed here too, so no envelope is
    ever sealed with a marking gcx may not carry.
    """
    decision = parse_marking(marking)
    check_organisation_code(sender_org)
    if not recipients:
        raise InputError("An envelope needs at least one recipient organisation.")
    if len(recipients) > MAX_RECIPIENTS:
        raise InputError(f"An envelope may be addressed to at most {MAX_RECIPIENTS} organisations.")
    for code in recipients:
        check_organisation_code(code)
    if not parts:
        raise InputError("An envelope needs at least one part.")
    if len(parts) > MAX_PARTS:
        raise InputError(f"An envelope may carry at most {MAX_PARTS} parts.")
    entries: list[ManifestEntry] = []
    for index, (name, media_type, _) in enumerate(parts):
        try:
            entries.append(ManifestEntry(index=index, name=name, media_type=media_type))
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise InputError(f"Part {index} cannot be sealed: {reason}.") from exc

    envelope_id = envelope_id or secrets.token_hex(16)
    content_key = secrets.token_bytes(_KEY_BYTES)
    aead = AESGCM(content_key)
    ciphertexts = tuple(
        _encrypt(aead, _part_ad(envelope_id, index), data)
        for index, (_, _, data) in enumerate(parts)
    )
    sealed_manifest = _encrypt(
        aead, _manifest_ad(envelope_id), Manifest(parts=tuple(entries)).to_bytes()
    )
    keys = tuple(
        SealedKey(
            organisation=code,
            sealed_key=base64.b64encode(
                _SUITE.encrypt(content_key, public.hpke_key(), info=_key_info(envelope_id, code))
            ).decode(),
        )
        for code, public in recipients.items()
    )
    try:
        header = EnvelopeHeader(
            id=envelope_id,
            kind=kind,
            sender=Sender(organisation=sender_org, user=sender_user),
            recipients=tuple(recipients),
            marking=decision.marking,
            created_at=now,
            expires_at=now + ttl,
            parts=tuple(
                PartEntry(index=i, size=len(c), sha256=hashlib.sha256(c).hexdigest())
                for i, c in enumerate(ciphertexts)
            ),
            keys=keys,
            manifest=base64.b64encode(sealed_manifest).decode(),
        )
    except ValidationError as exc:
        raise InputError(f"The envelope cannot be sealed: {exc.errors()[0]['msg']}.") from exc
    # The sender refuses to seal what a receiver would refuse (a TTL that is
    # not positive or too long), so the mistake surfaces where it was made.
    check_header(header, now=now)
    signed = sign_document(PAYLOAD_TYPE, header.to_bytes(), sender_key, key_id(sender_key.public))
    return SealedEnvelope(header, signed, ciphertexts)


def unverified_header(signed_header: bytes) -> EnvelopeHeader:
    """The header as it claims to be, WITHOUT checking its signature.

    Only for choosing which organisation's key to verify with (the sender it
    names); then call :func:`verify_envelope`, and trust nothing before that.
    """
    try:
        payload = parse_document(signed_header)[1]
    except ValueError as exc:
        raise EnvelopeMalformed("The envelope header is not a DSSE document.") from exc
    return EnvelopeHeader.from_bytes(payload)


@dataclass(frozen=True)
class ClaimedHeader:
    """A signed header read once: what it claims (unverified) and what its signature covers.

    A receiver reads the header to learn whose key to check it with, then
    verifies it; passing this to :func:`verify_envelope` spares parsing the
    same document twice.
    """

    header: EnvelopeHeader
    signed_header: bytes
    payload_type: str
    payload: bytes
    key_id: str
    signature: bytes


def claimed_header(signed_header: bytes) -> ClaimedHeader:
    """As :func:`unverified_header`, keeping what :func:`verify_envelope` needs."""
    try:
        payload_type, payload, signer, signature = parse_document(signed_header)
    except ValueError as exc:
        raise EnvelopeMalformed("The envelope header is not a DSSE document.") from exc
    header = EnvelopeHeader.from_bytes(payload)
    return ClaimedHeader(header, signed_header, payload_type, payload, signer, signature)


def _verify_claimed(claimed: ClaimedHeader, key: VerifyKey) -> EnvelopeHeader:
    """What verify_document decides, on a document already parsed in its canonical form."""
    if claimed.payload_type != PAYLOAD_TYPE:
        raise SignatureInvalid("The signed document is not of the expected type.")
    if claimed.key_id != key_id(key):
        raise SignatureInvalid()
    try:
        key.verify(claimed.signature, pae(PAYLOAD_TYPE, claimed.payload))
    except (SignatureInvalid, ValueError) as exc:
        raise SignatureInvalid() from exc
    return claimed.header


def verify_envelope(
    signed_header: bytes,
    parts: Sequence[bytes],
    sender_verify_key: VerifyKey,
    *,
    sender_organisation: str,
    now: dt.datetime,
    claimed: ClaimedHeader | None = None,
) -> EnvelopeHeader:
    """Check everything a receiving gateway can check without reading the content.

    ``sender_verify_key`` is ``sender_organisation``'s signing key from the
    directory; the header must name that organisation as its sender, or a key
    of one organisation could vouch for a header claiming to be another's.
    Raises :class:`SignatureInvalid`, :class:`EnvelopeMalformed`,
    :class:`EnvelopeExpired`, :class:`EnvelopeFromFuture` or
    :class:`EnvelopeDigestMismatch`; returns the verified header.
    """
    # verify_document accepts only the exact form sign_document writes. That
    # matters doubly here: the header's bytes are hashed into the envelope
    # digest, so a second spelling of the same signed header would be a
    # second digest, and a receipt would cover bytes the sender never sent.
    if claimed is not None and claimed.signed_header == signed_header:
        # Parsed (in the same canonical-only way) when it was claimed: check the signature.
        header = _verify_claimed(claimed, sender_verify_key)
    else:
        payload = verify_document(
            signed_header, PAYLOAD_TYPE, {key_id(sender_verify_key): sender_verify_key}
        )
        header = EnvelopeHeader.from_bytes(payload)
    if header.sender.organisation != sender_organisation:
        raise SignatureInvalid(
            f"The envelope names {header.sender.organisation} as its sender but is signed "
            f"with the key of {sender_organisation}."
        )
    check_header(header, now=now)
    if len(parts) != len(header.parts):
        raise EnvelopeMalformed(
            f"The envelope carries {len(parts)} parts; its signed header lists {len(header.parts)}."
        )
    for index, part in enumerate(parts):
        check_part_digest(header, index, hashlib.sha256(part).hexdigest(), size=len(part))
    return header


def open_envelope(
    header: EnvelopeHeader, parts: Sequence[bytes], org_code: str, org_key: EncryptionKey
) -> list[PlainPart]:
    """Decrypt an envelope (verified earlier) as recipient organisation ``org_code``.

    Every failure, whatever its cause (not a recipient, wrong key, a sealed
    key moved from another envelope or organisation, a changed byte), raises
    the same :class:`EnvelopeUnreadable` with the same message, and the cause
    is not chained: which layer failed is exactly what a prober wants to learn.
    """
    try:
        entry = header.sealed_key_for(org_code)
        if entry is None or len(parts) != len(header.parts):
            raise ValueError("not openable")
        content_key = _SUITE.decrypt(
            base64.b64decode(entry.sealed_key, validate=True),
            org_key.hpke_key(),
            info=_key_info(header.id, org_code),
        )
        if len(content_key) != _KEY_BYTES:
            raise ValueError("not openable")
        aead = AESGCM(content_key)
        manifest = load_model(
            Manifest,
            _decrypt(
                aead, _manifest_ad(header.id), base64.b64decode(header.manifest, validate=True)
            ),
        )
        if [e.index for e in manifest.parts] != list(range(len(parts))):
            raise ValueError("not openable")
        return [
            PlainPart(e.name, e.media_type, _decrypt(aead, _part_ad(header.id, e.index), part))
            for e, part in zip(manifest.parts, parts, strict=True)
        ]
    except (InvalidTag, ValueError):
        # ValueError covers bad base64 (binascii.Error), pydantic's
        # ValidationError and short inputs the AEAD rejects.
        raise EnvelopeUnreadable() from None
