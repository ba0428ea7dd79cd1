"""mail drafts and the address book: sealed drafts, listing choices, peers' signed listings

Revision ID: 0015_mail_drafts
Revises: 0014_one_exchange

Issue 17: a message is checked before it is sent and can be kept as a draft,
so drafts (sealed, with their attachments) need tables; the address book
needs each person's choice to be listed, each organisation's choice to list
people at all, and a cache of the signed listings fetched from peers. All
tables are new; nothing existing changes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_mail_drafts"
down_revision = "0014_one_exchange"


def upgrade() -> None:
    op.create_table(
        "address_book_people",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organisation", "account"),
    )
    op.create_table(
        "address_book_policy",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("people_listed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("organisation"),
    )
    op.create_table(
        "peer_address_listings",
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("fetched_at", sa.String(length=40), nullable=False),
        sa.Column("expires_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("organisation"),
    )
    op.create_table(
        "mail_drafts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mail_drafts_owner", "mail_drafts", ["organisation", "owner"])
    op.create_table(
        "mail_draft_attachments",
        sa.Column("draft_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("draft_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("mail_draft_attachments")
    op.drop_index("ix_mail_drafts_owner", table_name="mail_drafts")
    op.drop_table("mail_drafts")
    op.drop_table("peer_address_listings")
    op.drop_table("address_book_policy")
    op.drop_table("address_book_people")
