"""The gateway's health as its administrators see it: directory, certificate, queues, peers.

Everything here is read from what the gateway already keeps: the directory
keeper's status (as the local API's status call reports it), the TLS
certificate in the home (judged as the self-check judges it for central), and
the rows of the one outbox, messages and files alike.
Queues and peers are the gateway's; failed deliveries are listed only for the
administrator's own organisation, whose sending they are.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from gcx import crypto
from gcx.compliance.selfcheck_format import judge_certificate
from gcx.errors import DirectoryError
from gcx.gateway.central_witness import central_log_state
from gcx.gateway.runtime import Gateway
from gcx.store.schema import envelopes, outbox
from gcx.store.schema_transfers import transfers
from gcx.web.words import moment

# States of a row of the one outbox, whatever its kind.
_WAITING = ("queued", "sending", "retrying")
_DELIVERED = ("delivered",)
# A retrying row has failed at least once; failed and expired ones have given up.
_FAILED = ("retrying", "failed", "expired")
_GAVE_UP = ("failed", "expired")
RECENT_FAILURES = 10
_WHAT = {"message": "Message", "transfer": "File transfer"}


def _duration(seconds: float) -> str:
    """A rough, readable length of time: "4 minutes", "2 hours", "3 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    count = int(seconds)
    return f"{count} second{'' if count == 1 else 's'}"


def gateway_health(gateway: Gateway, organisation: str) -> dict[str, Any]:
    """What an administrator needs to see whether the gateway is well, in one read."""
    now = gateway.clock.now()
    directory = gateway.directory.status()
    health: dict[str, Any] = {"directory": directory, "now": now}
    if directory.get("age_seconds") is not None:
        directory["age"] = _duration(float(directory["age_seconds"]))
    for key in ("issued_at", "expires_at", "last_fetched_at"):
        if directory.get(key):
            directory[key + "_text"] = moment(directory[key])
    health["certificate"] = _certificate(gateway, now)
    health["central_log"] = central_log = central_log_state(gateway.db)
    if central_log is not None:
        for key in ("checked_at", "alarm_at"):
            if central_log[key]:
                central_log[key + "_text"] = moment(central_log[key])
    with gateway.db.read() as conn:
        message_states = _count_by_state(conn, outbox.c.kind != "transfer")
        transfer_states = _count_by_state(conn, outbox.c.kind == "transfer")
        last = _last_by_peer(conn)
        failures = _recent_failures(conn, organisation)
    health["queue"] = {
        "messages": {s: message_states.get(s, 0) for s in _WAITING},
        "transfers": {s: transfer_states.get(s, 0) for s in _WAITING},
    }
    health["peers"], health["peers_note"] = _peers(gateway, last)
    health["failures"] = failures
    return health


def _certificate(gateway: Gateway, now: dt.datetime) -> dict[str, Any] | None:
    path = gateway.config.home / "tls.pem"
    if not path.exists():
        return None
    certificate = crypto.Certificate.from_pem(path.read_bytes())
    # The same judgement the self-check sends to central as evidence.
    check = judge_certificate(certificate.not_after, now)
    return {
        "not_after": moment(certificate.not_after.isoformat()),
        "days_left": int(check.data["days_left"]),
        "status": check.status,
        "detail": check.detail,
    }


def _count_by_state(conn: Any, which: Any) -> dict[str, int]:
    rows = conn.execute(
        sa.select(outbox.c.state, sa.func.count()).where(which).group_by(outbox.c.state)
    ).all()
    return {str(state): int(count) for state, count in rows}


def _last_by_peer(conn: Any) -> dict[str, dict[str, str]]:
    """Per peer gateway, when a delivery last succeeded and last failed (messages or files)."""
    last: dict[str, dict[str, str]] = {}
    rows = conn.execute(
        sa.select(outbox.c.peer_gateway, outbox.c.state, sa.func.max(outbox.c.updated_at))
        .where(outbox.c.state.in_(_DELIVERED + _FAILED))
        .group_by(outbox.c.peer_gateway, outbox.c.state)
    ).all()
    for peer, state, when in rows:
        kind = "delivered" if state in _DELIVERED else "failed"
        seen = last.setdefault(str(peer), {})
        # Stored instants share one ISO format, so text order is time order.
        if when and when > seen.get(kind, ""):
            seen[kind] = str(when)
    return last


def _recent_failures(conn: Any, organisation: str) -> list[dict[str, str]]:
    """The organisation's latest messages and transfers that gave up, from the one outbox."""
    sent_by = sa.union_all(
        sa.select(envelopes.c.id.label("subject_id"), sa.literal("message").label("kind")).where(
            envelopes.c.direction == "out", envelopes.c.sender_org == organisation
        ),
        sa.select(transfers.c.id.label("subject_id"), sa.literal("transfer").label("kind")).where(
            transfers.c.direction == "out", transfers.c.sender_org == organisation
        ),
    ).subquery()
    rows = conn.execute(
        sa.select(
            outbox.c.kind,
            outbox.c.subject_id,
            outbox.c.peer_gateway,
            outbox.c.state,
            outbox.c.last_error_code,
            outbox.c.last_error,
            outbox.c.updated_at,
        )
        .join(
            sent_by,
            sa.and_(sent_by.c.subject_id == outbox.c.subject_id, sent_by.c.kind == outbox.c.kind),
        )
        .where(outbox.c.state.in_(_GAVE_UP))
        .order_by(outbox.c.updated_at.desc())
        .limit(RECENT_FAILURES)
    ).all()
    return [
        {
            "what": _WHAT[r.kind],
            "id": r.subject_id,
            "peer": r.peer_gateway,
            "state": r.state,
            "reason": ": ".join(x for x in (r.last_error_code, r.last_error) if x),
            "at": moment(r.updated_at),
        }
        for r in rows
    ]


def _peers(gateway: Gateway, last: dict[str, dict[str, str]]) -> tuple[list[dict[str, Any]], str]:
    try:
        directory = gateway.directory.current()
    except DirectoryError as exc:
        return [], exc.message
    revoked = {r.gateway for r in directory.revocations}
    peers = []
    for entry in directory.gateways:
        if entry.name == gateway.config.name:
            continue
        seen = last.get(entry.name, {})
        peers.append(
            {
                "name": entry.name,
                "address": entry.peer_address,
                "organisations": ", ".join(entry.organisations),
                "revoked": entry.name in revoked,
                "delivered": moment(seen.get("delivered")),
                "failed": moment(seen.get("failed")),
            }
        )
    return peers, ""
