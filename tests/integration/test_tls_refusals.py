"""The peer endpoint of a real gateway refuses every TLS client that is not a gateway of this
network, audits each refusal with its code, and works with standard tools for one that is."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gcx import crypto
from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork

from .conftest import NetworkFactory
from .netutil import audit_log, wait_for_audit

pytestmark = pytest.mark.integration

PASSPHRASE = b"integration-test-passphrase-0123456789"
REQUEST = b"GET /peer/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(DEMO_GATEWAYS[:2])


@pytest.fixture(scope="module")
def target(network: LocalNetwork) -> GatewayProcess:
    """The gateway whose peer endpoint the clients here call."""
    return network.gateways["tower-hamlets"]


@pytest.fixture(scope="module")
def member(network: LocalNetwork) -> GatewayProcess:
    """A genuine gateway of the network, whose certificate the control client presents."""
    return network.gateways["dwp"]


@dataclass(frozen=True)
class Attempt:
    local_address: str
    handshake_completed: bool  # on the client's side
    answered: bool
    outcome: str  # for failure messages only: its wording is the TLS library's


def attempt(address: str, context: ssl.SSLContext) -> Attempt:
    """Connect, handshake and send one HTTP request; report how far it got.

    With TLS 1.3 the server checks the client's certificate after the client's
    side of the handshake has finished, so a refusal may only show on the first read.
    How a refusal shows (an alert, a close, a reset) differs between OpenSSL
    builds and Python versions, so only how far the client got is reported.
    """
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=15) as raw:
        local = "{}:{}".format(*raw.getsockname()[:2])
        try:
            tls = context.wrap_socket(raw, server_hostname=host)
        except (ssl.SSLError, OSError) as exc:
            return Attempt(local, False, False, f"{type(exc).__name__}: {exc}")
        with tls:
            try:
                tls.sendall(REQUEST)
                data = tls.recv(65536)
            except (ssl.SSLError, OSError) as exc:
                return Attempt(local, True, False, f"{type(exc).__name__}: {exc}")
    if not data:
        return Attempt(local, True, False, "closed without an answer")
    return Attempt(local, True, True, data.split(b"\r\n", 1)[0].decode(errors="replace"))


def client_with(
    anchor: Path, cert: Path | None = None, key: Path | None = None, passphrase: bytes | None = None
) -> ssl.SSLContext:
    return crypto.client_context(anchor, cert, key, passphrase)


def self_signed_identity(directory: Path) -> tuple[Path, Path]:
    """A key and a certificate it signed itself, naming a real gateway."""
    key = crypto.SigningKey.generate()
    cert = crypto.create_network_root(key, "dwp", dt.datetime.now(dt.UTC), dt.timedelta(days=1))
    return _save(directory, key, cert)


def foreign_network_identity(directory: Path, network_name: str) -> tuple[Path, Path]:
    """A gateway certificate for 'dwp' issued by another root that uses this network's name."""
    now = dt.datetime.now(dt.UTC)
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, network_name, now, dt.timedelta(days=30))
    key = crypto.SigningKey.generate()
    request = crypto.parse_enrolment_request(crypto.build_enrolment_request(key, "dwp", ["DWP"]))
    cert = crypto.issue_gateway_certificate(
        root_key, root, request, ["127.0.0.1"], now, dt.timedelta(days=30)
    )
    return _save(directory, key, cert)


def _save(directory: Path, key: crypto.SigningKey, cert: crypto.Certificate) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    crypto.save_signing_key(directory / "client.key", key, PASSPHRASE)
    (directory / "client.pem").write_bytes(cert.pem)
    return directory / "client.pem", directory / "client.key"


async def refused_and_audited(
    target: GatewayProcess, context: ssl.SSLContext, code: str
) -> Attempt:
    with audit_log(target.config.db_url) as log:
        after = log.head()
    result = await asyncio.to_thread(attempt, target.config.peer_address, context)
    assert not result.answered, f"the peer endpoint answered: {result.outcome}"
    entry = await wait_for_audit(
        target.config.db_url,
        "connection.refused",
        code,
        after=after,
        actor=f"peer:{result.local_address}",
    )
    assert entry.subject == "peer-endpoint"
    assert entry.details_dict["message"]
    return result


async def test_network_gateway_certificate_is_served(
    network: LocalNetwork, target: GatewayProcess, member: GatewayProcess
) -> None:
    """Control: the same client with this network's gateway certificate is answered."""
    context = client_with(
        network.anchor, member.home / "tls.pem", member.home / "tls.key", member.config.passphrase()
    )
    result = await asyncio.to_thread(attempt, target.config.peer_address, context)
    assert result.answered and result.outcome.startswith("HTTP/1.1 200"), result.outcome


async def test_client_without_certificate_is_refused(
    network: LocalNetwork, target: GatewayProcess
) -> None:
    """No client certificate: no answer, audited [peer-certificate-missing]."""
    await refused_and_audited(target, client_with(network.anchor), "peer-certificate-missing")


async def test_self_signed_client_certificate_is_refused(
    network: LocalNetwork, target: GatewayProcess, tmp_path: Path
) -> None:
    """A self-signed client certificate: no answer, [peer-certificate-untrusted]."""
    cert, key = self_signed_identity(tmp_path)
    await refused_and_audited(
        target, client_with(network.anchor, cert, key, PASSPHRASE), "peer-certificate-untrusted"
    )


async def test_certificate_from_another_network_is_refused(
    network: LocalNetwork, target: GatewayProcess, tmp_path: Path
) -> None:
    """Another network's gateway certificate: no answer, [peer-certificate-untrusted]."""
    cert, key = foreign_network_identity(tmp_path, network.network_name)
    await refused_and_audited(
        target, client_with(network.anchor, cert, key, PASSPHRASE), "peer-certificate-untrusted"
    )


async def test_tls12_client_is_refused(
    network: LocalNetwork, target: GatewayProcess, member: GatewayProcess
) -> None:
    """A TLS 1.2-only client with a genuine certificate: no handshake, [tls-version-refused]."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(network.anchor))
    context.load_cert_chain(
        str(member.home / "tls.pem"),
        str(member.home / "tls.key"),
        password=member.config.passphrase(),
    )
    result = await refused_and_audited(target, context, "tls-version-refused")
    assert not result.handshake_completed, f"a TLS 1.2 handshake completed: {result.outcome}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_s_client_connects_with_the_files_network_json_names(
    network: LocalNetwork, target: GatewayProcess
) -> None:
    """openssl s_client with network.json's files completes mutual TLS 1.3, verify code 0."""
    description = json.loads(network.write_description().read_text())
    files = next(g for g in description["gateways"] if g["name"] == "dwp")
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            target.config.peer_address,
            "-cert",
            files["tls_certificate"],
            "-key",
            files["tls_key"],
            "-pass",
            f"file:{files['tls_key_passphrase_file']}",
            "-CAfile",
            files["ca_certificate"],
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
            "-tls1_3",
            "-ign_eof",
        ],
        input=REQUEST.decode(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = result.stdout
    assert "Verify return code: 0 (ok)" in output, output + result.stderr
    assert "TLSv1.3" in output, output
    assert "HTTP/1.1 200" in output, output + result.stderr
