"""Secure messages on a gateway: send, list, read, download, status, recall.

These are the use cases behind the local API and the CLI. Sending seals the
envelope and writes it, the sender's "sent" item, the outbox rows and the
audit entry in one transaction; the delivery worker carries it after commit.
Content is only ever decrypted here, for a caller allowed to read it, and is
never stored in the clear.

Who may read what: a message addressed to ``person@ORG`` is readable by that
person; to ``mailbox@ORG`` by the shared mailbox's members (people, never a
system's token); to ``system@ORG`` by that system's token; to ``ORG`` (the
whole organisation) by the organisation's administrators, who route it. The
sender may read their own sent items: the envelope's content key is also
sealed to the sending organisation for that purpose.

This module is over 400 lines because it is one class, :class:`Messaging`, whose
send, read, status and recall steps share the access rules (:meth:`readable_copy`,
the mailbox membership checks); split apart, each part would carry its own copy
of who may see what, which is the rule that must not drift.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import (
    InputError,
    MessageNotYours,
    MessageRecalled,
    NotFound,
    RecallRefused,
)
from gcx.gateway.exchange import outbox
from gcx.gateway.messages import control, sending
from gcx.gateway.messages.envelopes import (
    StoredEnvelope,
    load_envelope,
)

# Compose lives in sending.py; the web pages import it from here, as before.
from gcx.gateway.messages.sending import Compose as Compose
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.protocol import strict_json
from gcx.protocol.delivery import DeliveryEvent, DeliveryState
from gcx.protocol.envelope import PlainPart
from gcx.protocol.message import (
    MessageContent,
)
from gcx.store import iso
from gcx.store.schema import mailbox_items, mailboxes, receipts

_STILL_TRYING = frozenset(
    {DeliveryState.QUEUED.value, DeliveryState.SENDING.value, DeliveryState.RETRYING.value}
)


def _receipt_summary(document: bytes) -> dict[str, Any]:
    """What a person wants from a stored receipt: unknown addresses, refusal, reader.

    Receipts were verified when they were stored, so reading the payload here
    without verifying again is only for display.
    """
    try:
        payload = strict_json.loads(base64.b64decode(strict_json.loads(document)["payload"]))
    except (ValueError, KeyError, TypeError):
        return {}
    summary: dict[str, Any] = {}
    for field_name in ("unknown_addresses", "refusal", "reader"):
        if payload.get(field_name):
            summary[field_name] = payload[field_name]
    return summary


@dataclass(frozen=True)
class MailboxPage:
    items: list[dict[str, Any]]
    # Pass as ``before`` for the next, older page; None on the last page.
    older: int | None


class Messaging:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # -- sending ------------------------------------------------------------

    def send(self, caller: Caller, compose: Compose) -> dict[str, Any]:
        """Seal and store one message (see :mod:`gcx.gateway.messages.sending`)."""
        sealed = sending.seal(self.gateway, caller, compose)
        with self.gateway.db.transaction() as conn:
            sending.store_sealed(self.gateway, conn, [sealed])
        return sealed.answer

    def send_many(
        self, batch: Sequence[tuple[Caller, Compose]]
    ) -> list[dict[str, Any] | BaseException]:
        """Seal each message, store all that sealed together; each one's answer or error."""
        outcomes: list[dict[str, Any] | BaseException] = []
        sealed: list[tuple[int, sending.Sealed]] = []
        for index, (caller, compose) in enumerate(batch):
            try:
                sealed.append((index, sending.seal(self.gateway, caller, compose)))
                outcomes.append({})
            except Exception as error:
                outcomes.append(error)
        failures = sending.store_each(self.gateway, [s for _, s in sealed]) if sealed else []
        for (index, item), failure in zip(sealed, failures, strict=True):
            outcomes[index] = item.answer if failure is None else failure
        return outcomes

    # -- reading ------------------------------------------------------------

    def _member_of(self, conn: Connection, caller: Caller) -> set[str]:
        rows = conn.execute(
            sa.select(mailboxes.c.name, mailboxes.c.members).where(
                mailboxes.c.organisation == caller.organisation
            )
        ).all()
        return {r.name for r in rows if caller.account in r.members}

    def _owners(self, conn: Connection, caller: Caller) -> set[str]:
        # Shared mailboxes are read through membership, and only people are
        # members: a system's token never reads a mailbox, whatever its name or
        # a members list says (its name is never a person's or a mailbox's; see
        # gcx.gateway.tokens).
        owners = {caller.account}
        if caller.is_person:
            owners |= self._member_of(conn, caller)
        if "admin" in caller.roles:
            owners.add("*")
        return owners

    def list_box(
        self, caller: Caller, box: str, limit: int = 50, before: int | None = None
    ) -> MailboxPage:
        """The newest ``limit`` copies in ``box``, or those older than the cursor ``before``.

        The cursor is a copy's position (its row id), not an offset, so a page
        stays the same when new messages arrive while someone reads on.
        """
        if box not in ("inbox", "sent"):
            raise InputError("box must be inbox or sent.")
        if not 1 <= limit <= 500:
            raise InputError("limit must be between 1 and 500.")
        if before is not None and before < 1:
            raise InputError("before must be a position from an earlier page.")
        with self.gateway.db.transaction() as conn:
            owners = self._owners(conn, caller) if box == "inbox" else {caller.account}
            query = (
                sa.select(mailbox_items)
                .where(
                    mailbox_items.c.organisation == caller.organisation,
                    mailbox_items.c.box == box,
                    mailbox_items.c.owner.in_(owners),
                )
                .order_by(mailbox_items.c.id.desc())
                .limit(limit + 1)  # one more, to know whether there is an older page
            )
            if before is not None:
                query = query.where(mailbox_items.c.id < before)
            rows = conn.execute(query).all()
            older = rows[limit - 1].id if len(rows) > limit else None
            items = []
            for row in rows[:limit]:
                direction = "in" if box == "inbox" else "out"
                stored = load_envelope(conn, self.gateway.blobs, row.envelope_id, direction)
                summary: dict[str, Any] = {
                    "id": row.envelope_id,
                    "box": box,
                    "mailbox": row.owner,
                    "from": f"{stored.header.sender.user}@{stored.header.sender.organisation}",
                    "marking": stored.header.marking,
                    "created_at": iso(stored.header.created_at),
                    "read_at": row.read_at,
                    "recalled": row.recalled_at is not None,
                }
                if row.recalled_at is None or box == "sent":
                    content = self._content(stored, caller.organisation)
                    summary.update(
                        subject=content.subject,
                        to=[str(a) for a in content.to],
                        attachments=len(content.attachments),
                    )
                items.append(summary)
        return MailboxPage(items, older)

    def _content(self, stored: StoredEnvelope, org: str) -> MessageContent:
        return MessageContent.from_bytes(self._open(stored, org)[0].data)

    def _open(self, stored: StoredEnvelope, org: str) -> list[PlainPart]:
        key = self.gateway.keys.organisations[org].encryption
        return crypto.open_envelope(stored.header, stored.parts, org, key)

    def readable_copy(
        self, conn: Connection, caller: Caller, envelope_id: str, *, sender_view: bool = False
    ) -> tuple[str, list[Any]]:
        """Which copy the caller may read ("in" or "out") and the mailbox items that allow it.

        With ``sender_view`` only the sender's own copy will do (status, recall):
        a sender who also received the message, having addressed their own
        organisation, must still see it as its sender there.
        """
        items = conn.execute(
            sa.select(mailbox_items).where(
                mailbox_items.c.envelope_id == envelope_id,
                mailbox_items.c.organisation == caller.organisation,
            )
        ).all()
        sent = [i for i in items if i.box == "sent" and i.owner == caller.account]
        if sender_view:
            if sent:
                return "out", sent
            raise MessageNotYours("Only the sender sees a message's delivery and may recall it.")
        inbox = [i for i in items if i.box == "inbox" and i.owner in self._owners(conn, caller)]
        if inbox:
            return "in", inbox
        if sent:
            return "out", sent
        raise MessageNotYours("That message is not addressed to you or to a mailbox you belong to.")

    def read(self, caller: Caller, envelope_id: str) -> tuple[dict[str, Any], bool]:
        """The message, marked read on first reading; and whether a read receipt was queued.

        A receipt the sender asked for is signed and written to the outbox in
        the transaction that marks the message read; the caller need only wake
        the delivery worker.
        """
        gateway = self.gateway
        now = gateway.clock.now()
        with audit.refusals_recorded(gateway.db, gateway.clock), gateway.db.transaction() as conn:
            try:
                direction, items = self.readable_copy(conn, caller, envelope_id)
            except MessageNotYours as error:
                raise audit.AuditedRefusal(
                    error, actor=caller.actor, action="message.refused", subject=envelope_id[:40]
                ) from None
            if direction == "in" and all(i.recalled_at for i in items):
                raise MessageRecalled("The sender recalled this message before it was read.")
            stored = load_envelope(conn, gateway.blobs, envelope_id, direction)
            content = self._content(stored, caller.organisation)
            first_read = receipt_queued = False
            if direction == "in":
                unread = [i.id for i in items if i.read_at is None and i.recalled_at is None]
                if unread:
                    first_read = all(i.read_at is None for i in items)
                    conn.execute(
                        mailbox_items.update()
                        .where(mailbox_items.c.id.in_(unread))
                        .values(read_at=iso(now), read_by=caller.account)
                    )
                audit.append(
                    conn,
                    actor=caller.actor,
                    action="message.read",
                    subject=envelope_id,
                    now=now,
                    details={"first_read": first_read, "marking": stored.header.marking},
                )
                receipt_queued = first_read and content.read_receipt
                if receipt_queued:
                    # In this transaction, so the message is never marked read
                    # without the receipt the sender asked for on its way.
                    control.enqueue_read_receipt(
                        conn,
                        gateway,
                        envelope_id=envelope_id,
                        organisation=caller.organisation,
                        reader=caller.account,
                        actor=caller.actor,
                        now=now,
                    )
        body = {
            "id": envelope_id,
            "box": "inbox" if direction == "in" else "sent",
            # Sender and marking come from the signed header, which every
            # gateway checked; the content was checked to agree with it.
            "from": f"{stored.header.sender.user}@{stored.header.sender.organisation}",
            "to": [str(a) for a in content.to],
            "cc": [str(a) for a in content.cc],
            "subject": content.subject,
            "body": content.body,
            "marking": stored.header.marking,
            "handling": content.handling,
            "created_at": iso(stored.header.created_at),
            "attachments": [
                {
                    "index": a.index,
                    "name": a.name,
                    "media_type": a.media_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "url": f"/api/v1/messages/{envelope_id}/attachments/{a.index}",
                }
                for a in content.attachments
            ],
        }
        return body, receipt_queued

    def attachment(self, caller: Caller, envelope_id: str, index: int) -> tuple[str, str, bytes]:
        with self.gateway.db.transaction() as conn:
            direction, items = self.readable_copy(conn, caller, envelope_id)
            if direction == "in" and all(i.recalled_at for i in items):
                raise MessageRecalled("The sender recalled this message before it was read.")
            stored = load_envelope(conn, self.gateway.blobs, envelope_id, direction)
        parts = self._open(stored, caller.organisation)
        content = MessageContent.from_bytes(parts[0].data)
        info = next((a for a in content.attachments if a.index == index), None)
        if info is None or index >= len(parts):
            raise NotFound(f"The message has no attachment {index}.")
        data = parts[index].data
        if crypto.sha256_hex(data) != info.sha256:
            raise InputError("The attachment does not match its recorded digest.")
        return info.name, info.media_type, data

    # -- the sender's view ---------------------------------------------------

    def status(self, caller: Caller, envelope_id: str) -> dict[str, Any]:
        with self.gateway.db.transaction() as conn:
            direction, _ = self.readable_copy(conn, caller, envelope_id, sender_view=True)
            if direction != "out":
                raise MessageNotYours("Only the sender sees a message's delivery status.")
            deliveries = outbox.states_for(conn, envelope_id)
            held = conn.execute(
                sa.select(receipts)
                .where(receipts.c.subject_id == envelope_id)
                .order_by(receipts.c.id)
            ).all()
        states = {d["state"] for d in deliveries}
        if states == {DeliveryState.DELIVERED.value}:
            overall = "delivered"
        elif len(states) == 1:
            overall = next(iter(states))
        else:
            overall = "partly " + "/".join(sorted(states))
        return {
            "id": envelope_id,
            "state": overall,
            "deliveries": deliveries,
            "receipts": [
                {
                    "organisation": r.organisation,
                    "kind": r.kind,
                    "outcome": r.outcome,
                    "received_at": r.received_at,
                    "late": r.late,
                    **_receipt_summary(bytes(r.document)),
                    "document": bytes(r.document).decode(),
                }
                for r in held
            ],
        }

    # -- recall ----------------------------------------------------------------

    def withdraw_unsent(self, caller: Caller, envelope_id: str) -> list[str]:
        """Recall what has not left yet; return the peer gateways already holding it."""
        gateway = self.gateway
        now = gateway.clock.now()
        with gateway.db.transaction() as conn:
            direction, _ = self.readable_copy(conn, caller, envelope_id, sender_view=True)
            if direction != "out":
                raise MessageNotYours("Only the sender may recall a message.")
            held_by_peers: list[str] = []
            for row in outbox.states_for(conn, envelope_id):
                if row["state"] == DeliveryState.RECALLED.value:
                    continue
                if row["state"] == DeliveryState.DELIVERED.value:
                    held_by_peers.append(row["gateway"])
            for row_id, state in outbox.rows_for(conn, envelope_id):
                # Deliveries that ended without arriving (failed, expired) have
                # nothing to withdraw; delivered ones are withdrawn at the peer.
                if state in _STILL_TRYING:
                    outbox.transition(conn, row_id, DeliveryEvent.RECALL, now=now)
            audit.append(
                conn,
                actor=caller.actor,
                action="message.recall-requested",
                subject=envelope_id,
                now=now,
                details={"held_by": held_by_peers},
            )
        return held_by_peers

    def recall_signed(self, caller: Caller, envelope_id: str) -> bytes:
        from gcx.protocol.batch import RECALL_TYPE, Recall

        keys = self.gateway.keys.organisations[caller.organisation]
        recall = Recall(envelope_id, caller.organisation, caller.account, self.gateway.clock.now())
        return crypto.sign_document(
            RECALL_TYPE, recall.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
        )

    def finish_recall(
        self, caller: Caller, envelope_id: str, outcomes: dict[str, tuple[str, str | None]]
    ) -> dict[str, Any]:
        """Record what each peer said; mark recalled those that withdrew it."""
        gateway = self.gateway
        now = gateway.clock.now()
        refused = {peer: why for peer, (outcome, why) in outcomes.items() if outcome != "recalled"}
        with gateway.db.transaction() as conn:
            for row_id, state in outbox.rows_for(conn, envelope_id):
                peer = outbox.peer_of(conn, row_id)
                if state == DeliveryState.DELIVERED.value and peer not in refused:
                    outbox.transition(conn, row_id, DeliveryEvent.RECALL, now=now)
            if not refused:
                conn.execute(
                    mailbox_items.update()
                    .where(
                        mailbox_items.c.envelope_id == envelope_id,
                        mailbox_items.c.box == "sent",
                    )
                    .values(recalled_at=iso(now))
                )
            audit.append(
                conn,
                actor=caller.actor,
                action="message.recalled" if not refused else "message.recall-refused",
                subject=envelope_id,
                now=now,
                details={"outcomes": {p: o for p, (o, _) in outcomes.items()}},
            )
        if refused:
            raise RecallRefused(
                "The message could not be recalled everywhere: "
                + "; ".join(f"{peer}: {why}" for peer, why in refused.items())
            )
        return {"id": envelope_id, "state": "recalled"}
