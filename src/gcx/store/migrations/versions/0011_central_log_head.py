"""the head of central's audit log each gateway witnesses

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "central_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.String(length=40), nullable=False),
        sa.Column("checked_at", sa.String(length=40), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("alarm_at", sa.String(length=40), nullable=True),
        sa.Column("alarm_reason", sa.Text(), nullable=True),
        sa.Column("alarm_document", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("central_log_head")
