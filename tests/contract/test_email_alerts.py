"""Email alerts on SQLite and PostgreSQL: who is told, queued with the message, sent once.

The relay is a real SMTP server (aiosmtpd, STARTTLS and sign-in required) on
a port the kernel chose; the outbox, its claim and leases, the lifecycle and
the audit log are the real ones. The gateway is its database, clock and
settings, which is all queueing and carrying alerts use.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from tests.integration.smtp_relay import PASSWORD, USERNAME, running_relay

from gcx import audit
from gcx.clock import FixedClock
from gcx.config import GatewayConfig, write_secret_file
from gcx.errors import AlertAddressInvalid, ConfigError
from gcx.gateway.exchange import outbox
from gcx.gateway.exchange.outcomes import Outcomes
from gcx.gateway.notifications import queue
from gcx.gateway.notifications.carrier import NotificationCarrier
from gcx.gateway.notifications.queue import NOTIFICATION, enqueue_alerts
from gcx.gateway.notifications.relay import Relay
from gcx.gateway.notifications.settings import alert_setting, set_alert
from gcx.protocol.message import Address
from gcx.store import Database, iso
from gcx.store.schema import mailboxes
from gcx.store.schema import outbox as outbox_table
from gcx.store.schema_alerts import email_alerts
from gcx.store.schema_web import web_users

DWP, COUNCIL = "DWP", "E09000030"
ENVELOPE = "ab" * 16


@pytest.fixture
def gateway(database: Database, clock: FixedClock, tmp_path: Path) -> Any:
    config = GatewayConfig(
        home=tmp_path,
        name="dwp",
        organisations=[DWP],
        central_url="https://central.test",
        web_public_url="https://gcx.dwp.example.gov.uk",
        smtp_host="127.0.0.1",
        smtp_from="gcx-alerts@dwp.example.gov.uk",
    )
    return SimpleNamespace(db=database, clock=clock, config=config)


def _person(
    gateway: Any, username: str, roles: tuple[str, ...] = ("staff",), **values: Any
) -> None:
    row = {
        "username": username,
        "organisation": DWP,
        "display_name": username.title(),
        "roles": list(roles),
        "password_hash": "x",
        "totp_sealed": "x",
        "totp_last_step": 0,
        "failed_attempts": 0,
        "created_at": iso(gateway.clock.now()),
        **values,
    }
    with gateway.db.transaction() as conn:
        conn.execute(web_users.insert().values(**row))


def _alerts_on(gateway: Any, username: str, address: str | None = None) -> None:
    set_alert(
        gateway.db,
        gateway.clock,
        organisation=DWP,
        account=username,
        enabled=True,
        address=f"{username}@home.example.org" if address is None else address,
        actor=f"web:{username}@{DWP}",
    )


def _header(sender_org: str = COUNCIL, sender_user: str = "benefits.officer") -> Any:
    return SimpleNamespace(
        id=ENVELOPE,
        kind="message",
        marking="OFFICIAL-SENSITIVE",
        sender=SimpleNamespace(organisation=sender_org, user=sender_user),
    )


class _Directory:
    def organisation(self, code: str) -> Any:
        names = {
            COUNCIL: "London Borough of Tower Hamlets",
            DWP: "Department for Work and Pensions",
        }
        return SimpleNamespace(name=names[code]) if code in names else None


def _queued(database: Database) -> list[Any]:
    with database.read() as conn:
        return conn.execute(
            sa.select(outbox_table).where(outbox_table.c.kind == NOTIFICATION).order_by("id")
        ).all()


def _store(gateway: Any, owners: list[str | None], header: Any = None) -> None:
    deliveries = [(DWP, [Address(DWP, owner) for owner in owners], [])]
    with gateway.db.transaction() as conn:
        enqueue_alerts(
            conn, gateway, _Directory(), header or _header(), deliveries, gateway.clock.now()
        )


def test_alerts_are_off_until_chosen_and_turning_them_off_keeps_the_address(
    gateway: Any,
) -> None:
    """No row means off; on needs a valid address; off keeps it; each change is audited."""
    assert alert_setting(gateway.db, DWP, "claims.processor") is None
    with pytest.raises(AlertAddressInvalid):
        set_alert(
            gateway.db,
            gateway.clock,
            organisation=DWP,
            account="claims.processor",
            enabled=True,
            address="claire at home",
            actor="web:claims.processor@DWP",
        )
    assert alert_setting(gateway.db, DWP, "claims.processor") is None, "nothing half-written"
    _alerts_on(gateway, "claims.processor", "Claire@Home.Example.org")
    setting = alert_setting(gateway.db, DWP, "claims.processor")
    assert setting is not None and setting.enabled
    assert setting.address == "Claire@home.example.org", "the domain is kept in lower case"
    set_alert(
        gateway.db,
        gateway.clock,
        organisation=DWP,
        account="claims.processor",
        enabled=False,
        address="",
        actor="web:claims.processor@DWP",
    )
    setting = alert_setting(gateway.db, DWP, "claims.processor")
    assert setting is not None and not setting.enabled
    assert setting.address == "Claire@home.example.org"
    with gateway.db.read() as conn:
        actions = [e.action for e in audit.entries(conn) if e.action.startswith("alerts.")]
        logged = " ".join(str(e.details) for e in audit.entries(conn))
    assert actions == ["alerts.turned-on", "alerts.turned-off"]
    assert "home.example.org" not in logged, "the address stays out of the audit log"


@pytest.mark.parametrize(
    "address",
    [
        "name@example",
        "name@@example.gov.uk",
        "name@example.gov.uk\r\nBcc: someone@example.org",
        "name example@example.gov.uk",
        "námé@example.gov.uk",
        ".name@example.gov.uk",
        "name@-example.gov.uk",
        "a" * 65 + "@example.gov.uk",
        "",
    ],
)
def test_an_address_a_relay_could_not_take_is_refused(gateway: Any, address: str) -> None:
    """Header-breaking, non-ASCII and malformed addresses are refused with one code."""
    with pytest.raises(AlertAddressInvalid) as refused:
        _alerts_on(gateway, "claims.processor", address)
    assert refused.value.code == "alert-address-invalid"


def test_each_reader_of_a_copy_is_told_once(gateway: Any) -> None:
    """Own copy, a shared mailbox's member, an administrator for the whole organisation;
    not people without alerts, disabled people, non-members or the sender; one alert each."""
    for name in ("claims.processor", "box.member", "quiet.person", "outsider"):
        _person(gateway, name)
    _person(gateway, "dwp.admin", ("admin", "staff"))
    _person(gateway, "gone.person", disabled_at=iso(gateway.clock.now()))
    for name in ("claims.processor", "box.member", "dwp.admin", "gone.person", "outsider"):
        _alerts_on(gateway, name)
    with gateway.db.transaction() as conn:
        conn.execute(
            mailboxes.insert().values(
                organisation=DWP,
                name="claims",
                members=["box.member", "claims.processor", "gone.person"],
                created_at=iso(gateway.clock.now()),
            )
        )
    _store(gateway, ["claims.processor", "claims", None])
    rows = _queued(gateway.db)
    told = sorted(queue.Notice.from_bytes(r.document).account for r in rows)
    assert told == ["box.member", "claims.processor", "dwp.admin"]
    notice = queue.Notice.from_bytes(rows[0].document)
    assert notice.marking == "OFFICIAL-SENSITIVE"
    assert notice.sender_name == "London Borough of Tower Hamlets"
    assert {r.peer_gateway for r in rows} == {queue.RELAY}
    assert {r.subject_id for r in rows} == {ENVELOPE}


def test_nobody_is_told_of_their_own_message_or_without_a_relay(gateway: Any) -> None:
    """The sender reading a mailbox they wrote to is not told; no relay, no rows at all."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor")
    with gateway.db.transaction() as conn:
        conn.execute(
            mailboxes.insert().values(
                organisation=DWP,
                name="claims",
                members=["claims.processor"],
                created_at=iso(gateway.clock.now()),
            )
        )
    _store(gateway, ["claims"], _header(DWP, "claims.processor"))
    assert _queued(gateway.db) == []
    off = SimpleNamespace(
        db=gateway.db,
        clock=gateway.clock,
        config=SimpleNamespace(smtp_host="", name="dwp"),
    )
    _store(off, ["claims.processor"])
    assert _queued(gateway.db) == []


