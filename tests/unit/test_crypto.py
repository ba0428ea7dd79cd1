"""The crypto recipes: keys, keys at rest, DSSE documents, certificates and tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests may build malformed requests that gcx.crypto (rightly) cannot produce.
from cryptography import x509  # noqa: TID251
from cryptography.hazmat.primitives import serialization  # noqa: TID251
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: TID251
from cryptography.x509.oid import NameOID  # noqa: TID251

from gcx import crypto
from gcx.errors import CryptoError, CsrInvalid, KeyDecryptionFailed, SignatureInvalid

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)
PASSPHRASE = b"correct horse battery staple"
DOC_TYPE = "application/vnd.gcx.test+json"


# -- signing keys ------------------------------------------------------------


def test_signature_verifies_with_the_matching_public_key() -> None:
    """A signature made by a SigningKey verifies with its public half."""
    key = crypto.SigningKey.generate()
    key.public.verify(key.sign(b"hello"), b"hello")


def test_verify_raises_on_changed_data() -> None:
    """Verification of changed data raises SignatureInvalid rather than returning False."""
    key = crypto.SigningKey.generate()
    signature = key.sign(b"hello")
    with pytest.raises(SignatureInvalid):
        key.public.verify(signature, b"hellp")


def test_verify_raises_on_changed_signature() -> None:
    """A signature with one bit flipped does not verify."""
    key = crypto.SigningKey.generate()
    signature = bytearray(key.sign(b"hello"))
    signature[10] ^= 0x01
    with pytest.raises(SignatureInvalid):
        key.public.verify(bytes(signature), b"hello")


def test_verify_raises_for_another_key() -> None:
    """A signature by one key does not verify under another key."""
    signature = crypto.SigningKey.generate().sign(b"hello")
    with pytest.raises(SignatureInvalid):
        crypto.SigningKey.generate().public.verify(signature, b"hello")


def test_verify_key_round_trips_through_base64() -> None:
    """VerifyKey.b64 and from_b64 round trip to the same 32-byte key."""
    public = crypto.SigningKey.generate().public
    again = crypto.VerifyKey.from_b64(public.b64())
    assert again.raw() == public.raw()
    assert len(public.raw()) == 32


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_verify_key_from_bad_base64_raises_crypto_error(text: str) -> None:
    """A public signing key that is not base64 of 32 bytes raises CryptoError."""
    with pytest.raises(CryptoError):
        crypto.VerifyKey.from_b64(text)


# -- encryption keys ----------------------------------------------------------


def test_encryption_public_key_is_1216_bytes() -> None:
    """The hybrid public key is ML-KEM-768 (1184 bytes) then X25519 (32 bytes)."""
    public = crypto.EncryptionKey.generate().public
    assert len(public.encoded) == 1216


def test_encryption_public_key_round_trips_through_base64() -> None:
    """EncryptionPublicKey.from_b64(b64()) gives the same encoding and a usable HPKE key."""
    public = crypto.EncryptionKey.generate().public
    again = crypto.EncryptionPublicKey.from_b64(public.b64())
    assert again == public
    again.hpke_key()


@pytest.mark.parametrize(
    "text", ["***", base64.b64encode(b"x" * 1215).decode(), base64.b64encode(b"x" * 1217).decode()]
)
def test_encryption_public_key_of_wrong_form_raises_crypto_error(text: str) -> None:
    """Bad base64 or a key of the wrong length raises CryptoError."""
    with pytest.raises(CryptoError):
        crypto.EncryptionPublicKey.from_b64(text)


# -- keys at rest -------------------------------------------------------------


def test_saved_signing_key_loads_back(tmp_path: Path) -> None:
    """A signing key saved with a passphrase loads back as the same key."""
    key = crypto.SigningKey.generate()
    path = tmp_path / "keys" / "signing.key"
    crypto.save_signing_key(path, key, PASSPHRASE)
    loaded = crypto.load_signing_key(path, PASSPHRASE)
    assert loaded.public.raw() == key.public.raw()
    key.public.verify(loaded.sign(b"data"), b"data")


def test_saved_encryption_key_loads_back(tmp_path: Path) -> None:
    """An encryption key saved with a passphrase loads back with the same public key."""
    key = crypto.EncryptionKey.generate()
    path = tmp_path / "encryption.key"
    crypto.save_encryption_key(path, key, PASSPHRASE)
    assert crypto.load_encryption_key(path, PASSPHRASE).public == key.public


def test_saved_keys_have_mode_0600(tmp_path: Path) -> None:
    """Private key files are readable and writable by their owner only."""
    crypto.save_signing_key(tmp_path / "s.key", crypto.SigningKey.generate(), PASSPHRASE)
    crypto.save_encryption_key(tmp_path / "e.key", crypto.EncryptionKey.generate(), PASSPHRASE)
    for name in ("s.key", "e.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_saved_keys_are_encrypted_pkcs8(tmp_path: Path) -> None:
    """Key files hold only encrypted PKCS#8 PEM blocks, never a clear private key."""
    crypto.save_signing_key(tmp_path / "s.key", crypto.SigningKey.generate(), PASSPHRASE)
    crypto.save_encryption_key(tmp_path / "e.key", crypto.EncryptionKey.generate(), PASSPHRASE)
    for name in ("s.key", "e.key"):
        path = tmp_path / name
        assert crypto.private_key_is_encrypted(path)
        assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in path.read_bytes()
    assert (tmp_path / "e.key").read_bytes().count(b"BEGIN ENCRYPTED PRIVATE KEY") == 2


