"""TLS contexts for central and between gateways: TLS 1.3 only.

(One context stands apart: :func:`relay_client_context`, for the
organisation's own mail relay, which is outside the network.)

The network root is the only certificate authority either side trusts; the
system's public CAs are never loaded. Private keys stay encrypted on disk and
are decrypted by OpenSSL with the passphrase at load time.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gcx.crypto._x509 import fingerprint
from gcx.errors import KeyDecryptionFailed


def _base(purpose: ssl.Purpose, anchor: Path) -> ssl.SSLContext:
    protocol = (
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    context = ssl.SSLContext(protocol)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=str(anchor))
    return context


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path, passphrase: bytes) -> None:
    try:
        context.load_cert_chain(str(cert), str(key), password=passphrase)
    except ssl.SSLError as exc:
        raise KeyDecryptionFailed(
            f"The TLS key {key.name} could not be loaded with the configured key passphrase."
        ) from exc


def server_context(
    anchor: Path, cert: Path, key: Path, passphrase: bytes, *, require_client_cert: bool
) -> ssl.SSLContext:
    """A server context; with ``require_client_cert`` it is the peer endpoint's mutual TLS."""
    context = _base(ssl.Purpose.CLIENT_AUTH, anchor)
    _load_chain(context, cert, key, passphrase)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return context


def client_context(
    anchor: Path,
    cert: Path | None = None,
    key: Path | None = None,
    passphrase: bytes | None = None,
) -> ssl.SSLContext:
    """A client context that trusts only the network root; optionally presents a certificate."""
    context = _base(ssl.Purpose.SERVER_AUTH, anchor)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    if cert is not None and key is not None:
        _load_chain(context, cert, key, passphrase or b"")
    return context


def relay_client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context for an organisation's own mail relay (STARTTLS).

    The relay is not part of the network, so the network root means nothing
    to it: it is checked against the system's certificate authorities, or
    against ``ca_file`` when the organisation runs its own. Relays still speak
    TLS 1.2 often enough that requiring 1.3 would leave alerts undelivered;
    1.2 with the host name checked is the floor.
    """
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def peer_certificate_fingerprint(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The SHA-256 fingerprint of the certificate the other side presented, if any."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return fingerprint(der) if der else None


def peer_certificate_der(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> bytes | None:
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True) or None


class _PinnedSSLObject(ssl.SSLObject):
    """An SSLObject that, once the handshake is done, insists on an expected certificate.

    asyncio drives the handshake through ``SSLContext.wrap_bio``, which makes
    objects of ``context.sslobject_class``; checking here means a server that
    chains to the network but is not the gateway we meant to reach fails the
    handshake itself, before a byte of the request is sent.
    """

    def do_handshake(self) -> None:
        super().do_handshake()
        expected: frozenset[str] = getattr(self.context, "gcx_expected_fingerprints", frozenset())
        der = self.getpeercert(binary_form=True)
        if not der or fingerprint(der) not in expected:
            raise ssl.SSLCertVerificationError(
                "the server's certificate is not the one the directory lists for this peer"
            )


class _PinnedContext(ssl.SSLContext):
    gcx_expected_fingerprints: frozenset[str] = frozenset()


def pinned_client_context(
    anchor: Path, cert: Path, key: Path, passphrase: bytes, expected: frozenset[str]
) -> ssl.SSLContext:
    """A mutual-TLS client context that also requires the server's exact certificate."""
    context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=str(anchor))
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    _load_chain(context, cert, key, passphrase)
    context.gcx_expected_fingerprints = expected
    context.sslobject_class = _PinnedSSLObject
    return context
