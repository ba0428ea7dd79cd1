"""People who sign in to the web pages, and their sessions.

Signing in takes two steps, each a separate request: a password (checked
against an argon2id hash), then a TOTP code. After the password the browser
holds a session in stage ``second-factor`` that can do nothing but offer a
code; after the code the session is replaced by a new one (a new cookie
value, so a session identifier seen before sign-in is worth nothing after).

Five failures in a row, of either step, lock the account for fifteen
minutes, and each refusal says how many tries are left (names that are no
account count and lock the same way, so the warning tells nothing of them).
Every failure, lockout and sign-in is in the audit log, and the counters are
written before the refusal is raised, so nothing about a failed attempt is
lost. Sessions end after 30 minutes without a request, after 12
hours in any case, and at sign-out.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import (
    AccountLocked,
    InputError,
    SessionExpired,
    SignInRefused,
)
from gcx.store import iso, parse_iso
from gcx.store.schema_web import web_sessions, web_sign_in_names, web_users
from gcx.web.people import MAX_PASSWORD_LENGTH, WebPeople, check_password_rules

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)
SECOND_FACTOR_WINDOW = dt.timedelta(minutes=5)
IDLE_TIMEOUT = dt.timedelta(minutes=30)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)

STAGE_SECOND_FACTOR = "second-factor"
STAGE_SIGNED_IN = "signed-in"


@dataclass(frozen=True)
class WebUser:
    id: int
    username: str
    organisation: str | None
    display_name: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def actor(self) -> str:
        where = f"@{self.organisation}" if self.organisation else ""
        return f"web:{self.username}{where}"


@dataclass(frozen=True)
class WebSession:
    user: WebUser
    stage: str
    csrf_token: str
    flash: str | None


# Not a gcx error, so not in gcx.errors: it only unwinds a transaction inside this
# module and is always turned into a refusal from that tree before anyone sees it.
class _LostRace(Exception):
    """Another request used the same code or waiting session first (rolls back)."""


def user_from_row(row: Any) -> WebUser:
    return WebUser(
        id=row.id,
        username=row.username,
        organisation=row.organisation,
        display_name=row.display_name,
        roles=frozenset(row.roles),
    )


class WebAccounts(WebPeople):
    """The sign-in rules of one service (central or a gateway), over its database.

    Managing the people themselves is :class:`~gcx.web.people.WebPeople`'s part.
    """

    def change_password(self, user: WebUser, current: str, new: str) -> None:
        """A person changes their own password, proving they know the current one."""
        now = self.clock.now()
        with self.db.read() as conn:
            row = conn.execute(sa.select(web_users).where(web_users.c.id == user.id)).one()
        self.refuse_if_locked(row, now)
        if not crypto.password_matches(current[:MAX_PASSWORD_LENGTH], row.password_hash):
            self.record_failure(row, "password-change", now)
        check_password_rules(new)
        if new == current:
            raise InputError("The new password must be different from the current one.")
        with self.db.transaction() as conn:
            conn.execute(
                web_users.update()
                .where(web_users.c.id == user.id)
                .values(password_hash=crypto.hash_password(new), failed_attempts=0)
            )
            audit.append(
                conn,
                actor=user.actor,
                action="web.password-changed",
                subject=user.username,
                now=now,
            )

    # -- signing in -----------------------------------------------------------------

    def check_password(self, username: str, password: str) -> str:
        """Step one: a right password opens a second-factor session; returns its cookie value."""
        now = self.clock.now()
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(web_users).where(web_users.c.username == username[:64])
            ).first()
        # The password hash is worked out before anything else is decided, for every
        # name, locked, unknown and disabled ones included, so that neither the answer
        # nor its timing tells a name that is an account from one that is not.
        if row is None or row.disabled_at is not None:
            crypto.dummy_password_check(password[:MAX_PASSWORD_LENGTH])
            self._record_unknown_failure(username[:64], now)
        matched = crypto.password_matches(password[:MAX_PASSWORD_LENGTH], row.password_hash)
        self.refuse_if_locked(row, now)
        if not matched:
            self.record_failure(row, "password", now)
        return self.new_session(row.id, STAGE_SECOND_FACTOR, now, now + SECOND_FACTOR_WINDOW)

    def check_code(self, cookie: str, code: str) -> str:
        """Step two: a right TOTP code replaces the session with a signed-in one."""
        now = self.clock.now()
        with self.db.read() as conn:
            found = self.live_session_row(conn, cookie, now)
        if found is None or found.stage != STAGE_SECOND_FACTOR:
            raise SessionExpired("Your sign-in took too long; enter your password again.")
        with self.db.read() as conn:
            row = conn.execute(sa.select(web_users).where(web_users.c.id == found.user_id)).one()
        self.refuse_if_locked(row, now)
        secret = crypto.open_secret(self.sealing_key, row.totp_sealed, row.username)
        step = crypto.totp_step_matched(secret, code, now)
        if step is None or step <= row.totp_last_step:
            # A code already used is refused like a wrong one: someone may have watched it typed.
            self.record_failure(row, "code-reused" if step is not None else "code", now)
        try:
            with self.db.transaction() as conn:
                # Both updates are conditional, so two requests racing with one code (or
                # one waiting session) cannot both win: the loser changes nothing.
                claimed = conn.execute(
                    web_users.update()
                    .where(web_users.c.id == row.id, web_users.c.totp_last_step < step)
                    .values(totp_last_step=step, failed_attempts=0, locked_until=None)
                ).rowcount
                ended = conn.execute(
                    web_sessions.update()
                    .where(
                        web_sessions.c.id_hash == crypto.hash_token(cookie),
                        web_sessions.c.ended_at.is_(None),
                    )
                    .values(ended_at=iso(now))
                ).rowcount
                if claimed != 1 or ended != 1:
                    raise _LostRace()
                audit.append(
                    conn,
                    actor=user_from_row(row).actor,
                    action="web.signed-in",
                    subject=row.username,
                    now=now,
                )
        except _LostRace:
            self.record_failure(row, "code-reused", now)
        return self.new_session(row.id, STAGE_SIGNED_IN, now, now + ABSOLUTE_TIMEOUT)

    def sign_in_federated(self, username: str, issuer: str) -> str:
        """A signed-in session for a person their organisation's identity provider vouched for.

        The provider proves who the person is (and is responsible for their second
        factor); gcx still decides what they may do: only people already added here,
        not disabled and not locked, are let in, with the roles given here.
        """
        now = self.clock.now()
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(web_users).where(web_users.c.username == username[:64])
            ).first()
        if row is None or row.disabled_at is not None:
            self._record_refusal(None, "federated-unknown-or-disabled", now)
            raise SignInRefused(
                "Your organisation's sign-in worked, but you have no account on this gateway; "
                "ask your administrator to add you."
            )
        self.refuse_if_locked(row, now)
        with self.db.transaction() as conn:
            audit.append(
                conn,
                actor=user_from_row(row).actor,
                action="web.signed-in",
                subject=row.username,
                now=now,
                details={"method": "openid-connect", "issuer": issuer},
            )
        return self.new_session(row.id, STAGE_SIGNED_IN, now, now + ABSOLUTE_TIMEOUT)

    def refuse_if_locked(self, row: Any, now: dt.datetime) -> None:
        if row.locked_until and parse_iso(row.locked_until) > now:
            self._record_refusal(row.username, "locked", now)
            raise AccountLocked()

    def record_failure(self, row: Any, what: str, now: dt.datetime) -> NoReturn:
        failures = row.failed_attempts + 1
        locked = failures >= MAX_FAILURES
        with self.db.transaction() as conn:
            conn.execute(
                web_users.update()
                .where(web_users.c.id == row.id)
                .values(
                    failed_attempts=0 if locked else failures,
                    locked_until=iso(now + LOCKOUT) if locked else row.locked_until,
                )
            )
            audit.append(
                conn,
                actor="anonymous",
                action="web.sign-in-refused",
                subject=row.username,
                now=now,
                details={"failed": what, "failures": failures},
            )
            if locked:
                audit.append(
                    conn,
                    actor="anonymous",
                    action="web.user-locked",
                    subject=row.username,
                    now=now,
                    details={"until": iso(now + LOCKOUT)},
                )
        raise AccountLocked() if locked else SignInRefused(tries_left=MAX_FAILURES - failures)

    def _record_unknown_failure(self, name: str, now: dt.datetime) -> NoReturn:
        """Count a failed password step for a name that is no account, as for an account.

        Unknown (and disabled) names keep their own failure counters, by a keyed
        hash of the name, with the same limit and lockout as real accounts: five
        failures in a row lock the name for fifteen minutes and answer
        ``account-locked``, so the lockout says nothing about whether it exists.
        """
        key = crypto.hash_token(f"{self.sealing_key.hex()}:sign-in-name:{name}")
        with self.db.transaction() as conn:
            found = conn.execute(
                sa.select(web_sign_in_names).where(web_sign_in_names.c.name_key == key)
            ).first()
            locked_until = found.locked_until if found else None
            if locked_until and parse_iso(locked_until) > now:
                failures, locked = found.failures if found else 0, True
                why = "locked"
            else:
                failures = (found.failures if found else 0) + 1
                locked = failures >= MAX_FAILURES
                values = {
                    "failures": 0 if locked else failures,
                    "locked_until": iso(now + LOCKOUT) if locked else None,
                    "last_failed_at": iso(now),
                }
                if found is None:
                    conn.execute(web_sign_in_names.insert().values(name_key=key, **values))
                else:
                    conn.execute(
                        web_sign_in_names.update()
                        .where(web_sign_in_names.c.name_key == key)
                        .values(**values)
                    )
                why = "unknown-or-disabled"
            audit.append(
                conn,
                actor="anonymous",
                action="web.sign-in-refused",
                subject="unknown",
                now=now,
                # The name typed is not kept: it may be a password typed into the wrong box.
                details={"failed": why, "failures": failures},
            )
        # Counted as for an account, so the warning of tries left tells nothing either.
        raise AccountLocked() if locked else SignInRefused(tries_left=MAX_FAILURES - failures)

    def _record_refusal(self, known: str | None, why: str, now: dt.datetime) -> None:
        with self.db.transaction() as conn:
            audit.append(
                conn,
                actor="anonymous",
                action="web.sign-in-refused",
                subject=known or "unknown",
                now=now,
                # The name typed is kept only for known accounts: an unknown one may be a
                # password typed into the wrong box.
                details={"failed": why},
            )

    def record_throttled(self, address: str, limit: int) -> None:
        """Audit that an address reached the limit of failed sign-ins (once per episode)."""
        with self.db.transaction() as conn:
            audit.append(
                conn,
                actor="anonymous",
                action="web.sign-in-throttled",
                subject=address[:200],
                now=self.clock.now(),
                details={"failures": limit},
            )

    # -- sessions ---------------------------------------------------------------------

    def new_session(self, user_id: int, stage: str, now: dt.datetime, until: dt.datetime) -> str:
        cookie = secrets.token_urlsafe(32)
        with self.db.transaction() as conn:
            conn.execute(
                web_sessions.insert().values(
                    id_hash=crypto.hash_token(cookie),
                    user_id=user_id,
                    stage=stage,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=iso(now),
                    last_seen_at=iso(now),
                    expires_at=iso(until),
                )
            )
        return cookie

    def live_session_row(self, conn: Connection, cookie: str, now: dt.datetime) -> Any:
        row = conn.execute(
            sa.select(web_sessions).where(web_sessions.c.id_hash == crypto.hash_token(cookie))
        ).first()
        if row is None or row.ended_at is not None or parse_iso(row.expires_at) <= now:
            return None
        if row.stage == STAGE_SIGNED_IN and parse_iso(row.last_seen_at) + IDLE_TIMEOUT <= now:
            return None
        return row

    def session(self, cookie: str, *, take_flash: bool = True, touch: bool = True) -> WebSession:
        """The signed-in session a cookie names; refreshes its idle timer and takes its flash.

        ``take_flash=False`` leaves the notification for the next request (a page
        fetched by a script on the way to the page the person will see).
        ``touch=False`` leaves the idle timer alone too: a script polling for
        status on a page left open is not the person being there.
        """
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = self.live_session_row(conn, cookie, now)
            if row is None or row.stage != STAGE_SIGNED_IN:
                raise SessionExpired()
            user = conn.execute(sa.select(web_users).where(web_users.c.id == row.user_id)).one()
            if user.disabled_at is not None:
                raise SessionExpired()
            take_flash = take_flash and touch
            if touch:
                conn.execute(
                    web_sessions.update()
                    .where(web_sessions.c.id_hash == row.id_hash)
                    .values(last_seen_at=iso(now), **({"flash": None} if take_flash else {}))
                )
        return WebSession(
            user_from_row(user), row.stage, row.csrf_token, row.flash if take_flash else None
        )

    def prune_sessions(self, kept_for: dt.timedelta = dt.timedelta(days=1)) -> int:
        """Delete sessions that ended or expired more than ``kept_for`` ago; return how many.

        Sign-ins and sign-outs are in the audit log; a finished session row is
        only needed until no cookie could name it, so the table does not grow
        with every sign-in for ever.
        """
        cutoff = iso(self.clock.now() - kept_for)
        with self.db.transaction() as conn:
            gone = conn.execute(
                web_sessions.delete().where(
                    sa.or_(
                        web_sessions.c.expires_at < cutoff,
                        sa.and_(
                            web_sessions.c.ended_at.is_not(None),
                            web_sessions.c.ended_at < cutoff,
                        ),
                        # Idle past its timeout long ago: no request can revive it.
                        web_sessions.c.last_seen_at
                        < iso(self.clock.now() - kept_for - IDLE_TIMEOUT),
                    )
                )
            ).rowcount
            # Counters of names that are no account, once no lockout of theirs can be live.
            conn.execute(
                web_sign_in_names.delete().where(
                    web_sign_in_names.c.last_failed_at < iso(self.clock.now() - kept_for - LOCKOUT)
                )
            )
        return int(gone)

    def flash(self, cookie: str, message: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                web_sessions.update()
                .where(web_sessions.c.id_hash == crypto.hash_token(cookie))
                .values(flash=message[:500])
            )

    def sign_out(self, cookie: str) -> None:
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(web_sessions.c.user_id, web_users.c.username)
                .join(web_users, web_users.c.id == web_sessions.c.user_id)
                .where(
                    web_sessions.c.id_hash == crypto.hash_token(cookie),
                    web_sessions.c.ended_at.is_(None),
                )
            ).first()
            if row is None:
                return
            conn.execute(
                web_sessions.update()
                .where(web_sessions.c.id_hash == crypto.hash_token(cookie))
                .values(ended_at=iso(now))
            )
            audit.append(
                conn,
                actor=f"web:{row.username}",
                action="web.signed-out",
                subject=row.username,
                now=now,
            )

    def second_factor_csrf(self, cookie: str) -> str | None:
        """The CSRF token of a session waiting for its code (the code form needs one)."""
        with self.db.read() as conn:
            row = self.live_session_row(conn, cookie, self.clock.now())
        if row is None or row.stage != STAGE_SECOND_FACTOR:
            return None
        return str(row.csrf_token)
