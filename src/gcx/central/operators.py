"""Operators of central: adding them, checking their tokens, revoking them.

An operator's token is shown once when it is made; central keeps only its
hash, so a copy of the database does not let anyone act as an operator.
Every use and every refusal of a token is audited.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.central.ports import ACTOR_SYSTEM
from gcx.clock import Clock
from gcx.errors import DuplicateEnrolment, NotFound, TokenInvalid
from gcx.store import Database, iso
from gcx.store.schema import operators
from gcx.store.tokens import live_token_row


class OperatorTokens:
    """Central's operators and their tokens."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.db = database
        self.clock = clock

    def add_operator(self, name: str) -> str:
        """Create an operator and return its token; only the token's hash is kept."""
        token = crypto.new_token("gcxo")
        now = self.clock.now()
        with self.db.transaction() as conn:
            exists = conn.execute(sa.select(operators.c.id).where(operators.c.name == name)).first()
            if exists:
                raise DuplicateEnrolment(f"An operator named {name!r} already exists.")
            conn.execute(
                operators.insert().values(
                    name=name, token_hash=crypto.hash_token(token), created_at=iso(now)
                )
            )
            audit.append(conn, actor=ACTOR_SYSTEM, action="operator.added", subject=name, now=now)
        return token

    def authenticate_operator(self, token: str | None, *, request: str) -> str:
        """The operator's name for a valid token; raise :class:`TokenInvalid` otherwise."""
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = live_token_row(conn, operators, token)
            if row is None:
                raise audit.AuditedRefusal(
                    TokenInvalid(
                        "The operator token is unknown or revoked; create one with "
                        "'gcx central operator add'."
                    ),
                    actor="anonymous",
                    action="token.refused",
                    subject="operator",
                    details={"request": request},
                )
            audit.append(
                conn,
                actor=f"operator:{row.name}",
                action="token.used",
                subject="operator",
                now=now,
                details={"request": request},
            )
            return str(row.name)

    def revoke_operator(self, name: str) -> None:
        now = self.clock.now()
        with self.db.transaction() as conn:
            updated = conn.execute(
                operators.update()
                .where(operators.c.name == name, operators.c.revoked_at.is_(None))
                .values(revoked_at=iso(now))
            ).rowcount
            if not updated:
                raise NotFound(f"There is no active operator named {name!r}.")
            audit.append(conn, actor=ACTOR_SYSTEM, action="operator.revoked", subject=name, now=now)