def test_private_key_is_encrypted_is_false_for_a_clear_key(tmp_path: Path) -> None:
    """The self-check reports a clear PKCS#8 key as not encrypted."""
    clear = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "clear.key"
    path.write_bytes(clear)
    assert not crypto.private_key_is_encrypted(path)


def test_signing_key_with_wrong_passphrase_raises(tmp_path: Path) -> None:
    """Loading a signing key with the wrong passphrase raises KeyDecryptionFailed."""
    path = tmp_path / "s.key"
    crypto.save_signing_key(path, crypto.SigningKey.generate(), PASSPHRASE)
    with pytest.raises(KeyDecryptionFailed):
        crypto.load_signing_key(path, b"not the passphrase")


def test_encryption_key_with_wrong_passphrase_raises(tmp_path: Path) -> None:
    """Loading an encryption key with the wrong passphrase raises KeyDecryptionFailed."""
    path = tmp_path / "e.key"
    crypto.save_encryption_key(path, crypto.EncryptionKey.generate(), PASSPHRASE)
    with pytest.raises(KeyDecryptionFailed):
        crypto.load_encryption_key(path, b"not the passphrase")


def test_loading_an_encryption_key_file_as_a_signing_key_raises(tmp_path: Path) -> None:
    """A file holding another kind of key is refused with KeyDecryptionFailed."""
    path = tmp_path / "e.key"
    crypto.save_encryption_key(path, crypto.EncryptionKey.generate(), PASSPHRASE)
    with pytest.raises(KeyDecryptionFailed):
        crypto.load_signing_key(path, PASSPHRASE)


def test_loading_a_signing_key_file_as_an_encryption_key_raises(tmp_path: Path) -> None:
    """A signing key file is not accepted as an encryption key pair."""
    path = tmp_path / "s.key"
    crypto.save_signing_key(path, crypto.SigningKey.generate(), PASSPHRASE)
    with pytest.raises(KeyDecryptionFailed):
        crypto.load_encryption_key(path, PASSPHRASE)


# -- DSSE documents ------------------------------------------------------------


def _signed(payload: bytes) -> tuple[bytes, crypto.SigningKey, str]:
    key = crypto.SigningKey.generate()
    kid = crypto.key_id(key.public)
    return crypto.sign_document(DOC_TYPE, payload, key, kid), key, kid


