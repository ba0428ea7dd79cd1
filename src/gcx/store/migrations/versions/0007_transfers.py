"""bulk file transfers: uploads, transfers, deliveries, receipts, policies

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "transfer_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_transfer_uploads_organisation"), "transfer_uploads", ["organisation"])
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("sender_org", sa.String(length=16), nullable=False),
        sa.Column("sender_user", sa.String(length=64), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("marking", sa.String(length=32), nullable=False),
        sa.Column("manifest", sa.LargeBinary(), nullable=False),
        sa.Column("manifest_digest", sa.String(length=71), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("ciphertext_bytes", sa.BigInteger(), nullable=False),
        sa.Column("plaintext_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("peer_gateway", sa.String(length=63), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("completed_at", sa.String(length=40), nullable=True),
        sa.Column("expires_at", sa.String(length=40), nullable=False),
        sa.Column("retain_until", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", "direction"),
    )
    op.create_index(op.f("ix_transfers_sender_org"), "transfers", ["sender_org"])
    op.create_index(op.f("ix_transfers_state"), "transfers", ["state"])
    op.create_table(
        "transfer_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("peer_gateway", sa.String(length=63), nullable=False),
        sa.Column("organisations", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=40), nullable=False),
        sa.Column("lease_until", sa.String(length=40), nullable=True),
        sa.Column("chunks_held", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transfer_id", "peer_gateway", name="uq_transfer_delivery"),
    )
    op.create_index(
        op.f("ix_transfer_deliveries_transfer_id"), "transfer_deliveries", ["transfer_id"]
    )
    op.create_index(op.f("ix_transfer_deliveries_state"), "transfer_deliveries", ["state"])
    op.create_table(
        "transfer_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transfer_id", "direction", "organisation", name="uq_transfer_receipt"),
    )
    op.create_index(op.f("ix_transfer_receipts_transfer_id"), "transfer_receipts", ["transfer_id"])
    op.create_table(
        "transfer_policies",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("max_batch_bytes", sa.BigInteger(), nullable=True),
        sa.Column("storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("retention_days", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organisation"),
    )


def downgrade() -> None:
    op.drop_table("transfer_policies")
    op.drop_table("transfer_receipts")
    op.drop_table("transfer_deliveries")
    op.drop_table("transfers")
    op.drop_table("transfer_uploads")
