"""A gateway's home directory: configuration, keys, certificates and enrolment.

Layout::

    gateway.toml                settings
    secrets/key-passphrase      the key passphrase (0600), unless GCX_KEY_PASSPHRASE is set
    anchor.pem                  the pinned network root certificate
    tls.key, tls.pem            the gateway's TLS key and (once approved) its certificate
    orgs/CODE/signing.key       each hosted organisation's Ed25519 signing key
    orgs/CODE/encryption.key    ... and its ML-KEM-768 + X25519 encryption key
    orgs/CODE/signing.pem       ... and (once approved) the certificate binding it
    enrolment.json              the enrolment id central gave and its last known state
    gateway.db                  the SQLite database, unless database_url names PostgreSQL
    blobs/                      envelope parts, and transfers/ (uploads, chunks)

Every file here is mode 0600 and every folder 0700, set by gcx.private_files
whatever the umask; ``gcx gateway serve`` refuses a home others can read.

Private keys are made here and never leave; only public keys and the PKCS#10
request go to central.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcx import crypto
from gcx.config import GatewayConfig, write_secret_file
from gcx.errors import ConfigError, StateTransitionRefused
from gcx.gateway.central_client import CentralClient
from gcx.private_files import private_dir, write_private
from gcx.protocol import strict_json
from gcx.protocol.enrolment import key_binding_message
from gcx.protocol.identifiers import check_gateway_name, check_organisation_code


@dataclass(frozen=True)
class OrganisationKeys:
    code: str
    signing: crypto.SigningKey
    encryption: crypto.EncryptionKey


@dataclass(frozen=True)
class GatewayKeys:
    anchor: crypto.Certificate
    organisations: dict[str, OrganisationKeys]
    # The gateway's own key: its TLS certificate certifies it, and it signs
    # what the gateway says for itself (audit checkpoints), not for an organisation.
    identity: crypto.SigningKey

    def signing_key_id(self, code: str) -> str:
        return crypto.key_id(self.organisations[code].signing.public)


def anchor_fingerprint(path: Path) -> str:
    return crypto.Certificate.from_pem(path.read_bytes()).fingerprint


def create_gateway_home(
    home: Path,
    *,
    name: str,
    organisations: list[str],
    central_url: str,
    anchor: Path,
    expected_anchor_fingerprint: str | None = None,
    peer_host: str = "127.0.0.1",
    peer_port: int = 9443,
    api_host: str = "127.0.0.1",
    api_port: int = 8080,
    database_url: str = "",
    directory_poll_seconds: float = 30.0,
) -> tuple[GatewayConfig, dict[str, Any]]:
    """Make the keys, pin the anchor and build the enrolment request (not yet sent)."""
    check_gateway_name(name)
    for code in organisations:
        check_organisation_code(code)
    if not organisations:
        raise ConfigError("A gateway must host at least one organisation.")
    if (home / "gateway.toml").exists():
        raise ConfigError(f"{home} already holds a gateway; refusing to overwrite it.")
    root = crypto.Certificate.from_pem(anchor.read_bytes())
    if expected_anchor_fingerprint and not secrets.compare_digest(
        root.fingerprint, expected_anchor_fingerprint.replace(":", "").lower()
    ):
        raise ConfigError(
            "The anchor's fingerprint does not match the one given; get the anchor again from "
            "the network operator."
        )
    private_dir(home)
    write_private(home / "anchor.pem", root.pem)
    from_env = bool(os.environ.get("GCX_KEY_PASSPHRASE"))
    if not from_env:
        write_secret_file(home / "secrets" / "key-passphrase", secrets.token_urlsafe(32))
    config = GatewayConfig(
        home=home,
        name=name,
        organisations=organisations,
        central_url=central_url,
        peer_host=peer_host,
        peer_port=peer_port,
        api_host=api_host,
        api_port=api_port,
        database_url=database_url,
        directory_poll_seconds=directory_poll_seconds,
        key_passphrase_file=None if from_env else "secrets/key-passphrase",
        network=root.organisation_name,
    )
    config.save()
    passphrase = config.passphrase()
    tls_key = crypto.SigningKey.generate()
    crypto.save_signing_key(home / "tls.key", tls_key, passphrase)
    csr = crypto.build_enrolment_request(tls_key, name, organisations)
    org_keys: dict[str, dict[str, str]] = {}
    for code in organisations:
        signing = crypto.SigningKey.generate()
        encryption = crypto.EncryptionKey.generate()
        private_dir(home / "orgs" / code)
        crypto.save_signing_key(home / "orgs" / code / "signing.key", signing, passphrase)
        crypto.save_encryption_key(home / "orgs" / code / "encryption.key", encryption, passphrase)
        signing_b64 = signing.public.b64()
        encryption_b64 = encryption.public.b64()
        proof = signing.sign(key_binding_message(csr, code, signing_b64, encryption_b64))
        org_keys[code] = {
            "signing_key": signing_b64,
            "encryption_key": encryption_b64,
            "proof": base64.b64encode(proof).decode(),
        }
    request = {
        "csr": csr.decode(),
        "peer_address": config.peer_address,
        "organisation_keys": org_keys,
    }
    return config, request


def client_ssl_for_central(config: GatewayConfig) -> Any:
    return crypto.client_context(config.home / "anchor.pem")


async def submit_enrolment(config: GatewayConfig, request: dict[str, Any]) -> dict[str, Any]:
    async with CentralClient(config.central_url, client_ssl_for_central(config)) as central:
        result = await central.submit_enrolment(request)
    _write_enrolment(config.home, {"id": result["id"], "state": result["state"]})
    return result


def _write_enrolment(home: Path, value: dict[str, Any]) -> None:
    write_private(home / "enrolment.json", (json.dumps(value, indent=2) + "\n").encode())


def read_enrolment(home: Path) -> dict[str, Any]:
    try:
        value: dict[str, Any] = strict_json.loads((home / "enrolment.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{home} has no enrolment yet; run 'gcx gateway init'.") from exc
    return value


def has_certificates(home: Path) -> bool:
    return (home / "tls.pem").exists()


async def pick_up_certificates(config: GatewayConfig) -> dict[str, Any]:
    """Ask central about our enrolment; store the certificates once it is approved."""
    enrolment = read_enrolment(config.home)
    async with CentralClient(config.central_url, client_ssl_for_central(config)) as central:
        status = await central.enrolment(enrolment["id"])
    if status["state"] == "active":
        store_certificates(config, status)
    elif status["state"] in ("rejected", "revoked"):
        _write_enrolment(config.home, {"id": enrolment["id"], "state": status["state"]})
        raise StateTransitionRefused(
            f"Central {status['state']} this gateway's enrolment: "
            f"{status.get('decision_reason') or status.get('revocation_reason') or 'no reason'}."
        )
    return status


def store_certificates(config: GatewayConfig, status: dict[str, Any]) -> None:
    anchor = crypto.Certificate.from_pem((config.home / "anchor.pem").read_bytes())
    certificate = crypto.Certificate.from_pem(status["certificate_pem"].encode())
    certificate.verify_issued_by(anchor)
    passphrase = config.passphrase()
    tls_key = crypto.load_signing_key(config.home / "tls.key", passphrase)
    if certificate.public_key().raw() != tls_key.public.raw():
        raise ConfigError("Central issued a certificate for a key this gateway does not hold.")
    for code, pem in status["organisation_certificates"].items():
        org_cert = crypto.Certificate.from_pem(pem.encode())
        org_cert.verify_issued_by(anchor)
        write_private(config.home / "orgs" / code / "signing.pem", pem.encode())
    write_private(config.home / "tls.pem", certificate.pem)
    _write_enrolment(
        config.home,
        {"id": status["id"], "state": "active", "certificate_fingerprint": certificate.fingerprint},
    )


def load_keys(config: GatewayConfig) -> GatewayKeys:
    passphrase = config.passphrase()
    anchor = crypto.Certificate.from_pem((config.home / "anchor.pem").read_bytes())
    organisations = {
        code: OrganisationKeys(
            code,
            crypto.load_signing_key(config.home / "orgs" / code / "signing.key", passphrase),
            crypto.load_encryption_key(config.home / "orgs" / code / "encryption.key", passphrase),
        )
        for code in config.organisations
    }
    identity = crypto.load_signing_key(config.home / "tls.key", passphrase)
    return GatewayKeys(anchor, organisations, identity)