@pytest.fixture
def failing_enqueue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: queueing an alert writes its row, then the database refuses."""
    real = outbox.enqueue

    def enqueue_then_fail(conn: Any, **values: Any) -> None:
        real(conn, **values)
        conn.exec_driver_sql("SELECT no_such_column FROM no_such_table")

    monkeypatch.setattr(queue.outbox, "enqueue", enqueue_then_fail)


def test_an_alert_that_cannot_be_queued_never_fails_the_delivery(
    gateway: Any, failing_enqueue: None
) -> None:
    """The delivery's own writes in the same transaction commit; the alert's row does not."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor")
    with gateway.db.transaction() as conn:
        enqueue_alerts(
            conn,
            gateway,
            _Directory(),
            _header(),
            [(DWP, [Address(DWP, "claims.processor")], [])],
            gateway.clock.now(),
        )
        # A write of the delivery itself, after the failed alert, in the same transaction.
        conn.execute(
            email_alerts.insert().values(
                organisation=DWP,
                account="stored.after",
                address="x@example.org",
                enabled=False,
                updated_at=iso(gateway.clock.now()),
            )
        )
    assert _queued(gateway.db) == []
    assert alert_setting(gateway.db, DWP, "stored.after") is not None


# -- carrying alerts to a real relay ------------------------------------------------------


