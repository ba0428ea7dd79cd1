"""A gateway's technical self-checks, signed and sent to central as Code of Connection evidence.

What is measured, and how:

* **TLS versions**: a real handshake against the gateway's own peer endpoint
  for each of TLS 1.0, 1.1, 1.2 and 1.3, presenting the gateway's own
  certificate. A version counts as accepted only if the handshake completes.
  Versions this machine's OpenSSL cannot offer at all are reported as
  ``untested``, never as refused. Failed probes appear in the gateway's own
  audit log as refused connections: that is the probe working, not an attack.
* **Cipher suites**: the suite negotiated on the TLS 1.3 probe, and every
  suite the peer endpoint's server context enables (read from the same
  context builder the server uses; the standard library cannot enumerate
  TLS 1.3 suites over the wire one at a time).
* **Certificate expiry** of the gateway's TLS certificate.
* **Clock skew** against central: the ``Date`` header of central's answer,
  corrected by half the round trip (one-second resolution).
* **Software version** of gcx.
* **Private keys encrypted at rest**: every key file in the home.
* **Administrators' second factor**: the people holding the admin role in the
  gateway's web sign-in (gcx.web), counted from its database, and how many of
  them have no second-factor secret (none can: sign-in always asks for a code).

The report is a DSSE document signed with one hosted organisation's signing
key; central verifies it against the key it registered for that organisation
and attaches it to the controls the catalogue links to each check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import socket
import ssl
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

from gcx import crypto
from gcx.clock import Clock, SystemClock
from gcx.compliance.selfcheck_format import (
    SELFCHECK_TYPE,
    Check,
    SelfCheckReport,
    admin_second_factor_check,
    judge_certificate,
    judge_cipher_suites,
    judge_clock_skew,
    judge_keys,
    judge_tls_versions,
    software_version_check,
)
from gcx.config import GatewayConfig
from gcx.errors import InputError, PeerUnreachable, RemoteRefusal
from gcx.protocol import strict_json

PROBE_TIMEOUT = 5.0
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _probe_context(config: GatewayConfig, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    # The probe asks "does the server accept this version?", not "is the server
    # who we think": verification is the peer client's job, not this one's.
    context.verify_mode = ssl.CERT_NONE
    if version is not ssl.TLSVersion.TLSv1_3:
        # Let the client offer old versions and suites so the server's answer,
        # not our own OpenSSL policy, decides.
        context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = version
    context.maximum_version = version
    home = config.home
    if (home / "tls.pem").exists():
        context.load_cert_chain(
            str(home / "tls.pem"), str(home / "tls.key"), password=config.passphrase()
        )
    return context


def probe_version(config: GatewayConfig, host: str, port: int, name: str) -> tuple[str, str | None]:
    """("accepted" | "refused" | "untested", negotiated cipher suite)."""
    try:
        with warnings.catch_warnings():
            # Offering TLS 1.0 and 1.1 is deprecated, which is exactly why we
            # check that the peer endpoint refuses them.
            warnings.simplefilter("ignore", DeprecationWarning)
            context = _probe_context(config, _VERSIONS[name])
    except (ssl.SSLError, ValueError):
        return "untested", None
    try:
        with (
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cipher = tls.cipher()
            if tls.version() != name:
                return "refused", None
            # In TLS 1.3 the server checks the client certificate after the
            # client's handshake ends; a short read surfaces a refusal.
            tls.settimeout(0.5)
            try:
                tls.recv(1)
            except (TimeoutError, ssl.SSLWantReadError):
                pass
            except ssl.SSLError as exc:
                if "CERTIFICATE" in str(exc).upper():
                    return "accepted", cipher[0] if cipher else None
                raise
            return "accepted", cipher[0] if cipher else None
    except ssl.SSLError as exc:
        text = str(exc).upper()
        if "NO_PROTOCOLS_AVAILABLE" in text or "NO CIPHERS AVAILABLE" in text:
            return "untested", None
        return "refused", None
    except OSError:
        return "refused", None


def configured_suites(config: GatewayConfig) -> list[str]:
    home = config.home
    context = crypto.server_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        config.passphrase(),
        require_client_cert=True,
    )
    # The cipher list still names TLS 1.2 suites, but a context whose minimum
    # version is TLS 1.3 can never use them; count only what can be negotiated.
    usable = [
        c
        for c in context.get_ciphers()
        if context.minimum_version is not ssl.TLSVersion.TLSv1_3 or c["protocol"] == "TLSv1.3"
    ]
    return sorted({c["name"] for c in usable})


def key_files(home: Path) -> list[Path]:
    files = [home / "tls.key"]
    files += sorted((home / "orgs").glob("*/*.key"))
    return [f for f in files if f.exists()]


async def central_time(config: GatewayConfig) -> float | None:
    """Our clock minus central's, in seconds, from central's ``Date`` header."""
    context = crypto.client_context(config.home / "anchor.pem")
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context),
            timeout=aiohttp.ClientTimeout(total=10),
        ) as session:
            started = time.time()
            async with session.get(config.central_url.rstrip("/") + "/api/v1/health") as response:
                header = response.headers.get("Date")
            finished = time.time()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None
    if not header:
        return None
    theirs = email.utils.parsedate_to_datetime(header).timestamp()
    # Date has one-second resolution and is truncated: its true value lies
    # in [theirs, theirs + 1); compare with the middle of the round trip.
    return (started + finished) / 2 - (theirs + 0.5)


def software_version() -> str:
    try:
        return metadata.version("gcx")
    except metadata.PackageNotFoundError:
        return "unknown"


async def run_self_checks(
    config: GatewayConfig, *, clock: Clock | None = None, probe: bool = True
) -> list[Check]:
    clock = clock or SystemClock()
    now = clock.now()
    checks: list[Check] = []
    host, port = config.peer_host, config.peer_port
    if probe:
        outcomes = {}
        negotiated = None
        for name in _VERSIONS:
            outcome, cipher = await asyncio.to_thread(probe_version, config, host, port, name)
            outcomes[name] = outcome
            if name == "TLSv1.3" and outcome == "accepted":
                negotiated = cipher
        checks.append(judge_tls_versions(outcomes))
        suites = await asyncio.to_thread(configured_suites, config)
        checks.append(judge_cipher_suites(negotiated, suites))
    certificate_path = config.home / "tls.pem"
    if certificate_path.exists():
        certificate = crypto.Certificate.from_pem(certificate_path.read_bytes())
        checks.append(judge_certificate(certificate.not_after, now))
    checks.append(judge_clock_skew(await central_time(config)))
    checks.append(software_version_check(software_version()))
    checks.append(
        judge_keys(
            {
                str(p.relative_to(config.home)): crypto.private_key_is_encrypted(p)
                for p in key_files(config.home)
            }
        )
    )
    checks.append(admin_second_factor_check(*await asyncio.to_thread(web_administrators, config)))
    return checks


def web_administrators(config: GatewayConfig) -> tuple[int, int]:
    """How many active web users hold the admin role, and how many lack a second factor."""
    import sqlalchemy as sa

    from gcx.store import open_database
    from gcx.store.schema_web import web_users

    database = open_database(config.db_url)
    try:
        with database.read() as conn:
            rows = conn.execute(
                sa.select(web_users.c.roles, web_users.c.totp_sealed).where(
                    web_users.c.disabled_at.is_(None)
                )
            ).all()
    finally:
        database.dispose()
    admins = [row for row in rows if "admin" in row.roles]
    return len(admins), sum(1 for row in admins if not row.totp_sealed)


def sign_report(
    config: GatewayConfig, organisation: str, checks: list[Check], now: dt.datetime
) -> bytes:
    if organisation not in config.organisations:
        raise InputError(f"This gateway does not host {organisation[:16]}.")
    key = crypto.load_signing_key(
        config.home / "orgs" / organisation / "signing.key", config.passphrase()
    )
    report = SelfCheckReport(organisation, config.name, now, software_version(), tuple(checks))
    return crypto.sign_document(SELFCHECK_TYPE, report.to_bytes(), key, crypto.key_id(key.public))


async def submit_report(config: GatewayConfig, document: bytes) -> dict[str, Any]:
    context = crypto.client_context(config.home / "anchor.pem")
    url = config.central_url.rstrip("/") + "/api/v1/compliance/selfchecks"
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=30),
            ) as session,
            session.post(url, data=document, headers={"Content-Type": "application/json"}) as r,
        ):
            status, body = r.status, strict_json.loads(await r.read())
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise PeerUnreachable(f"Central at {config.central_url} could not be reached.") from exc
    if status >= 400:
        raise RemoteRefusal(status, str(body.get("code")), str(body.get("message")))
    result: dict[str, Any] = body
    return result


async def self_check(
    config: GatewayConfig,
    *,
    organisation: str | None = None,
    submit: bool = False,
    probe: bool = True,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Run the checks, sign the report as ``organisation`` and optionally submit it."""
    clock = clock or SystemClock()
    checks = await run_self_checks(config, clock=clock, probe=probe)
    organisation = organisation or config.organisations[0]
    document = await asyncio.to_thread(sign_report, config, organisation, checks, clock.now())
    result: dict[str, Any] = {
        "organisation": organisation,
        "gateway": config.name,
        "checks": [c.to_dict() for c in checks],
    }
    if submit:
        result["submitted"] = await submit_report(config, document)
    return result
