"""A real SMTP relay for tests: aiosmtpd on a port the kernel chose, in a thread of its own.

It stands in for an organisation's mail relay: STARTTLS with a certificate
from a throwaway root (the gateway is told to trust it with ``smtp_ca_file``),
sign-in required once TLS is up, and it keeps every email it accepts.
Addresses starting ``refuse`` are refused for good at RCPT (550) and ones
starting ``later`` for now (451), as a real relay would refuse them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from gcx import crypto

USERNAME = "gateway-alerts"
PASSWORD = "relay password for the tests"
PASSPHRASE = b"a passphrase for the relay's key"


@dataclass
class Relay:
    port: int
    anchor: Path
    received: list[EmailMessage] = field(default_factory=list)
    sign_ins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.received)


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("refuse"):
            return "550 5.1.1 No such mailbox here"
        if address.startswith("later"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.relay.lock:
            self.relay.received.append(parsed)
        return "250 Message accepted"


def _authenticator(relay: Relay) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login.decode() == USERNAME
            and data.password.decode() == PASSWORD
        )
        if good:
            with relay.lock:
                relay.sign_ins += 1
        return AuthResult(success=good)

    return check


@contextmanager
def running_relay(directory: Path) -> Iterator[Relay]:
    """A relay on 127.0.0.1 for as long as the block runs."""
    now = dt.datetime.now(dt.UTC)
    root_key = crypto.SigningKey.generate()
    root = crypto.create_network_root(root_key, "relay-test", now, dt.timedelta(days=2))
    tls_key = crypto.SigningKey.generate()
    server = crypto.issue_server_certificate(
        root_key, root, "relay", tls_key.public, ["127.0.0.1"], now, dt.timedelta(days=1)
    )
    directory.mkdir(parents=True, exist_ok=True)
    anchor, cert, key = directory / "relay-ca.pem", directory / "relay.pem", directory / "relay.key"
    anchor.write_bytes(root.pem)
    cert.write_bytes(server.pem)
    crypto.save_signing_key(key, tls_key, PASSPHRASE)
    tls = crypto.server_context(anchor, cert, key, PASSPHRASE, require_client_cert=False)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    relay = Relay(port=sock.getsockname()[1], anchor=anchor)
    handler = _Handler(relay)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, asyncio.base_events.Server] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)

        def protocol() -> SMTP:
            return SMTP(
                handler,
                hostname="relay.test",
                tls_context=tls,
                require_starttls=True,
                authenticator=_authenticator(relay),
                auth_required=True,
                auth_require_tls=True,
                loop=loop,
            )

        holder["server"] = loop.run_until_complete(loop.create_server(protocol, sock=sock))
        started.set()
        loop.run_forever()
        holder["server"].close()
        loop.run_until_complete(holder["server"].wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, name="smtp-relay", daemon=True)
    thread.start()
    started.wait()
    try:
        yield relay
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