@pytest.fixture
def relay_server(tmp_path: Path) -> Iterator[Any]:
    with running_relay(tmp_path / "relay") as relay:
        yield relay


def _relay_for(gateway: Any, relay_server: Any, tmp_path: Path, **changes: Any) -> Relay:
    write_secret_file(tmp_path / "secrets" / "smtp-password", PASSWORD)
    (tmp_path / "relay-ca.pem").write_bytes(relay_server.anchor.read_bytes())
    config = gateway.config
    settings = {
        "home": tmp_path,
        "name": config.name,
        "organisations": config.organisations,
        "central_url": config.central_url,
        "web_public_url": config.web_public_url,
        "smtp_host": "127.0.0.1",
        "smtp_port": relay_server.port,
        "smtp_username": USERNAME,
        "smtp_password_file": "secrets/smtp-password",
        "smtp_ca_file": "relay-ca.pem",
        "smtp_from": config.smtp_from,
        **changes,
    }
    relay = Relay.from_config(GatewayConfig(**settings))
    assert relay is not None
    return relay


def _carry(gateway: Any, relay: Relay | None) -> list[outbox.OutboxEntry]:
    entries = outbox.claim_due(gateway.db, now=gateway.clock.now(), limit=100)
    carrier = NotificationCarrier(gateway, Outcomes(gateway), relay)
    asyncio.run(carrier.carry(queue.RELAY, entries))
    return entries


def _states(gateway: Any) -> dict[str, str]:
    return {queue.Notice.from_bytes(r.document).account: r.state for r in _queued(gateway.db)}


