"""Security keys and passkeys (WebAuthn) as a person's second factor.

A person signed in with a TOTP code may register security keys under "Your
account"; from then on the second sign-in step offers the key as well as the
code. Each ceremony's challenge is kept on the session row and taken from it
with a conditional update, so it is used once even if two answers race. A
key's failure counts towards the lockout like a wrong code. Checking the
signatures is gcx.crypto's (py_webauthn's) work.
"""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.errors import CryptoError, DuplicateEnrolment, InputError, NotFound, SessionExpired
from gcx.store import iso
from gcx.store.schema_web import web_credentials, web_sessions, web_users
from gcx.web.accounts import (
    ABSOLUTE_TIMEOUT,
    STAGE_SECOND_FACTOR,
    STAGE_SIGNED_IN,
    WebAccounts,
    WebUser,
    user_from_row,
)

MAX_KEYS = 10


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecurityKeys:
    """The WebAuthn ceremonies of one service, over its WebAccounts."""

    def __init__(self, accounts: WebAccounts, rp_name: str) -> None:
        self.accounts = accounts
        self.rp_name = rp_name

    @property
    def db(self) -> Any:
        return self.accounts.db

    def _put_challenge(self, conn: Connection, cookie: str, challenge: bytes) -> None:
        conn.execute(
            web_sessions.update()
            .where(web_sessions.c.id_hash == crypto.hash_token(cookie))
            .values(challenge=_b64url(challenge))
        )

    def _take_challenge(self, cookie: str, stage: str) -> tuple[Any, bytes]:
        """The session and its challenge, which is cleared so it cannot be answered twice."""
        now = self.accounts.clock.now()
        with self.db.transaction() as conn:
            row = self.accounts.live_session_row(conn, cookie, now)
            if row is None or row.stage != stage or not row.challenge:
                raise SessionExpired("That took too long or was already used; try again.")
            taken = conn.execute(
                web_sessions.update()
                .where(
                    web_sessions.c.id_hash == row.id_hash,
                    web_sessions.c.challenge == row.challenge,
                )
                .values(challenge=None)
            ).rowcount
        if taken != 1:
            raise SessionExpired("That took too long or was already used; try again.")
        return row, _unb64url(row.challenge)

    # -- registering ----------------------------------------------------------------

    def keys(self, user: WebUser) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(web_credentials)
                .where(web_credentials.c.user_id == user.id)
                .order_by(web_credentials.c.id)
            ).all()
        return [
            {"id": r.id, "name": r.name, "created_at": r.created_at, "last_used_at": r.last_used_at}
            for r in rows
        ]

    def registration_options(self, cookie: str, user: WebUser, rp_id: str) -> str:
        with self.db.read() as conn:
            existing = list(
                conn.execute(
                    sa.select(web_credentials.c.credential_id).where(
                        web_credentials.c.user_id == user.id
                    )
                ).scalars()
            )
        if len(existing) >= MAX_KEYS:
            raise InputError(f"You have {MAX_KEYS} security keys; remove one to add another.")
        options, challenge = crypto.key_registration_options(
            rp_id=rp_id,
            rp_name=self.rp_name,
            user_id=str(user.id).encode(),
            username=user.username,
            display_name=user.display_name,
            existing=existing,
        )
        with self.db.transaction() as conn:
            self._put_challenge(conn, cookie, challenge)
        return options

    def register(
        self, cookie: str, user: WebUser, credential: str, name: str, rp_id: str, origin: str
    ) -> None:
        name = name.strip()
        if not name or len(name) > 100:
            raise InputError("Give the key a name of up to 100 characters, such as 'Blue key'.")
        row, challenge = self._take_challenge(cookie, STAGE_SIGNED_IN)
        if row.user_id != user.id:
            raise SessionExpired()
        key = crypto.verify_key_registration(
            credential, challenge=challenge, rp_id=rp_id, origin=origin
        )
        now = self.accounts.clock.now()
        with self.db.transaction() as conn:
            known = conn.execute(
                sa.select(web_credentials.c.id).where(
                    web_credentials.c.credential_id == key.credential_id
                )
            ).first()
            if known is not None:
                raise DuplicateEnrolment("That security key is already registered.")
            conn.execute(
                web_credentials.insert().values(
                    user_id=user.id,
                    credential_id=key.credential_id,
                    public_key=key.public_key,
                    sign_count=key.sign_count,
                    name=name,
                    created_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=user.actor,
                action="web.key-added",
                subject=user.username,
                now=now,
                details={"name": name},
            )

    def remove(self, user: WebUser, key_id: int) -> None:
        now = self.accounts.clock.now()
        with self.db.transaction() as conn:
            gone = conn.execute(
                web_credentials.delete().where(
                    web_credentials.c.id == key_id, web_credentials.c.user_id == user.id
                )
            ).rowcount
            if gone != 1:
                raise NotFound("You have no such security key.")
            audit.append(
                conn, actor=user.actor, action="web.key-removed", subject=user.username, now=now
            )

    # -- signing in -----------------------------------------------------------------

    def waiting_has_keys(self, pending: str) -> bool:
        """Whether the person whose sign-in waits for a second factor has a key to use."""
        now = self.accounts.clock.now()
        with self.db.read() as conn:
            row = self.accounts.live_session_row(conn, pending, now)
            if row is None or row.stage != STAGE_SECOND_FACTOR:
                return False
            return (
                conn.execute(
                    sa.select(web_credentials.c.id).where(web_credentials.c.user_id == row.user_id)
                ).first()
                is not None
            )

    def sign_in_options(self, pending: str, rp_id: str) -> str | None:
        """Options to sign in with a key, or None if the person waiting has no key."""
        now = self.accounts.clock.now()
        with self.db.transaction() as conn:
            row = self.accounts.live_session_row(conn, pending, now)
            if row is None or row.stage != STAGE_SECOND_FACTOR:
                raise SessionExpired("Your sign-in took too long; enter your password again.")
            allowed = list(
                conn.execute(
                    sa.select(web_credentials.c.credential_id).where(
                        web_credentials.c.user_id == row.user_id
                    )
                ).scalars()
            )
            if not allowed:
                return None
            options, challenge = crypto.key_sign_in_options(rp_id=rp_id, allowed=allowed)
            self._put_challenge(conn, pending, challenge)
        return options

    def sign_in(self, pending: str, credential: str, rp_id: str, origin: str) -> str:
        """Step two with a key: a right answer replaces the waiting session with a signed-in one."""
        session, challenge = self._take_challenge(pending, STAGE_SECOND_FACTOR)
        now = self.accounts.clock.now()
        with self.db.read() as conn:
            row = conn.execute(sa.select(web_users).where(web_users.c.id == session.user_id)).one()
        self.accounts.refuse_if_locked(row, now)
        try:
            with self.db.read() as conn:
                key = conn.execute(
                    sa.select(web_credentials).where(
                        web_credentials.c.user_id == row.id,
                        web_credentials.c.credential_id == crypto.credential_id_of(credential),
                    )
                ).first()
            if key is None:
                raise CryptoError("That security key is not registered to you.")
            count = crypto.verify_key_sign_in(
                credential,
                challenge=challenge,
                rp_id=rp_id,
                origin=origin,
                public_key=key.public_key,
                sign_count=key.sign_count,
            )
        except CryptoError:
            # Counted like a wrong code, towards the lockout.
            self.accounts.record_failure(row, "security-key", now)
        with self.db.transaction() as conn:
            conn.execute(
                web_credentials.update()
                .where(web_credentials.c.id == key.id)
                .values(sign_count=count, last_used_at=iso(now))
            )
            conn.execute(
                web_users.update()
                .where(web_users.c.id == row.id)
                .values(failed_attempts=0, locked_until=None)
            )
            ended = conn.execute(
                web_sessions.update()
                .where(
                    web_sessions.c.id_hash == crypto.hash_token(pending),
                    web_sessions.c.ended_at.is_(None),
                )
                .values(ended_at=iso(now))
            ).rowcount
            if ended != 1:
                raise SessionExpired("That sign-in was already finished; start again.")
            audit.append(
                conn,
                actor=user_from_row(row).actor,
                action="web.signed-in",
                subject=row.username,
                now=now,
                details={"method": "security-key", "key": key.name},
            )
        return self.accounts.new_session(row.id, STAGE_SIGNED_IN, now, now + ABSOLUTE_TIMEOUT)