def _with_payload(document: bytes, payload: bytes) -> bytes:
    envelope = json.loads(document)
    envelope["payload"] = base64.b64encode(payload).decode()
    return json.dumps(envelope).encode()


def test_pae_has_the_dsse_v1_format() -> None:
    """pae is exactly b'DSSEv1 <len> <type> <len> <body>' with byte lengths."""
    assert crypto.pae("t/x", b"hello") == b"DSSEv1 3 t/x 5 hello"
    assert crypto.pae("é", b"") == b"DSSEv1 2 \xc3\xa9 0 "


def test_signed_document_round_trips() -> None:
    """verify_document returns the exact payload signed by a trusted key."""
    payload = b'{"a": 1, "b": [1, 2, 3]}'
    document, key, kid = _signed(payload)
    assert crypto.verify_document(document, DOC_TYPE, {kid: key.public}) == payload
    assert crypto.signature_key_ids(document) == [kid]


def test_signature_covers_the_pae_of_the_payload() -> None:
    """The DSSE signature is an Ed25519 signature over pae(type, payload)."""
    payload = b"body"
    document, key, _ = _signed(payload)
    envelope = json.loads(document)
    assert envelope["payloadType"] == DOC_TYPE
    assert base64.b64decode(envelope["payload"]) == payload
    key.public.verify(
        base64.b64decode(envelope["signatures"][0]["sig"]), crypto.pae(DOC_TYPE, payload)
    )


def test_one_changed_payload_byte_anywhere_is_refused() -> None:
    """Changing any single byte of the payload makes verification raise SignatureInvalid."""
    payload = bytes(range(48))
    document, key, kid = _signed(payload)
    trusted = {kid: key.public}
    for index in range(len(payload)):
        changed = bytearray(payload)
        changed[index] ^= 0x01
        with pytest.raises(SignatureInvalid):
            crypto.verify_document(_with_payload(document, bytes(changed)), DOC_TYPE, trusted)


def test_changed_signature_is_refused() -> None:
    """Changing any byte of the signature makes verification raise SignatureInvalid."""
    document, key, kid = _signed(b"payload")
    envelope = json.loads(document)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    for index in range(len(signature)):
        changed = bytearray(signature)
        changed[index] ^= 0x80
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(changed)).decode()
        with pytest.raises(SignatureInvalid):
            crypto.verify_document(json.dumps(envelope).encode(), DOC_TYPE, {kid: key.public})


def test_wrong_payload_type_is_refused() -> None:
    """A document verified as another payload type raises SignatureInvalid."""
    document, key, kid = _signed(b"payload")
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(document, "application/other", {kid: key.public})


def test_relabelled_payload_type_is_refused() -> None:
    """Rewriting payloadType in the envelope breaks the signature, which covers the type."""
    document, key, kid = _signed(b"payload")
    envelope = json.loads(document)
    envelope["payloadType"] = "application/other"
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(
            json.dumps(envelope).encode(), "application/other", {kid: key.public}
        )


def test_untrusted_key_id_is_refused() -> None:
    """A document signed by a key that is not in the trusted map raises SignatureInvalid."""
    document, key, _ = _signed(b"payload")
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(document, DOC_TYPE, {"someone-else": key.public})


def test_trusted_key_id_with_another_key_is_refused() -> None:
    """A document claiming a trusted key id but signed by another key is refused."""
    document, _, kid = _signed(b"payload")
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(document, DOC_TYPE, {kid: crypto.SigningKey.generate().public})


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"not json",
        b"[]",
        b'{"payloadType": "application/vnd.gcx.test+json"}',
        b'{"payloadType": "application/vnd.gcx.test+json", "payload": "!!", "signatures": []}',
        b'{"payloadType": "application/vnd.gcx.test+json", "payload": "", "signatures": {}}',
    ],
)
def test_malformed_documents_raise_signature_invalid(document: bytes) -> None:
    """Anything that is not a well-formed DSSE envelope raises SignatureInvalid, opaquely."""
    key = crypto.SigningKey.generate()
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(document, DOC_TYPE, {crypto.key_id(key.public): key.public})


