"""initial schema: registry, enrolments, directory, tokens, audit

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("account_kind", sa.String(length=16), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.String(length=40), nullable=True),
        sa.Column("last_used_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(op.f("ix_audit_entries_action"), "audit_entries", ["action"], unique=False)
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # The head row exists from the start so that every append, the first
    # included, locks the same row; two first appends cannot both insert it.
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "entry_hash": "0" * 64}])
    op.create_table(
        "directory_publications",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("issued_at", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "enrolments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("gateway_name", sa.String(length=63), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("csr_pem", sa.Text(), nullable=False),
        sa.Column("peer_address", sa.String(length=300), nullable=False),
        sa.Column("organisations", sa.JSON(), nullable=False),
        sa.Column("organisation_keys", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.String(length=40), nullable=False),
        sa.Column("decided_at", sa.String(length=40), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("certificate_pem", sa.Text(), nullable=True),
        sa.Column("certificate_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("certificate_serial", sa.String(length=64), nullable=True),
        sa.Column("certificate_not_after", sa.String(length=40), nullable=True),
        sa.Column("organisation_certificates", sa.JSON(), nullable=True),
        sa.Column("revoked_at", sa.String(length=40), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_enrolments_certificate_fingerprint"),
        "enrolments",
        ["certificate_fingerprint"],
        unique=False,
    )
    op.create_index(
        op.f("ix_enrolments_gateway_name"), "enrolments", ["gateway_name"], unique=False
    )
    op.create_index(op.f("ix_enrolments_state"), "enrolments", ["state"], unique=False)
    op.create_table(
        "held_directory",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("fetched_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "organisations",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )


def downgrade() -> None:
    op.drop_table("organisations")
    op.drop_table("operators")
    op.drop_table("held_directory")
    op.drop_index(op.f("ix_enrolments_state"), table_name="enrolments")
    op.drop_index(op.f("ix_enrolments_gateway_name"), table_name="enrolments")
    op.drop_index(op.f("ix_enrolments_certificate_fingerprint"), table_name="enrolments")
    op.drop_table("enrolments")
    op.drop_table("directory_publications")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_audit_entries_action"), table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("api_tokens")
