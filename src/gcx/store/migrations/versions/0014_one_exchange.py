"""placeholder, filled by its owner

Revision ID: 0014_one_exchange
Revises: 0013_control_outbox
"""

revision = "0014_one_exchange"
down_revision = "0013_control_outbox"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
