"""service access: published services, access rights, groups, call log

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "service_definitions",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("withdrawn_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("provider", "name"),
    )
    op.create_table(
        "service_rights",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("granted_at", sa.String(length=40), nullable=False),
        sa.Column("revoked_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_service_rights_provider"), "service_rights", ["provider"])
    op.create_table(
        "service_groups",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("provider", "name"),
    )
    op.create_table(
        "service_changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_service_changes_provider"), "service_changes", ["provider"])
    op.create_table(
        "service_backends",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("backend_url", sa.String(length=2000), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("provider", "name"),
    )
    op.create_table(
        "service_calls",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("consumer", sa.String(length=16), nullable=False),
        sa.Column("consumer_user", sa.String(length=200), nullable=True),
        sa.Column("purpose", sa.String(length=500), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("service", sa.String(length=63), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("request_size", sa.Integer(), nullable=False),
        sa.Column("response_size", sa.Integer(), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("response_sha256", sa.String(length=64), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("directory_version", sa.Integer(), nullable=True),
        sa.Column("request_document", sa.LargeBinary(), nullable=True),
        sa.Column("response_document", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_bodies", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", "side"),
    )
    op.create_index(op.f("ix_service_calls_at"), "service_calls", ["at"])
    op.create_index(op.f("ix_service_calls_consumer"), "service_calls", ["consumer"])


def downgrade() -> None:
    op.drop_index(op.f("ix_service_calls_consumer"), table_name="service_calls")
    op.drop_index(op.f("ix_service_calls_at"), table_name="service_calls")
    op.drop_table("service_calls")
    op.drop_table("service_backends")
    op.drop_index(op.f("ix_service_changes_provider"), table_name="service_changes")
    op.drop_table("service_changes")
    op.drop_table("service_groups")
    op.drop_index(op.f("ix_service_rights_provider"), table_name="service_rights")
    op.drop_table("service_rights")
    op.drop_table("service_definitions")
