"""Shared mailboxes such as ``benefits@E09000030`` and who belongs to them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx import audit
from gcx.clock import Clock
from gcx.errors import AccountNameTaken, Conflict, InputError, NotFound
from gcx.gateway.tokens import name_taken, system_token_named
from gcx.protocol.identifiers import check_account_name
from gcx.store import Database, iso
from gcx.store.schema import mailboxes


class MailboxService:
    def __init__(self, db: Database, hosted: list[str], clock: Clock) -> None:
        self.db = db
        self.hosted = hosted
        self.clock = clock

    def _check(self, organisation: str, name: str, members: list[str]) -> None:
        if organisation not in self.hosted:
            raise InputError(f"This gateway does not host {organisation[:16]!r}.")
        check_account_name(name)
        for member in members:
            check_account_name(member)

    def add(self, organisation: str, name: str, members: list[str]) -> dict[str, Any]:
        self._check(organisation, name, members)
        now = self.clock.now()
        with self.db.transaction() as conn:
            if conn.execute(
                sa.select(mailboxes.c.name).where(
                    mailboxes.c.organisation == organisation, mailboxes.c.name == name
                )
            ).first():
                raise Conflict(f"The mailbox {name}@{organisation} already exists.")
            # A mailbox named after a person would let its members read that
            # person's messages; one named after a system, the system's.
            if name_taken(conn, organisation, name) or system_token_named(conn, organisation, name):
                raise AccountNameTaken(
                    f"{name}@{organisation} is a person's or a system's name already; "
                    "choose another name for the mailbox."
                )
            conn.execute(
                mailboxes.insert().values(
                    organisation=organisation,
                    name=name,
                    members=sorted(set(members)),
                    created_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor="administrator",
                action="mailbox.added",
                subject=f"{name}@{organisation}",
                now=now,
                details={"members": sorted(set(members))},
            )
        return {"mailbox": f"{name}@{organisation}", "members": sorted(set(members))}

    def set_members(self, organisation: str, name: str, members: list[str]) -> dict[str, Any]:
        self._check(organisation, name, members)
        now = self.clock.now()
        with self.db.transaction() as conn:
            updated = conn.execute(
                mailboxes.update()
                .where(
                    mailboxes.c.organisation == organisation,
                    mailboxes.c.name == name,
                )
                .values(members=sorted(set(members)))
            ).rowcount
            if not updated:
                raise NotFound(f"There is no mailbox {name}@{organisation}.")
            audit.append(
                conn,
                actor="administrator",
                action="mailbox.members-changed",
                subject=f"{name}@{organisation}",
                now=now,
                details={"members": sorted(set(members))},
            )
        return {"mailbox": f"{name}@{organisation}", "members": sorted(set(members))}

    def list(self) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(mailboxes).order_by(mailboxes.c.organisation, mailboxes.c.name)
            ).all()
        return [{"mailbox": f"{r.name}@{r.organisation}", "members": list(r.members)} for r in rows]
