"""API tokens for an organisation's people and systems on its own gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.clock import Clock
from gcx.errors import InputError, NotFound, TokenInvalid
from gcx.protocol.identifiers import check_account_name
from gcx.store import Database, iso
from gcx.store.schema import api_tokens
from gcx.store.tokens import live_token_row

ACCOUNT_KINDS = ("user", "system")
ROLES = ("staff", "admin", "system", "security-officer", "sign-off")


@dataclass(frozen=True)
class Caller:
    """Who is calling the local API: an account of one hosted organisation."""

    organisation: str
    account: str
    kind: str
    roles: tuple[str, ...]
    token_id: int = 0

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.account}@{self.organisation}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation,
            "account": self.account,
            "kind": self.kind,
            "roles": list(self.roles),
        }


class TokenService:
    def __init__(self, db: Database, hosted: list[str], clock: Clock) -> None:
        self.db = db
        self.hosted = hosted
        self.clock = clock

    def add(
        self,
        organisation: str,
        account: str,
        kind: str,
        roles: list[str],
        *,
        by: str = "administrator",
    ) -> str:
        """Create a token and return it; it is shown once and only its hash is kept."""
        if organisation not in self.hosted:
            raise InputError(f"This gateway does not host {organisation[:16]!r}.")
        check_account_name(account)
        if kind not in ACCOUNT_KINDS:
            raise InputError(f"The account kind must be one of: {', '.join(ACCOUNT_KINDS)}.")
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise InputError(f"Give one or more roles from: {', '.join(ROLES)}.")
        token = crypto.new_token("gcxt")
        now = self.clock.now()
        with self.db.transaction() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_hash=crypto.hash_token(token),
                    organisation=organisation,
                    account=account,
                    account_kind=kind,
                    roles=sorted(set(roles)),
                    created_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=by,
                action="token.added",
                subject=f"{account}@{organisation}",
                now=now,
                details={"kind": kind, "roles": sorted(set(roles))},
            )
        return token

    def revoke(self, organisation: str, account: str, *, by: str = "administrator") -> int:
        now = self.clock.now()
        with self.db.transaction() as conn:
            count = conn.execute(
                api_tokens.update()
                .where(
                    api_tokens.c.organisation == organisation,
                    api_tokens.c.account == account,
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=iso(now))
            ).rowcount
            if not count:
                raise NotFound(f"{account}@{organisation} has no active token.")
            audit.append(
                conn,
                actor=by,
                action="token.revoked",
                subject=f"{account}@{organisation}",
                now=now,
            )
        return int(count)

    def list_for(self, organisation: str) -> list[dict[str, Any]]:
        """The organisation's tokens, newest first: who holds them, never the tokens."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.organisation == organisation)
                .order_by(api_tokens.c.id.desc())
            ).all()
        return [
            {
                "id": r.id,
                "account": r.account,
                "kind": r.account_kind,
                "roles": list(r.roles),
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
                "revoked_at": r.revoked_at,
            }
            for r in rows
        ]

    def authenticate(self, token: str | None, *, request: str, record_use: bool = True) -> Caller:
        """The caller a token belongs to; every use and every refusal is audited.

        With ``record_use=False`` the caller promises to record the use itself,
        in the audit entry of the action it performs in the same transaction
        (see :meth:`record_use`): a busy system sending messages then pays for
        one write per request, not two.
        """
        with audit.refusals_recorded(self.db, self.clock):
            with self.db.read() as conn:
                row = live_token_row(conn, api_tokens, token)
            if row is None:
                raise audit.AuditedRefusal(
                    TokenInvalid(),
                    actor="anonymous",
                    action="token.refused",
                    subject="api",
                    details={"request": request},
                )
        caller = Caller(row.organisation, row.account, row.account_kind, tuple(row.roles), row.id)
        if record_use:
            with self.db.transaction() as conn:
                self.record_use(conn, caller, request=request)
                audit.append(
                    conn,
                    actor=caller.actor,
                    action="token.used",
                    subject="api",
                    now=self.clock.now(),
                    details={"request": request},
                )
        return caller

    def record_use(self, conn: Connection, caller: Caller, *, request: str) -> None:
        """Mark the token used now, inside the caller's transaction."""
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == caller.token_id)
            .values(last_used_at=iso(self.clock.now()))
        )
