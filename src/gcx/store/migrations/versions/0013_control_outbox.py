"""control documents ride the outbox: a kind for every row, the signed document for control kinds

Revision ID: 0013_control_outbox
Revises: 0012_person_tokens

Read receipts and recalls forwarded after an in-flight batch were sent straight
from the process that made them, so a crash lost them. They are now rows of
the one outbox, written in the same transaction as the action they follow.
Existing rows are envelope deliveries and take the kind ``message``; they have
no ``document`` (the envelope is read from ``envelopes``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_control_outbox"
down_revision = "0012_person_tokens"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="message")
        )
        batch.add_column(sa.Column("document", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Control rows cannot be expressed in the old table; they are dropped.
    op.execute(sa.text("DELETE FROM outbox WHERE kind <> 'message'"))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("document")
        batch.drop_column("kind")
