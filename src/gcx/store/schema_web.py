"""Tables of the browser interface, on the one gcx metadata (migration ``0008``).

Central and gateways both keep the people who sign in to their web pages
here: a password hash, a sealed second-factor secret, the lockout counters,
and server-side sessions. A session row is looked up by the SHA-256 of the
cookie's value, so a copy of the table does not let anyone resume a session.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

web_users = sa.Table(
    "web_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    # The organisation the person acts for; empty for central's own staff.
    sa.Column("organisation", sa.String(16)),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("totp_sealed", sa.Text, nullable=False),
    # The last TOTP time step accepted, so a code cannot be used twice.
    sa.Column("totp_last_step", sa.BigInteger, nullable=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.String(40)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("disabled_at", sa.String(40)),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("web_users.id"), nullable=False, index=True),
    # "second-factor" after a right password, "signed-in" after a right code.
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("last_seen_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("ended_at", sa.String(40)),
    # A one-off notification shown on the next page (post, redirect, get).
    sa.Column("flash", sa.Text),
    # The WebAuthn challenge of a ceremony in progress (base64url), used once.
    sa.Column("challenge", sa.String(100)),
)

# Security keys and passkeys (WebAuthn) people registered as a second factor.
web_credentials = sa.Table(
    "web_credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("web_users.id"), nullable=False, index=True),
    sa.Column("credential_id", sa.String(1024), nullable=False, unique=True),
    sa.Column("public_key", sa.LargeBinary, nullable=False),
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("last_used_at", sa.String(40)),
)

# Failed password steps per typed user name, for names that are no account here
# (unknown or disabled), so that they lock exactly as real accounts do and the
# sign-in answers never tell which names exist (migration 0012). The name is
# kept only as a keyed hash: it may be a password typed into the wrong box.
web_sign_in_names = sa.Table(
    "web_sign_in_names",
    metadata,
    sa.Column("name_key", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.String(40)),
    sa.Column("last_failed_at", sa.String(40), nullable=False),
)
