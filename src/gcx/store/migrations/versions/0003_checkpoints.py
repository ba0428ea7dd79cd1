"""audit checkpoints lodged with central, and flags on gateways whose logs do not extend

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gateway", sa.String(length=63), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_checkpoints_gateway"), "checkpoints", ["gateway"], unique=False)
    op.create_table(
        "gateway_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gateway", sa.String(length=63), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("flagged_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_gateway_flags_gateway"), "gateway_flags", ["gateway"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_gateway_flags_gateway"), table_name="gateway_flags")
    op.drop_table("gateway_flags")
    op.drop_index(op.f("ix_checkpoints_gateway"), table_name="checkpoints")
    op.drop_table("checkpoints")