def _extra_signature(envelope: dict[str, Any]) -> None:
    other = crypto.SigningKey.generate()
    payload = base64.b64decode(envelope["payload"])
    signature = base64.b64encode(other.sign(crypto.pae(DOC_TYPE, payload))).decode()
    envelope["signatures"].insert(0, {"keyid": crypto.key_id(other.public), "sig": signature})


def _reordered(envelope: dict[str, Any]) -> dict[str, Any]:
    return {key: envelope[key] for key in ("payload", "payloadType", "signatures")}


# Each change keeps the signature over the payload valid: only the wrapper moves.
_WRAPPER_CHANGES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "extra signature by another key": _extra_signature,
    "extra signature entry with an unknown key id": lambda e: e["signatures"].append(
        {"keyid": "0" * 64, "sig": e["signatures"][0]["sig"]}
    ),
    "extra field in the wrapper": lambda e: e.update(note="unsigned"),
    "extra field in the signature entry": lambda e: e["signatures"][0].update(note="x"),
    "reordered wrapper keys": _reordered,
    "reordered signature keys": lambda e: e.update(
        signatures=[{"sig": e["signatures"][0]["sig"], "keyid": e["signatures"][0]["keyid"]}]
    ),
}


@pytest.mark.parametrize("change", sorted(_WRAPPER_CHANGES))
def test_wrapper_not_in_its_one_form_refused(change: str) -> None:
    """A DSSE wrapper with an extra or reordered field or signature is refused, though signed."""
    payload = b"payload"
    document, key, kid = _signed(payload)
    envelope = json.loads(document)
    envelope = _WRAPPER_CHANGES[change](envelope) or envelope
    tampered = json.dumps(envelope, separators=(",", ":")).encode()
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(tampered, DOC_TYPE, {kid: key.public})


@pytest.mark.parametrize(
    "respell",
    [
        lambda d: d.replace(b'","', b'", "', 1),
        lambda d: d.replace(b'"payload":', b'"payload":"AAAA","payload":', 1),
        lambda d: d + b"\n",
    ],
    ids=["white space", "repeated key", "trailing newline"],
)
def test_wrapper_respelled_refused(respell: Callable[[bytes], bytes]) -> None:
    """The same wrapper written another way (spaces, a repeated key, a newline) is refused."""
    document, key, kid = _signed(b"payload")
    with pytest.raises(SignatureInvalid):
        crypto.verify_document(respell(document), DOC_TYPE, {kid: key.public})


def test_canonical_wrapper_verifies() -> None:
    """The form sign_document writes is the form verify_document accepts."""
    document, key, kid = _signed(b"payload")
    assert crypto.verify_document(document, DOC_TYPE, {kid: key.public}) == b"payload"
    assert crypto.signature_key_ids(document) == [kid]


# -- X.509 ------------------------------------------------------------------


def _root(network: str = "test-net") -> tuple[crypto.SigningKey, crypto.Certificate]:
    key = crypto.SigningKey.generate()
    return key, crypto.create_network_root(key, network, NOW, YEAR * 10)


def _raw_csr(
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey, uris: list[str] | None
) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alpha")])
    )
    if uris is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris]),
            critical=False,
        )
    algorithm = None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives import hashes  # noqa: TID251

        algorithm = hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)


def test_network_root_is_self_signed_and_named() -> None:
    """The root certificate names the network and verifies as issued by itself."""
    _, root = _root("test-net")
    assert root.organisation_name == "test-net"
    assert root.common_name == "test-net root"
    root.verify_issued_by(root)
    assert root.not_after == NOW + YEAR * 10


