"""The one SQL schema of gcx, shared by central and gateways.

Each table is used by central, by gateways, or by both (audit). Every change
to it comes with an Alembic migration in ``migrations/versions``; the test
``tests/contract/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The instant columns are stored as ISO 8601 text in UTC rather than as
# dialect timestamps: SQLite has no timestamp type, and text keeps the value
# that was hashed into the audit chain byte-for-byte identical on both
# databases.

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("contacts", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)

enrolments = sa.Table(
    "enrolments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("gateway_name", sa.String(63), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("csr_pem", sa.Text, nullable=False),
    sa.Column("peer_address", sa.String(300), nullable=False),
    sa.Column("organisations", sa.JSON, nullable=False),
    sa.Column("organisation_keys", sa.JSON, nullable=False),
    sa.Column("requested_at", sa.String(40), nullable=False),
    sa.Column("decided_at", sa.String(40)),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("certificate_pem", sa.Text),
    sa.Column("certificate_fingerprint", sa.String(64), index=True),
    sa.Column("certificate_serial", sa.String(64)),
    sa.Column("certificate_not_after", sa.String(40)),
    sa.Column("organisation_certificates", sa.JSON),
    sa.Column("revoked_at", sa.String(40)),
    sa.Column("revoked_by", sa.String(100)),
    sa.Column("revocation_reason", sa.Text),
)

directory_publications = sa.Table(
    "directory_publications",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("organisation", sa.String(16), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("account_kind", sa.String(16), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
    sa.Column("last_used_at", sa.String(40)),
)

held_directory = sa.Table(
    "held_directory",
    metadata,
    # A single row (id = 1): the directory this gateway currently trusts.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    # A single row (id = 1) locked by every append, so that concurrent writers
    # (threads, or gateway replicas on PostgreSQL) extend the chain one at a time.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)
