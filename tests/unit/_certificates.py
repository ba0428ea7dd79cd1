"""Organisation certificates issued off-profile, to test that gcx refuses them.

gcx never issues these, so they are built here with pyca/cryptography
directly, signed by a real network root so that only the profile is wrong.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509  # noqa: TID251
from cryptography.x509.oid import NameOID  # noqa: TID251

from gcx import crypto


def issue_with_profile(
    root_key: crypto.SigningKey,
    root: crypto.Certificate,
    org: Any,
    *,
    extra_names: list[x509.GeneralName] | None = None,
    ca: bool = False,
    key_cert_sign: bool = False,
) -> crypto.Certificate:
    """``org``'s certificate (code, name, signing key) as gcx issues it, with changes."""
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:gcx:org:{org.code}")]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, org.code),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org.name),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root.cert.subject)
        .public_key(org.signing.public._key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=key_cert_sign,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(names + (extra_names or [])), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public._key),
            critical=False,
        )
    )
    return crypto.Certificate(builder.sign(root_key._key, None))
