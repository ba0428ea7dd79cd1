"""person-bound API tokens, the system behind a service call, sign-in failures per name

Revision ID: 0012_person_tokens
Revises: 0011

A person's token now names the person it was issued to (``person_id``, the
``web_users`` row); before this revision an administrator could make a
``user`` token in any name, so nothing shows who a ``user`` token was really
given to. The upgrade therefore revokes every live ``user`` token: each person
issues a new one on their own account page. System tokens are kept (at use
they are refused if their name is a person's or a shared mailbox's).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0012_person_tokens"
down_revision = "0011"


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("person_id", sa.Integer(), nullable=True))
    op.add_column(
        "service_calls", sa.Column("consumer_system", sa.String(length=64), nullable=True)
    )
    op.create_table(
        "web_sign_in_names",
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.String(length=40), nullable=True),
        sa.Column("last_failed_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("name_key"),
    )
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    tokens = sa.table(
        "api_tokens",
        sa.column("account_kind", sa.String),
        sa.column("revoked_at", sa.String),
    )
    op.execute(
        tokens.update()
        .where(tokens.c.account_kind == "user", tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def downgrade() -> None:
    op.drop_table("web_sign_in_names")
    op.drop_column("service_calls", "consumer_system")
    op.drop_column("api_tokens", "person_id")
