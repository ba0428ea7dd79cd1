"""The people who may sign in to a service's web pages, as administrators manage them.

Adding someone makes their first password and second-factor secret, shown
once to the administrator and stored only as an argon2id hash and a sealed
secret. Every change is written with its audit entry in one transaction,
naming the administrator (or the command line) as the actor.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.clock import Clock
from gcx.errors import AccountNameTaken, DuplicateEnrolment, InputError, NotFound
from gcx.protocol.identifiers import check_account_name
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import api_tokens, mailboxes
from gcx.store.schema_web import web_credentials, web_sessions, web_users
from gcx.store.tokens import standing_changed

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@dataclass(frozen=True)
class NewUser:
    """What an administrator hands to a new person: shown once, never stored in the clear."""

    username: str
    password: str
    totp_secret: str
    totp_uri: str


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InputError(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")


def _names_other_account(conn: Connection, organisation: str, name: str) -> bool:
    """Whether ``name`` is a shared mailbox or a live system token of ``organisation``."""
    mailbox = sa.select(mailboxes.c.name).where(
        mailboxes.c.organisation == organisation, mailboxes.c.name == name
    )
    system = sa.select(api_tokens.c.id).where(
        api_tokens.c.organisation == organisation,
        api_tokens.c.account == name,
        api_tokens.c.account_kind == "system",
        api_tokens.c.revoked_at.is_(None),
    )
    return bool(conn.execute(mailbox).first() or conn.execute(system).first())


class WebPeople:
    """Adding people, their roles, unlocking, resetting and disabling them."""

    def __init__(
        self, db: Database, clock: Clock, sealing_key: bytes, issuer: str, roles: tuple[str, ...]
    ) -> None:
        self.db = db
        self.clock = clock
        self.sealing_key = sealing_key
        self.issuer = issuer
        self.roles = roles

    def add_user(
        self,
        username: str,
        display_name: str,
        roles: list[str],
        organisation: str | None,
        *,
        by: str,
        password: str | None = None,
    ) -> NewUser:
        """Create a person; return their first password and second-factor secret."""
        check_account_name(username)
        if not display_name.strip() or len(display_name) > 200:
            raise InputError("Give the person's name, up to 200 characters.")
        unknown = sorted(set(roles) - set(self.roles))
        if unknown or not roles:
            raise InputError(f"Give one or more roles from: {', '.join(self.roles)}.")
        password = password or secrets.token_urlsafe(12)
        check_password_rules(password)
        secret = crypto.new_totp_secret()
        now = self.clock.now()
        with self.db.transaction() as conn:
            taken = conn.execute(
                sa.select(web_users.c.id).where(web_users.c.username == username)
            ).first()
            if taken is not None:
                raise DuplicateEnrolment(f"There is already a person called {username!r}.")
            if organisation is not None and _names_other_account(conn, organisation, username):
                # A person made with a mailbox's or a system's name would read its messages.
                raise AccountNameTaken(
                    f"{username}@{organisation} is a shared mailbox's or a system's name "
                    "already; choose another user name."
                )
            conn.execute(
                web_users.insert().values(
                    username=username,
                    organisation=organisation,
                    display_name=display_name.strip(),
                    roles=sorted(set(roles)),
                    password_hash=crypto.hash_password(password),
                    totp_sealed=crypto.seal_secret(self.sealing_key, secret, username),
                    totp_last_step=0,
                    failed_attempts=0,
                    created_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=by,
                action="web.user-added",
                subject=username,
                now=now,
                details={"roles": sorted(set(roles)), "organisation": organisation},
            )
        return NewUser(
            username,
            password,
            crypto.totp_secret_text(secret),
            crypto.totp_uri(secret, username, self.issuer),
        )

    def users(self, organisation: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(web_users).order_by(web_users.c.username)
        if organisation is not None:
            query = query.where(web_users.c.organisation == organisation)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        now = self.clock.now()
        return [
            {
                "username": r.username,
                "display_name": r.display_name,
                "organisation": r.organisation,
                "roles": list(r.roles),
                "locked": bool(r.locked_until and parse_iso(r.locked_until) > now),
                "disabled": r.disabled_at is not None,
                "created_at": r.created_at,
            }
            for r in rows
        ]

    def set_roles(self, username: str, roles: list[str], *, by: str) -> None:
        unknown = sorted(set(roles) - set(self.roles))
        if unknown or not roles:
            raise InputError(f"Give one or more roles from: {', '.join(self.roles)}.")
        self._change(username, by, "web.roles-changed", roles=sorted(set(roles)))
        standing_changed()  # their API tokens act with the new roles from now on

    def unlock(self, username: str, *, by: str) -> None:
        self._change(username, by, "web.user-unlocked", failed_attempts=0, locked_until=None)

    def disable(self, username: str, *, by: str) -> None:
        now = self.clock.now()
        with self.db.transaction() as conn:
            self._update(conn, username, disabled_at=iso(now))
            self._end_sessions(conn, username, now)
            audit.append(conn, actor=by, action="web.user-disabled", subject=username, now=now)
        standing_changed()  # their API tokens stop now, not when a remembered caller ages out

    def reset_sign_in(self, username: str, *, by: str) -> NewUser:
        """New first password and second-factor secret for someone who lost theirs.

        Their security keys are removed (a lost phone may hold a passkey), every
        session they have ends, and a lockout is lifted: after this only what
        the administrator hands over signs them in. A disabled person stays
        disabled.
        """
        password = secrets.token_urlsafe(12)
        secret = crypto.new_totp_secret()
        now = self.clock.now()
        with self.db.transaction() as conn:
            self._update(
                conn,
                username,
                password_hash=crypto.hash_password(password),
                totp_sealed=crypto.seal_secret(self.sealing_key, secret, username),
                totp_last_step=0,
                failed_attempts=0,
                locked_until=None,
            )
            user_id = sa.select(web_users.c.id).where(web_users.c.username == username)
            removed = conn.execute(
                web_credentials.delete().where(
                    web_credentials.c.user_id == user_id.scalar_subquery()
                )
            ).rowcount
            self._end_sessions(conn, username, now)
            audit.append(
                conn,
                actor=by,
                action="web.sign-in-reset",
                subject=username,
                now=now,
                details={"security_keys_removed": removed},
            )
        return NewUser(
            username,
            password,
            crypto.totp_secret_text(secret),
            crypto.totp_uri(secret, username, self.issuer),
        )

    def _change(self, username: str, by: str, action: str, **values: Any) -> None:
        now = self.clock.now()
        with self.db.transaction() as conn:
            self._update(conn, username, **values)
            details = {"roles": values["roles"]} if "roles" in values else {}
            audit.append(conn, actor=by, action=action, subject=username, now=now, details=details)

    def _update(self, conn: Connection, username: str, **values: Any) -> None:
        done = conn.execute(
            web_users.update().where(web_users.c.username == username).values(**values)
        )
        if done.rowcount != 1:
            raise NotFound(f"There is no person called {username[:64]!r}.")

    def _end_sessions(self, conn: Connection, username: str, now: dt.datetime) -> None:
        ids = sa.select(web_users.c.id).where(web_users.c.username == username).scalar_subquery()
        conn.execute(
            web_sessions.update()
            .where(web_sessions.c.user_id == ids, web_sessions.c.ended_at.is_(None))
            .values(ended_at=iso(now))
        )
