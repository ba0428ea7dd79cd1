"""secure messaging: envelopes, parts, outbox, receipts, mailboxes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "envelope_parts",
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("part_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("blob_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("envelope_id", "direction", "part_index"),
    )
    op.create_table(
        "envelopes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender_org", sa.String(length=16), nullable=False),
        sa.Column("sender_user", sa.String(length=64), nullable=False),
        sa.Column("sender_gateway", sa.String(length=63), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("marking", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.String(length=40), nullable=False),
        sa.Column("stored_at", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("signed_header", sa.LargeBinary(), nullable=False),
        sa.Column("part_count", sa.Integer(), nullable=False),
        sa.Column("directory_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", "direction"),
    )
    op.create_table(
        "mailbox_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("box", sa.String(length=8), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("read_at", sa.String(length=40), nullable=True),
        sa.Column("read_by", sa.String(length=64), nullable=True),
        sa.Column("recalled_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("envelope_id", "box", "organisation", "owner", name="uq_mailbox_item"),
    )
    op.create_index(
        op.f("ix_mailbox_items_envelope_id"), "mailbox_items", ["envelope_id"], unique=False
    )
    op.create_index(
        "ix_mailbox_owner", "mailbox_items", ["organisation", "owner", "box"], unique=False
    )
    op.create_table(
        "mailboxes",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organisation", "name"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("peer_gateway", sa.String(length=63), nullable=False),
        sa.Column("organisations", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.String(length=40), nullable=False),
        sa.Column("claimed_until", sa.String(length=40), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["state", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_outbox_envelope_id"), "outbox", ["envelope_id"], unique=False)
    op.create_table(
        "receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("envelope_id", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("envelope_id", "organisation", "kind", name="uq_receipts_one_per_kind"),
    )
    op.create_index(op.f("ix_receipts_envelope_id"), "receipts", ["envelope_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_receipts_envelope_id"), table_name="receipts")
    op.drop_table("receipts")
    op.drop_index(op.f("ix_outbox_envelope_id"), table_name="outbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("mailboxes")
    op.drop_index("ix_mailbox_owner", table_name="mailbox_items")
    op.drop_index(op.f("ix_mailbox_items_envelope_id"), table_name="mailbox_items")
    op.drop_table("mailbox_items")
    op.drop_table("envelopes")
    op.drop_table("envelope_parts")
