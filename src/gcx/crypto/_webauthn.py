"""Security keys and passkeys (WebAuthn Level 2) as a second factor, through py_webauthn.

The server makes a fresh 32-byte challenge for each ceremony and keeps it with
the session; the browser's authenticator signs it together with the origin
and the relying party ID (the site's host name), so an answer made for
another site, or replayed, does not verify. Only the user's presence is
required (the password was the first factor). Attestation is not asked for:
gcx trusts the key the person registered while signed in, not its maker.

A signature counter that does not increase is refused when the key keeps
one, since that is how a cloned authenticator shows itself.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import webauthn
from webauthn.helpers import exceptions as webauthn_errors
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gcx.errors import CryptoError


@dataclass(frozen=True)
class RegisteredKey:
    credential_id: str  # base64url, as browsers give it
    public_key: bytes  # COSE
    sign_count: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_registration_options(
    *,
    rp_id: str,
    rp_name: str,
    user_id: bytes,
    username: str,
    display_name: str,
    existing: list[str],
) -> tuple[str, bytes]:
    """The options for ``navigator.credentials.create`` (JSON) and their challenge."""
    options = webauthn.generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_id,
        user_name=username,
        user_display_name=display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.DISCOURAGED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=_unb64url(c)) for c in existing],
    )
    return webauthn.options_to_json(options), options.challenge


def verify_key_registration(
    credential: str, *, challenge: bytes, rp_id: str, origin: str
) -> RegisteredKey:
    try:
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
        )
    except (webauthn_errors.WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise CryptoError("The security key's answer did not verify.") from exc
    return RegisteredKey(
        _b64url(verified.credential_id), verified.credential_public_key, verified.sign_count
    )


def key_sign_in_options(*, rp_id: str, allowed: list[str]) -> tuple[str, bytes]:
    """The options for ``navigator.credentials.get`` (JSON) and their challenge."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=[PublicKeyCredentialDescriptor(id=_unb64url(c)) for c in allowed],
        user_verification=UserVerificationRequirement.DISCOURAGED,
    )
    return webauthn.options_to_json(options), options.challenge


def credential_id_of(credential: str) -> str:
    """Which registered key an answer claims to come from (checked by the verification)."""
    try:
        value = json.loads(credential)["id"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError("The security key's answer is not in the expected form.") from exc
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise CryptoError("The security key's answer is not in the expected form.")
    return value


def verify_key_sign_in(
    credential: str,
    *,
    challenge: bytes,
    rp_id: str,
    origin: str,
    public_key: bytes,
    sign_count: int,
) -> int:
    """Check a sign-in answer against the registered key; return the key's new counter."""
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
        )
    except (webauthn_errors.WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise CryptoError("The security key's answer did not verify.") from exc
    return int(verified.new_sign_count)