def test_alerts_go_through_the_relay_with_no_content_and_are_ended_delivered(
    gateway: Any, relay_server: Any, tmp_path: Path
) -> None:
    """Over STARTTLS with sign-in: the marking, the sender's name and a link; nothing else."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor", "claire@home.example.org")
    _store(gateway, ["claims.processor"])
    _carry(gateway, _relay_for(gateway, relay_server, tmp_path))
    [email] = relay_server.messages()
    assert relay_server.sign_ins == 1
    assert email["To"] == "claire@home.example.org"
    assert email["From"] == "gcx-alerts@dwp.example.gov.uk"
    assert email["Subject"] == "New OFFICIAL-SENSITIVE message on the secure exchange"
    body = email.get_content()
    assert "You have a new OFFICIAL-SENSITIVE message from London Borough of Tower Hamlets." in body
    assert "https://gcx.dwp.example.gov.uk/inbox" in body
    assert ENVELOPE not in body
    assert _states(gateway) == {"claims.processor": "delivered"}
    with gateway.db.read() as conn:
        sent = [e for e in audit.entries(conn) if e.action == "notification.sent"]
    assert [(e.subject, json.loads(e.details)) for e in sent] == [
        (ENVELOPE, {"to": "claims.processor@DWP"})
    ]


def test_a_relay_refusal_ends_the_alert_and_a_passing_one_waits(
    gateway: Any, relay_server: Any, tmp_path: Path
) -> None:
    """550 is final (failed, with an alert for the administrator); 451 is tried again;
    the other alerts of the same batch go all the same."""
    for name, address in [
        ("refused.person", "refuse@home.example.org"),
        ("later.person", "later@home.example.org"),
        ("fine.person", "fine@home.example.org"),
    ]:
        _person(gateway, name)
        _alerts_on(gateway, name, address)
    _store(gateway, ["refused.person", "later.person", "fine.person"])
    _carry(gateway, _relay_for(gateway, relay_server, tmp_path))
    assert _states(gateway) == {
        "refused.person": "failed",
        "later.person": "retrying",
        "fine.person": "delivered",
    }
    assert [m["To"] for m in relay_server.messages()] == ["fine@home.example.org"]
    with gateway.db.read() as conn:
        failed = [e for e in audit.entries(conn) if e.action == "notification.failed"]
    details = json.loads(failed[0].details)
    assert details["code"] == "mail-relay-refused" and details["alert"] is True


def test_an_unreachable_relay_keeps_the_alert_until_it_expires(
    gateway: Any, relay_server: Any, tmp_path: Path
) -> None:
    """Nothing listening: retried, never lost; a day later it expires with an alarm."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor")
    _store(gateway, ["claims.processor"])
    closed = _relay_for(gateway, relay_server, tmp_path, smtp_port=_closed_port())
    _carry(gateway, closed)
    assert _states(gateway) == {"claims.processor": "retrying"}
    gateway.clock.advance(queue.NOTICE_LIFETIME + dt.timedelta(minutes=1))
    _carry(gateway, closed)
    assert _states(gateway) == {"claims.processor": "expired"}


def test_an_alert_whose_worker_died_is_sent_by_the_next_claim_with_the_same_message_id(
    gateway: Any, relay_server: Any, tmp_path: Path
) -> None:
    """A claim whose worker died mid-try is taken again once its lease lapses; the email
    then sent carries the Message-ID every try of that row carries."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor")
    _store(gateway, ["claims.processor"])
    relay = _relay_for(gateway, relay_server, tmp_path)
    [lost] = outbox.claim_due(gateway.db, now=gateway.clock.now(), limit=100)
    # The worker dies here. Before the lease lapses nobody else takes the row.
    assert outbox.claim_due(gateway.db, now=gateway.clock.now(), limit=100) == []
    gateway.clock.advance(outbox.CLAIM_LEASE + dt.timedelta(seconds=1))
    [again] = _carry(gateway, relay)
    assert again.id == lost.id and again.attempts == 2
    [email] = relay_server.messages()
    assert email["Message-ID"] == f"<alert.{lost.id}.{ENVELOPE}@dwp.gcx.invalid>"
    assert _states(gateway) == {"claims.processor": "delivered"}
    assert _carry(gateway, relay) == [], "a delivered alert is never claimed again"
    assert len(relay_server.messages()) == 1


def test_alerts_left_when_the_relay_was_taken_away_end_with_an_alarm(gateway: Any) -> None:
    """Queued with a relay, carried without one: failed for good, not claimed for ever."""
    _person(gateway, "claims.processor")
    _alerts_on(gateway, "claims.processor")
    _store(gateway, ["claims.processor"])
    _carry(gateway, None)
    assert _states(gateway) == {"claims.processor": "failed"}


def test_unsafe_relay_settings_are_refused(tmp_path: Path) -> None:
    """No sender, a password in the clear, a password file missing: the gateway will not start."""
    base: dict[str, Any] = {
        "home": tmp_path,
        "name": "dwp",
        "organisations": [DWP],
        "central_url": "https://central.test",
        "smtp_host": "relay.dwp.example.gov.uk",
    }
    assert (
        Relay.from_config(
            GatewayConfig(
                home=tmp_path, name="dwp", organisations=[DWP], central_url="https://central.test"
            )
        )
        is None
    )
    for changes in (
        {},
        {"smtp_from": "not an address"},
        {"smtp_from": "a@dwp.example.gov.uk", "smtp_username": "u", "smtp_starttls": False},
        {"smtp_from": "a@dwp.example.gov.uk", "smtp_username": "u"},
        {"smtp_from": "a@dwp.example.gov.uk", "smtp_ca_file": "missing.pem"},
    ):
        with pytest.raises(ConfigError):
            Relay.from_config(GatewayConfig(**base, **changes))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