def test_enrolment_request_round_trips() -> None:
    """parse_enrolment_request reads back the gateway name, organisations and key."""
    tls_key = crypto.SigningKey.generate()
    pem = crypto.build_enrolment_request(tls_key, "alpha", ["E09000030", "DWP"])
    info = crypto.parse_enrolment_request(pem)
    assert info.gateway_name == "alpha"
    assert info.organisation_codes == ("E09000030", "DWP")
    assert info.public_key.raw() == tls_key.public.raw()
    assert info.pem == pem


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_garbage_enrolment_request_raises_csr_invalid(pem: bytes) -> None:
    """Input that is not a PEM PKCS#10 request raises CsrInvalid."""
    with pytest.raises(CsrInvalid):
        crypto.parse_enrolment_request(pem)


def test_enrolment_request_without_san_raises_csr_invalid() -> None:
    """A request with no subjectAltName names no gateway and is refused."""
    pem = _raw_csr(ed25519.Ed25519PrivateKey.generate(), None)
    with pytest.raises(CsrInvalid, match="subjectAltName"):
        crypto.parse_enrolment_request(pem)


def test_enrolment_request_without_organisations_raises_csr_invalid() -> None:
    """A request naming a gateway but no organisation is refused."""
    pem = crypto.build_enrolment_request(crypto.SigningKey.generate(), "alpha", [])
    with pytest.raises(CsrInvalid, match="organisation"):
        crypto.parse_enrolment_request(pem)


def test_enrolment_request_with_two_gateways_raises_csr_invalid() -> None:
    """A request naming two gateways is refused."""
    pem = _raw_csr(
        ed25519.Ed25519PrivateKey.generate(),
        ["urn:gcx:gateway:alpha", "urn:gcx:gateway:beta", "urn:gcx:org:DWP"],
    )
    with pytest.raises(CsrInvalid, match="exactly one gateway"):
        crypto.parse_enrolment_request(pem)


def test_enrolment_request_for_non_ed25519_key_raises_csr_invalid() -> None:
    """A request for a key other than Ed25519 is refused."""
    pem = _raw_csr(
        ec.generate_private_key(ec.SECP256R1()), ["urn:gcx:gateway:alpha", "urn:gcx:org:DWP"]
    )
    with pytest.raises(CsrInvalid, match="Ed25519"):
        crypto.parse_enrolment_request(pem)


def test_enrolment_request_with_broken_self_signature_raises_csr_invalid() -> None:
    """A request whose self-signature does not verify is refused."""
    pem = crypto.build_enrolment_request(crypto.SigningKey.generate(), "alpha", ["DWP"])
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrInvalid, match="self-signature"):
        crypto.parse_enrolment_request(tampered)


def _gateway_certificate() -> tuple[crypto.Certificate, crypto.Certificate, crypto.SigningKey]:
    root_key, root = _root()
    tls_key = crypto.SigningKey.generate()
    info = crypto.parse_enrolment_request(
        crypto.build_enrolment_request(tls_key, "alpha", ["E09000030", "DWP"])
    )
    cert = crypto.issue_gateway_certificate(
        root_key, root, info, ["127.0.0.1", "alpha.example"], NOW, YEAR
    )
    return cert, root, tls_key


def test_gateway_certificate_is_issued_by_the_root() -> None:
    """A gateway certificate verifies as issued by the root that signed it."""
    cert, root, _ = _gateway_certificate()
    cert.verify_issued_by(root)


def test_gateway_certificate_is_not_issued_by_another_root() -> None:
    """Against another network's root, even one with the same name, verification raises."""
    cert, _, _ = _gateway_certificate()
    for network in ("other-net", "test-net"):
        _, other = _root(network)
        with pytest.raises(SignatureInvalid):
            cert.verify_issued_by(other)


