"""X.509 certificates: the network root, gateway TLS certificates, organisation keys.

Everything is Ed25519. Identity travels in subjectAltName URIs, a standard
place any TLS tool shows: ``urn:gcx:gateway:NAME`` for a gateway and
``urn:gcx:org:CODE`` for each organisation it hosts or a certificate binds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gcx.crypto._keys import SigningKey, VerifyKey
from gcx.errors import CryptoError, CsrInvalid, SignatureInvalid

GATEWAY_URN = "urn:gcx:gateway:"
ORG_URN = "urn:gcx:org:"


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint as lower-case hex, as ``openssl x509 -fingerprint``
    shows it without the colons."""
    return hashlib.sha256(der).hexdigest()


def key_id(key: VerifyKey) -> str:
    """A public key's identifier: SHA-256 of its raw bytes, hex."""
    return hashlib.sha256(key.raw()).hexdigest()


@dataclass(frozen=True)
class Certificate:
    """A parsed certificate with the facts gcx reads from it."""

    cert: x509.Certificate

    @classmethod
    def from_pem(cls, pem: bytes) -> Certificate:
        try:
            return cls(x509.load_pem_x509_certificate(pem))
        except ValueError as exc:
            raise CryptoError("The certificate is not valid PEM.") from exc

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        try:
            return cls(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise CryptoError("The certificate is not valid DER.") from exc

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.der)

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def not_before(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def common_name(self) -> str:
        names = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @property
    def organisation_name(self) -> str:
        names = self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(names[0].value) if names else ""

    def uris(self) -> list[str]:
        try:
            san = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return [str(u) for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)]

    @property
    def organisation_codes(self) -> list[str]:
        return [u[len(ORG_URN) :] for u in self.uris() if u.startswith(ORG_URN)]

    @property
    def gateway_name(self) -> str | None:
        for uri in self.uris():
            if uri.startswith(GATEWAY_URN):
                return uri[len(GATEWAY_URN) :]
        return None

    def public_key(self) -> VerifyKey:
        key = self.cert.public_key()
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise CryptoError("The certificate does not hold an Ed25519 key.")
        return VerifyKey(key)

    def check_organisation_profile(self, code: str) -> None:
        """Raise :class:`CryptoError` unless this is an organisation certificate for ``code``.

        The profile is exactly what :func:`issue_organisation_certificate`
        writes. A certificate binds one organisation's signing key to its
        code and to nothing else: one that also named a gateway, a host or a
        second organisation, or could issue certificates of its own, would
        let one key speak in several capacities, so it is refused however
        validly it was signed. The issuer is checked separately
        (:meth:`verify_issued_by`).
        """
        cert = self.cert
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        except x509.ExtensionNotFound as exc:
            raise CryptoError(
                f"The certificate for {code} lacks an extension an organisation certificate has."
            ) from exc
        if list(names) != [x509.UniformResourceIdentifier(ORG_URN + code)]:
            bound = ", ".join(str(n.value) for n in names) or "nothing"
            raise CryptoError(
                f"The certificate filed for {code} binds {bound}, not exactly {ORG_URN}{code}."
            )
        if not constraints.critical or constraints.value.ca:
            raise CryptoError(
                f"The certificate for {code} is not marked as an end certificate (CA:FALSE)."
            )
        usage_value = usage.value
        if not (
            usage.critical
            and usage_value.digital_signature
            and usage_value.content_commitment
            and not usage_value.key_encipherment
            and not usage_value.data_encipherment
            and not usage_value.key_agreement
            and not usage_value.key_cert_sign
            and not usage_value.crl_sign
        ):
            raise CryptoError(
                f"The certificate for {code} does not have the key usages of an organisation "
                "certificate (digitalSignature and contentCommitment only)."
            )
        try:
            cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            pass
        else:
            raise CryptoError(f"The certificate for {code} has extended key usages; it may not.")
        self.public_key()

    def verify_issued_by(self, issuer: Certificate) -> None:
        """Raise :class:`SignatureInvalid` unless ``issuer`` signed this certificate."""
        try:
            self.cert.verify_directly_issued_by(issuer.cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise SignatureInvalid("The certificate was not issued by this network.") from exc


def create_network_root(
    key: SigningKey, network_name: str, now: dt.datetime, valid_for: dt.timedelta
) -> Certificate:
    """The self-signed root certificate whose file is the network's anchor."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{network_name} root"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, network_name),
        ]
    )
    public = key.public._key
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key._key, None)
    )
    return Certificate(cert)


@dataclass(frozen=True)
class EnrolmentRequestInfo:
    """What central reads from a gateway's PKCS#10 request, after checking its signature."""

    gateway_name: str
    organisation_codes: tuple[str, ...]
    public_key: VerifyKey
    pem: bytes


def build_enrolment_request(
    tls_key: SigningKey, gateway_name: str, organisation_codes: list[str]
) -> bytes:
    """A PKCS#10 request for the gateway's TLS key naming the organisations it hosts."""
    uris: list[x509.GeneralName] = [x509.UniformResourceIdentifier(GATEWAY_URN + gateway_name)]
    uris += [x509.UniformResourceIdentifier(ORG_URN + code) for code in organisation_codes]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gateway_name)]))
        .add_extension(x509.SubjectAlternativeName(uris), critical=False)
        .sign(tls_key._key, None)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def parse_enrolment_request(pem: bytes) -> EnrolmentRequestInfo:
    """Parse and check a PKCS#10 request; raise :class:`CsrInvalid` saying what is wrong."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise CsrInvalid("The enrolment request is not a PEM-encoded PKCS#10 request.") from exc
    if not csr.is_signature_valid:
        raise CsrInvalid("The enrolment request's self-signature does not verify.")
    key = csr.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise CsrInvalid("The enrolment request must be for an Ed25519 key.")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound as exc:
        raise CsrInvalid(
            "The enrolment request names no gateway or organisations (no subjectAltName)."
        ) from exc
    uris = [str(u) for u in san.value.get_values_for_type(x509.UniformResourceIdentifier)]
    gateways = [u[len(GATEWAY_URN) :] for u in uris if u.startswith(GATEWAY_URN)]
    orgs = tuple(u[len(ORG_URN) :] for u in uris if u.startswith(ORG_URN))
    if len(gateways) != 1:
        raise CsrInvalid("The enrolment request must name exactly one gateway.")
    if not orgs:
        raise CsrInvalid("The enrolment request must name at least one hosted organisation.")
    return EnrolmentRequestInfo(gateways[0], orgs, VerifyKey(key), pem)


def _leaf(
    issuer_key: SigningKey,
    issuer: Certificate,
    subject: x509.Name,
    public: ed25519.Ed25519PublicKey,
    san: list[x509.GeneralName],
    usages: list[x509.ObjectIdentifier],
    signing: bool,
    now: dt.datetime,
    valid_for: dt.timedelta,
) -> Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=signing,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public._key),
            critical=False,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return Certificate(builder.sign(issuer_key._key, None))


def _host_names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue_gateway_certificate(
    root_key: SigningKey,
    root: Certificate,
    request: EnrolmentRequestInfo,
    hosts: list[str],
    now: dt.datetime,
    valid_for: dt.timedelta,
) -> Certificate:
    """The TLS certificate a gateway uses as server and as client between peers."""
    san = _host_names(hosts)
    san.append(x509.UniformResourceIdentifier(GATEWAY_URN + request.gateway_name))
    san += [x509.UniformResourceIdentifier(ORG_URN + c) for c in request.organisation_codes]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.gateway_name)])
    return _leaf(
        root_key,
        root,
        subject,
        request.public_key._key,
        san,
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        False,
        now,
        valid_for,
    )


def issue_server_certificate(
    root_key: SigningKey,
    root: Certificate,
    name: str,
    public_key: VerifyKey,
    hosts: list[str],
    now: dt.datetime,
    valid_for: dt.timedelta,
) -> Certificate:
    """Central's own HTTPS certificate."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return _leaf(
        root_key,
        root,
        subject,
        public_key._key,
        _host_names(hosts),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        False,
        now,
        valid_for,
    )


def issue_organisation_certificate(
    root_key: SigningKey,
    root: Certificate,
    code: str,
    name: str,
    public_key: VerifyKey,
    now: dt.datetime,
    valid_for: dt.timedelta,
) -> Certificate:
    """Binds an organisation's signing key to its code (for envelopes and receipts)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, code),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
        ]
    )
    return _leaf(
        root_key,
        root,
        subject,
        public_key._key,
        [x509.UniformResourceIdentifier(ORG_URN + code)],
        [],
        True,
        now,
        valid_for,
    )
