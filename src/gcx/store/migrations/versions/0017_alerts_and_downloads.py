"""email alerts and who downloaded a batch: each person's alert address, per-person downloads

Revision ID: 0017_alerts_and_downloads
Revises: 0016_mail_lists

Issue 17: a person may ask for an email to their ordinary address when a
message arrives for them (off until they turn it on), so each person's
choice and address need a table; the alerts themselves ride the one outbox
as rows of kind ``notification`` (no change there: ``kind`` is free text).
The Files page shows a received batch as new to each person until they
download it, and who in the organisation has, so downloads are also kept per
person; ``transfer_downloads`` (the organisation's first download) is left
as it is. Both tables are new; nothing existing changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_alerts_and_downloads"
down_revision = "0016_mail_lists"


def upgrade() -> None:
    op.create_table(
        "email_alerts",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organisation", "account"),
    )
    op.create_table(
        "transfer_person_downloads",
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("downloaded_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("transfer_id", "organisation", "account"),
    )


def downgrade() -> None:
    op.drop_table("transfer_person_downloads")
    op.drop_table("email_alerts")
