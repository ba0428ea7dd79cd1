"""one exchange: transfers ride the one outbox, every receipt in the one receipts table

Revision ID: 0014_one_exchange
Revises: 0013_control_outbox

Transfers had a delivery table of their own (``transfer_deliveries``, with its
own state names and ``lease_until``) and a receipt table of their own
(``transfer_receipts``). Both move into the tables every other kind uses:

* ``outbox.envelope_id`` becomes ``subject_id`` (an envelope's or a
  transfer's id; both are 32 hex digits) and gains ``progress``;
* each ``transfer_deliveries`` row becomes an outbox row of kind ``transfer``,
  keeping its state (``receipted`` is now ``delivered``), attempts, next
  attempt, lease, chunks held (``progress``) and last error, with the
  transfer's expiry;
* ``receipts.envelope_id`` becomes ``subject_id``; each ``transfer_receipts``
  row becomes a receipt of kind ``transfer`` (held by the sender) or
  ``transfer-issued`` (signed here as recipient), outcome ``accepted``.

Work in flight carries on after the upgrade: a row that was ``sending`` keeps
its lease, which lapses, and the one worker claims it again and resumes from
what the receiver holds.
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "0014_one_exchange"
down_revision = "0013_control_outbox"

_STATES_UP = {"receipted": "delivered"}
_STATES_DOWN = {"delivered": "receipted", "recalled": "failed"}
# How the old transfer worker wrote a reason: "code: sentence" or a sentence.
_CODED = re.compile(r"^([a-z][a-z0-9-]{1,63}): (.*)$", re.S)


def upgrade() -> None:
    bind = op.get_bind()
    # Renamed in one batch and indexed in the next: SQLite's batch mode rebuilds
    # the table and cannot index a column renamed in the same rebuild.
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_envelope_id")
        batch.alter_column("envelope_id", new_column_name="subject_id")
        batch.add_column(sa.Column("progress", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.create_index("ix_outbox_subject_id", ["subject_id"])
    with op.batch_alter_table("receipts") as batch:
        batch.drop_index("ix_receipts_envelope_id")
        batch.drop_constraint("uq_receipts_one_per_kind", type_="unique")
        batch.alter_column("envelope_id", new_column_name="subject_id")
    with op.batch_alter_table("receipts") as batch:
        batch.create_index("ix_receipts_subject_id", ["subject_id"])
        batch.create_unique_constraint(
            "uq_receipts_one_per_kind", ["subject_id", "organisation", "kind"]
        )

    outbox = sa.table(
        "outbox",
        *(
            sa.column(name)
            for name in (
                "kind",
                "subject_id",
                "peer_gateway",
                "state",
                "attempts",
                "next_attempt_at",
                "expires_at",
                "claimed_until",
                "progress",
                "last_error_code",
                "last_error",
                "created_at",
                "updated_at",
            )
        ),
        sa.column("organisations", sa.JSON),
    )
    old = bind.execute(
        sa.text(
            "SELECT d.transfer_id, d.peer_gateway, d.organisations, d.state, d.attempts, "
            "d.next_attempt_at, d.lease_until, d.chunks_held, d.last_error, d.created_at, "
            "d.updated_at, t.expires_at FROM transfer_deliveries d JOIN transfers t "
            "ON t.id = d.transfer_id AND t.direction = 'out' ORDER BY d.id"
        )
    ).all()
    for row in old:
        code, message = None, row.last_error
        if message:
            coded = _CODED.match(message)
            code, message = (
                (coded.group(1), coded.group(2)) if coded else ("transfer-error", message)
            )
        # A raw SELECT returns JSON as text on SQLite and decoded on PostgreSQL.
        organisations = row.organisations
        if isinstance(organisations, str):
            organisations = json.loads(organisations)
        bind.execute(
            outbox.insert().values(
                kind="transfer",
                subject_id=row.transfer_id,
                peer_gateway=row.peer_gateway,
                organisations=organisations,
                state=_STATES_UP.get(row.state, row.state),
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                expires_at=row.expires_at,
                claimed_until=row.lease_until,
                progress=row.chunks_held,
                last_error_code=code,
                last_error=message,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    bind.execute(
        sa.text(
            "INSERT INTO receipts (subject_id, organisation, kind, outcome, document, "
            "received_at, late) SELECT transfer_id, organisation, CASE direction WHEN 'out' "
            "THEN 'transfer' ELSE 'transfer-issued' END, 'accepted', document, received_at, "
            ":late FROM transfer_receipts ORDER BY id"
        ),
        {"late": False},
    )
    op.drop_table("transfer_deliveries")
    op.drop_table("transfer_receipts")


def downgrade() -> None:
    op.create_table(
        "transfer_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("peer_gateway", sa.String(length=63), nullable=False),
        sa.Column("organisations", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=40), nullable=False),
        sa.Column("lease_until", sa.String(length=40), nullable=True),
        sa.Column("chunks_held", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.UniqueConstraint("transfer_id", "peer_gateway", name="uq_transfer_delivery"),
    )
    op.create_index("ix_transfer_deliveries_transfer_id", "transfer_deliveries", ["transfer_id"])
    op.create_index("ix_transfer_deliveries_state", "transfer_deliveries", ["state"])
    op.create_table(
        "transfer_receipts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.UniqueConstraint("transfer_id", "direction", "organisation", name="uq_transfer_receipt"),
    )
    op.create_index("ix_transfer_receipts_transfer_id", "transfer_receipts", ["transfer_id"])
    bind = op.get_bind()
    for old, new in _STATES_DOWN.items():
        bind.execute(
            sa.text("UPDATE outbox SET state = :new WHERE kind = 'transfer' AND state = :old"),
            {"new": new, "old": old},
        )
    bind.execute(
        sa.text(
            "INSERT INTO transfer_deliveries (transfer_id, peer_gateway, organisations, state, "
            "attempts, next_attempt_at, lease_until, chunks_held, last_error, created_at, "
            "updated_at) SELECT subject_id, peer_gateway, organisations, state, attempts, "
            "next_attempt_at, claimed_until, COALESCE(progress, 0), last_error, created_at, "
            "updated_at FROM outbox WHERE kind = 'transfer' ORDER BY id"
        )
    )
    bind.execute(
        sa.text(
            "INSERT INTO transfer_receipts (transfer_id, direction, organisation, document, "
            "received_at) SELECT subject_id, CASE kind WHEN 'transfer' THEN 'out' ELSE 'in' "
            "END, organisation, document, received_at FROM receipts "
            "WHERE kind IN ('transfer', 'transfer-issued') ORDER BY id"
        )
    )
    bind.execute(sa.text("DELETE FROM outbox WHERE kind = 'transfer'"))
    bind.execute(sa.text("DELETE FROM receipts WHERE kind IN ('transfer', 'transfer-issued')"))
    with op.batch_alter_table("receipts") as batch:
        batch.drop_index("ix_receipts_subject_id")
        batch.drop_constraint("uq_receipts_one_per_kind", type_="unique")
        batch.alter_column("subject_id", new_column_name="envelope_id")
    with op.batch_alter_table("receipts") as batch:
        batch.create_index("ix_receipts_envelope_id", ["envelope_id"])
        batch.create_unique_constraint(
            "uq_receipts_one_per_kind", ["envelope_id", "organisation", "kind"]
        )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_subject_id")
        batch.drop_column("progress")
        batch.alter_column("subject_id", new_column_name="envelope_id")
    with op.batch_alter_table("outbox") as batch:
        batch.create_index("ix_outbox_envelope_id", ["envelope_id"])
