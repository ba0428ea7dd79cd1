"""API tokens for an organisation's people and systems on its own gateway.

Two kinds of token, and who may make each:

* A **person's** token (kind ``user``) is bound to that person's account (the
  ``web_users`` row, by id) and issued only to them, by themselves, on their
  own account page after signing in with both factors
  (:meth:`TokenService.issue_to_person`). It acts as that person and never
  with more roles than the person holds at the moment of use: a person who is
  disabled, renamed or loses a role takes their tokens with them.
* A **system's** token (kind ``system``) is added by an organisation's
  administrator (web) or by the gateway's operator (command line) for a
  back-office system (:meth:`TokenService.add_system`). Its name may not be a
  person's or a shared mailbox's of the organisation, and a system reads only
  what is addressed to its own name, never a person's or a mailbox's messages.

So nobody can hold a token that carries another person's or a mailbox's name:
an administrator can no longer make a token for ``alice`` or ``benefits`` and
read as them. A name that becomes a person's or mailbox's after a system token
was made with it is refused at use, not only at creation.

A caller the database vouched for is remembered for :data:`REMEMBER_FOR`
(:meth:`TokenService.known`, by the token's hash), so a busy system is not
looked up per request. A change of standing made in this process (revoked,
disabled, roles, a name taken) forgets them all at once; one made by another
replica or process counts here within :data:`REMEMBER_FOR`. Refusals are
never remembered.

(Just over 400 lines: issuing, standing and revoking read best side by side.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.clock import Clock
from gcx.errors import (
    AccountNameTaken,
    Forbidden,
    InputError,
    NotFound,
    PersonTokenRefused,
    TokenInvalid,
)
from gcx.gateway.remembered_callers import RememberedCallers
from gcx.protocol.identifiers import check_account_name
from gcx.store import Database, iso
from gcx.store.schema import api_tokens, mailboxes
from gcx.store.schema_web import web_users
from gcx.store.tokens import live_token_row, standing_changed, standing_generation

ACCOUNT_KINDS = ("user", "system")
ROLES = ("staff", "admin", "system", "security-officer", "sign-off")
SENDING_ROLES = frozenset({"staff", "system", "admin"})
# The longest a token revoked (or a person disabled) by another replica or process is still
# honoured here; a busy system's token is then looked up every two seconds, not per request.
REMEMBER_FOR = dt.timedelta(seconds=2)
# Remembered callers at most; the oldest is forgotten first.
REMEMBER_AT_MOST = 4096


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

    @property
    def is_person(self) -> bool:
        return self.kind == "user"

    def to_dict(self) -> dict[str, Any]:
        return {
            "organisation": self.organisation,
            "account": self.account,
            "kind": self.kind,
            "roles": list(self.roles),
        }


def require_sender(caller: Caller, what: str) -> None:
    """Refuse a caller with no role that may send ``what`` (messages, files).

    The API modules call this before reading a body, so a caller without the
    role learns 403 whatever they send; the use cases call it again, so no
    other way in skips it.
    """
    if not SENDING_ROLES & set(caller.roles):
        raise Forbidden(f"Your account has no role that may send {what}.")


def name_taken(conn: Connection, organisation: str, name: str) -> str | None:
    """Whether ``name`` is a person's (on this gateway) or a shared mailbox's of ``organisation``.

    People's user names are unique across the gateway, whichever organisation
    they act for, so any person of that name counts.
    """
    if conn.execute(sa.select(web_users.c.id).where(web_users.c.username == name)).first():
        return "person"
    shared = conn.execute(
        sa.select(mailboxes.c.name).where(
            mailboxes.c.organisation == organisation, mailboxes.c.name == name
        )
    ).first()
    return "mailbox" if shared else None


def system_token_named(conn: Connection, organisation: str | None, name: str) -> bool:
    """Whether a live system token of ``organisation`` (or of any, if None) has ``name``."""
    query = sa.select(api_tokens.c.id).where(
        api_tokens.c.account == name,
        api_tokens.c.account_kind == "system",
        api_tokens.c.revoked_at.is_(None),
    )
    if organisation is not None:
        query = query.where(api_tokens.c.organisation == organisation)
    return conn.execute(query).first() is not None


class TokenService:
    def __init__(self, db: Database, hosted: list[str], clock: Clock) -> None:
        self.db = db
        self.hosted = hosted
        self.clock = clock
        self._remembered: RememberedCallers[Caller] = RememberedCallers(
            clock, REMEMBER_FOR, REMEMBER_AT_MOST
        )

    def known(self, token: str | None) -> Caller | None:
        """The caller of a token the database vouched for within :data:`REMEMBER_FOR`, or None.

        None means "ask :meth:`authenticate`", which looks the token up, audits a
        refusal and remembers a success. Cheap enough for the event loop.
        """
        return self._remembered.get(token)

    def add(
        self,
        organisation: str,
        account: str,
        kind: str,
        roles: list[str],
        *,
        by: str = "administrator",
    ) -> str:
        """What an administrator or the command line may add: a system's token only.

        A person's token is refused here, whoever asks: it is issued to the
        person themselves (:meth:`issue_to_person`).
        """
        if kind not in ACCOUNT_KINDS:
            raise InputError(f"The account kind must be one of: {', '.join(ACCOUNT_KINDS)}.")
        if kind == "user":
            raise PersonTokenRefused()
        return self.add_system(organisation, account, roles, by=by)

    def add_system(
        self, organisation: str, account: str, roles: list[str], *, by: str = "administrator"
    ) -> str:
        """Create a system's token and return it; it is shown once and only its hash is kept."""
        if organisation not in self.hosted:
            raise InputError(f"This gateway does not host {organisation[:16]!r}.")
        check_account_name(account)
        unknown = [r for r in roles if r not in ROLES]
        if unknown or not roles:
            raise InputError(f"Give one or more roles from: {', '.join(ROLES)}.")
        with self.db.transaction() as conn:
            taken = name_taken(conn, organisation, account)
            if taken is not None:
                raise AccountNameTaken(
                    f"{account}@{organisation} is a {taken} of this organisation; a system's "
                    "token may not carry it. Choose another name for the system."
                )
            return self._insert(conn, organisation, account, "system", roles, None, by=by)

    def issue_to_person(self, person_id: int, *, by: str | None = None) -> str:
        """A token for the signed-in person ``person_id``, with the roles they hold now.

        Only the person's own account page (after sign-in with both factors)
        calls this: whoever else holds a person's id cannot reach it.
        """
        with self.db.transaction() as conn:
            person = conn.execute(sa.select(web_users).where(web_users.c.id == person_id)).first()
            if person is None or person.disabled_at is not None:
                raise NotFound("There is no such person on this gateway.")
            if person.organisation not in self.hosted:
                raise PersonTokenRefused(
                    "Your account does not act for an organisation this gateway hosts."
                )
            roles = [r for r in person.roles if r in ROLES]
            if not roles:
                raise PersonTokenRefused("Your account holds no role a token could use.")
            actor = by or f"web:{person.username}@{person.organisation}"
            return self._insert(
                conn, person.organisation, person.username, "user", roles, person.id, by=actor
            )

    def _insert(
        self,
        conn: Connection,
        organisation: str,
        account: str,
        kind: str,
        roles: list[str],
        person_id: int | None,
        *,
        by: str,
    ) -> str:
        token = crypto.new_token("gcxt")
        now = self.clock.now()
        conn.execute(
            api_tokens.insert().values(
                token_hash=crypto.hash_token(token),
                organisation=organisation,
                account=account,
                account_kind=kind,
                roles=sorted(set(roles)),
                created_at=iso(now),
                person_id=person_id,
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
        standing_changed()
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

    def list_own(self, person_id: int) -> list[dict[str, Any]]:
        """A person's own tokens, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(api_tokens)
                .where(api_tokens.c.person_id == person_id, api_tokens.c.account_kind == "user")
                .order_by(api_tokens.c.id.desc())
            ).all()
        return [
            {
                "id": r.id,
                "roles": list(r.roles),
                "created_at": r.created_at,
                "last_used_at": r.last_used_at,
                "revoked_at": r.revoked_at,
            }
            for r in rows
        ]

    def revoke_own(self, person_id: int, token_id: int, *, by: str) -> None:
        """A person revokes one of their own tokens; another's is "not found"."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(api_tokens).where(
                    api_tokens.c.id == token_id,
                    api_tokens.c.person_id == person_id,
                    api_tokens.c.account_kind == "user",
                    api_tokens.c.revoked_at.is_(None),
                )
            ).first()
            if row is None:
                raise NotFound("You have no such active token.")
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == row.id).values(revoked_at=iso(now))
            )
            audit.append(
                conn,
                actor=by,
                action="token.revoked",
                subject=f"{row.account}@{row.organisation}",
                now=now,
                details={"token": row.id},
            )
        standing_changed()

    def authenticate(self, token: str | None, *, request: str, record_use: bool = True) -> Caller:
        """The caller a token belongs to; every use and every refusal is audited.

        With ``record_use=False`` the caller promises to record the use itself,
        in the audit entry of the action it performs in the same transaction
        (see :meth:`record_use`): a busy system sending messages then pays for
        one write per request, not two.
        """
        generation = standing_generation()
        with audit.refusals_recorded(self.db, self.clock):
            with self.db.read() as conn:
                row = live_token_row(conn, api_tokens, token)
                why = "unknown" if row is None else None
                roles: tuple[str, ...] = ()
                if row is not None:
                    why, roles = self._standing(conn, row)
            if why is not None:
                raise audit.AuditedRefusal(
                    TokenInvalid(),
                    actor="anonymous",
                    action="token.refused",
                    subject="api",
                    details={"request": request, "why": why},
                )
        assert row is not None
        caller = Caller(row.organisation, row.account, row.account_kind, roles, row.id)
        self._remembered.put(caller, row.token_hash, generation)
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

    def _standing(self, conn: Connection, row: Any) -> tuple[str | None, tuple[str, ...]]:
        """Why a live token may not act now (or None), and the roles it acts with.

        A person's token acts only while its person exists under the same name
        and organisation and is not disabled, and with no role the person has
        lost since. A system's token is refused once its name is a person's or
        a shared mailbox's, whichever came first.
        """
        if row.account_kind == "system":
            if name_taken(conn, row.organisation, row.account) is not None:
                return "system-name-taken", ()
            return None, tuple(row.roles)
        if row.account_kind != "user" or row.person_id is None:
            return "not-issued-to-a-person", ()
        person = conn.execute(
            sa.select(web_users.c.username, web_users.c.organisation, web_users.c.roles).where(
                web_users.c.id == row.person_id, web_users.c.disabled_at.is_(None)
            )
        ).first()
        if person is None or (person.username, person.organisation) != (
            row.account,
            row.organisation,
        ):
            return "person-gone", ()
        roles = tuple(sorted(set(row.roles) & set(person.roles)))
        return (None if roles else "person-roles-gone"), roles

    def record_use(self, conn: Connection, caller: Caller, *, request: str) -> None:
        """Mark the token used now, inside the caller's transaction."""
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == caller.token_id)
            .values(last_used_at=iso(self.clock.now()))
        )