def test_gateway_certificate_names_gateway_and_organisations() -> None:
    """The SAN carries urn:gcx:gateway:NAME and urn:gcx:org:CODE for each organisation."""
    cert, _, tls_key = _gateway_certificate()
    uris = cert.uris()
    assert "urn:gcx:gateway:alpha" in uris
    assert "urn:gcx:org:E09000030" in uris
    assert "urn:gcx:org:DWP" in uris
    assert cert.gateway_name == "alpha"
    assert cert.organisation_codes == ["E09000030", "DWP"]
    assert cert.common_name == "alpha"
    assert cert.public_key().raw() == tls_key.public.raw()


def test_gateway_certificate_facts() -> None:
    """Fingerprint is SHA-256 of the DER, serial is hex, expiry is now + validity."""
    cert, _, _ = _gateway_certificate()
    assert cert.fingerprint == hashlib.sha256(cert.der).hexdigest()
    assert int(cert.serial, 16) == cert.cert.serial_number
    assert cert.not_after == NOW + YEAR
    assert cert.not_before <= NOW
    assert crypto.Certificate.from_pem(cert.pem).fingerprint == cert.fingerprint
    assert crypto.Certificate.from_der(cert.der).fingerprint == cert.fingerprint


def test_organisation_certificate_binds_code_to_key() -> None:
    """An organisation certificate names only the organisation and carries its key."""
    root_key, root = _root()
    org_key = crypto.SigningKey.generate()
    cert = crypto.issue_organisation_certificate(
        root_key, root, "DWP", "Department for Work and Pensions", org_key.public, NOW, YEAR
    )
    cert.verify_issued_by(root)
    assert cert.organisation_codes == ["DWP"]
    assert cert.gateway_name is None
    assert cert.organisation_name == "Department for Work and Pensions"
    assert cert.public_key().raw() == org_key.public.raw()


def test_certificate_from_bad_pem_raises_crypto_error() -> None:
    """Certificate.from_pem on garbage raises CryptoError."""
    with pytest.raises(CryptoError):
        crypto.Certificate.from_pem(b"garbage")


def test_key_id_is_sha256_of_raw_public_key() -> None:
    """key_id is the lower-case hex SHA-256 of the raw public key."""
    public = crypto.SigningKey.generate().public
    assert crypto.key_id(public) == hashlib.sha256(public.raw()).hexdigest()


# -- tokens -----------------------------------------------------------------


def test_new_token_has_prefix_and_is_fresh() -> None:
    """new_token starts with its prefix and an underscore and is different every time."""
    first, second = crypto.new_token("gcxo"), crypto.new_token("gcxo")
    assert first.startswith("gcxo_")
    assert len(first) > len("gcxo_") + 40
    assert first != second


def test_hash_token_is_sha256_hex() -> None:
    """hash_token is the SHA-256 of the token, as 64 lower-case hex characters."""
    assert crypto.hash_token("abc") == hashlib.sha256(b"abc").hexdigest()


def test_token_matches_only_its_own_hash() -> None:
    """token_matches is true for the token's hash and false for any other token."""
    token = crypto.new_token("gcxa")
    stored = crypto.hash_token(token)
    assert crypto.token_matches(token, stored)
    assert not crypto.token_matches(token + "x", stored)
    assert not crypto.token_matches(crypto.new_token("gcxa"), stored)


def test_an_encryption_key_s_public_half_is_derived_once_and_opens_what_it_sealed() -> None:
    """The public key is kept with the private one (a gateway seals every message to its
    own organisation), and is the one that matches it."""
    own = crypto.EncryptionKey.generate()
    assert own.public is own.public
    assert own.public == crypto.EncryptionPublicKey(own.public.encoded)
    sealed = crypto.seal_envelope(
        kind="message",
        sender_org="E09000030",
        sender_user="benefits.officer",
        sender_key=crypto.SigningKey.generate(),
        recipients={"E09000030": own.public},
        marking="OFFICIAL",
        parts=[("content", "text/plain", b"hello")],
        now=dt.datetime.now(dt.UTC),
    )
    opened = crypto.open_envelope(sealed.header, sealed.parts, "E09000030", own)
    assert [part.data for part in opened] == [b"hello"]
