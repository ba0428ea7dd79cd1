"""audit entries indexed by actor, for a person's own history in the web pages

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index(op.f("ix_audit_entries_actor"), "audit_entries", ["actor"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_entries_actor"), table_name="audit_entries")
