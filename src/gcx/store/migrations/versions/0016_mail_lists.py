"""staff lists: when a received batch of files was first downloaded

Revision ID: 0016_mail_lists
Revises: 0015_mail_drafts

Issue 17: the inbox and the files list show a received batch as new until
someone in the receiving organisation downloads it. The audit log records
every download, but a list cannot search it for each row, so the first
download per (transfer, organisation) is kept in a small table read by
primary key. Searching and filtering the mailbox lists needs no new index:
they narrow by ``ix_mailbox_owner`` and join envelopes on their primary key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_mail_lists"
down_revision = "0015_mail_drafts"


def upgrade() -> None:
    op.create_table(
        "transfer_downloads",
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("downloaded_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", "organisation"),
    )


def downgrade() -> None:
    op.drop_table("transfer_downloads")
