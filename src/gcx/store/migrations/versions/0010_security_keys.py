"""security keys (WebAuthn) as a second factor for web sign-in

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.add_column("web_sessions", sa.Column("challenge", sa.String(length=100), nullable=True))
    op.create_table(
        "web_credentials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.String(length=1024), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("last_used_at", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["web_users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    op.create_index(op.f("ix_web_credentials_user_id"), "web_credentials", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_web_credentials_user_id"), table_name="web_credentials")
    op.drop_table("web_credentials")
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("challenge")
