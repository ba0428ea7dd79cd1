"""The one SQL schema of gcx, shared by central and gateways.

Each table is used by central, by gateways, or by both (audit). Every change
to it comes with an Alembic migration in ``migrations/versions``; the test
``tests/contract/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The instant columns are stored as ISO 8601 text in UTC rather than as
# dialect timestamps: SQLite has no timestamp type, and text keeps the value
# that was hashed into the audit chain byte-for-byte identical on both
# databases.

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("contacts", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)

enrolments = sa.Table(
    "enrolments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("gateway_name", sa.String(63), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("csr_pem", sa.Text, nullable=False),
    sa.Column("peer_address", sa.String(300), nullable=False),
    sa.Column("organisations", sa.JSON, nullable=False),
    sa.Column("organisation_keys", sa.JSON, nullable=False),
    sa.Column("requested_at", sa.String(40), nullable=False),
    sa.Column("decided_at", sa.String(40)),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("certificate_pem", sa.Text),
    sa.Column("certificate_fingerprint", sa.String(64), index=True),
    sa.Column("certificate_serial", sa.String(64)),
    sa.Column("certificate_not_after", sa.String(40)),
    sa.Column("organisation_certificates", sa.JSON),
    sa.Column("revoked_at", sa.String(40)),
    sa.Column("revoked_by", sa.String(100)),
    sa.Column("revocation_reason", sa.Text),
)

directory_publications = sa.Table(
    "directory_publications",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("organisation", sa.String(16), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("account_kind", sa.String(16), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
    sa.Column("last_used_at", sa.String(40)),
    # A person's token: the web_users row of the person it was issued to (migration
    # 0012); empty for a system's token. Only that person can issue it.
    sa.Column("person_id", sa.Integer),
)

held_directory = sa.Table(
    "held_directory",
    metadata,
    # A single row (id = 1): the directory this gateway currently trusts.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.String(40), nullable=False),
    # Indexed for "What I did", which pages through one person's entries.
    sa.Column("actor", sa.String(200), nullable=False, index=True),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    # A single row (id = 1) locked by every append, so that concurrent writers
    # (threads, or gateway replicas on PostgreSQL) extend the chain one at a time.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
)

# -- secure messaging and the envelope pipeline (migration 0002) ---------------

envelopes = sa.Table(
    "envelopes",
    metadata,
    # An envelope is stored once per direction: "out" on the sending gateway,
    # "in" on each receiving one (both on one gateway that hosts sender and
    # recipient). The id is the sender's; (id, direction) is the duplicate check.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("direction", sa.String(3), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sender_org", sa.String(16), nullable=False),
    sa.Column("sender_user", sa.String(64), nullable=False),
    sa.Column("sender_gateway", sa.String(63), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("marking", sa.String(32), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("stored_at", sa.String(40), nullable=False),
    sa.Column("digest", sa.String(80), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("signed_header", sa.LargeBinary, nullable=False),
    sa.Column("part_count", sa.Integer, nullable=False),
    sa.Column("directory_version", sa.Integer, nullable=False),
)

envelope_parts = sa.Table(
    "envelope_parts",
    metadata,
    # Ciphertext parts. Small ones live in the row (one write, no extra file
    # to fsync, which is what makes small messages fast); large ones in the
    # blob store, named by blob_key.
    sa.Column("envelope_id", sa.String(32), primary_key=True),
    sa.Column("direction", sa.String(3), primary_key=True),
    sa.Column("part_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary),
    sa.Column("blob_key", sa.String(200)),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # One row per piece of work for one receiving gateway, whatever its kind.
    # ``kind`` names the carrier that does it and ``subject_id`` what it is
    # about: "message" (the envelope, read from ``envelopes``), "transfer"
    # (the transfer, read from ``transfers`` and the chunk store) or a control
    # document about the message ``subject_id`` ("read-receipt", "recall"),
    # whose signed bytes are kept in ``document`` so a retry sends exactly
    # what was signed. ``progress`` counts the parts a multi-part kind has
    # handed over (a transfer's chunks the receiver holds).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False, server_default="message"),
    sa.Column("subject_id", sa.String(32), nullable=False, index=True),
    sa.Column("document", sa.LargeBinary),
    sa.Column("peer_gateway", sa.String(63), nullable=False),
    sa.Column("organisations", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("claimed_until", sa.String(40)),
    sa.Column("progress", sa.Integer),
    sa.Column("last_error_code", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_outbox_due", "state", "next_attempt_at"),
)

receipts = sa.Table(
    "receipts",
    metadata,
    # Every signed receipt this gateway holds, of every kind of exchange, about
    # the message or transfer ``subject_id``. ``kind`` says which receipt it
    # is and, by its name, which side holds it: "delivery" and "transfer" came
    # back from a recipient to us as sender; "issued" and "transfer-issued"
    # are what we signed as recipient (kept to answer a repeat the same way);
    # "read" is a read receipt, on both sides.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_id", sa.String(32), nullable=False, index=True),
    sa.Column("organisation", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.UniqueConstraint("subject_id", "organisation", "kind", name="uq_receipts_one_per_kind"),
)

mailbox_items = sa.Table(
    "mailbox_items",
    metadata,
    # What each person or shared mailbox sees: the sender's "sent" item and,
    # on receiving gateways, one "inbox" item per local address the envelope
    # named. Content stays encrypted in the envelope; nothing here reveals it.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("envelope_id", sa.String(32), nullable=False, index=True),
    sa.Column("box", sa.String(8), nullable=False),
    sa.Column("organisation", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("read_at", sa.String(40)),
    sa.Column("read_by", sa.String(64)),
    sa.Column("recalled_at", sa.String(40)),
    sa.UniqueConstraint("envelope_id", "box", "organisation", "owner", name="uq_mailbox_item"),
    sa.Index("ix_mailbox_owner", "organisation", "owner", "box"),
)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    # Shared mailboxes such as benefits@E09000030, and who may read them.
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("members", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

# -- audit checkpoints lodged with central (migration 0003) -----------------------

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gateway", sa.String(63), nullable=False, index=True),
    sa.Column("tree_size", sa.Integer, nullable=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
)

gateway_flags = sa.Table(
    "gateway_flags",
    metadata,
    # Raised when a gateway lodges a checkpoint that does not extend its
    # previous one: somebody may have rewritten its audit history.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gateway", sa.String(63), nullable=False, index=True),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flagged_at", sa.String(40), nullable=False),
)

# -- directory versions kept for evidence (migration 0005) -------------------------

directory_archive = sa.Table(
    "directory_archive",
    metadata,
    # The signed directory documents that stored envelopes were checked
    # against, kept so an evidence file can carry the version in force when
    # an envelope was sent or received. A version is written by the first
    # envelope that references it, not by every poll, so the table grows with
    # the versions actually used rather than one row a minute.
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("archived_at", sa.String(40), nullable=False),
)

# -- central's audit head, witnessed by a gateway (migration 0011) ------------------

central_log_head = sa.Table(
    "central_log_head",
    metadata,
    # A single row (id = 1): the last head of central's audit log this gateway
    # checked and accepted. Every head central signs later must extend it.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tree_size", sa.Integer, nullable=False),
    sa.Column("root_hash", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.String(40), nullable=False),
    sa.Column("checked_at", sa.String(40), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    # Set when central signed a head that does not extend the one held: the
    # reason and that signed head, kept as evidence until someone accepts
    # central's log again (gcx gateway central-log accept).
    sa.Column("alarm_at", sa.String(40)),
    sa.Column("alarm_reason", sa.Text),
    sa.Column("alarm_document", sa.LargeBinary),
)
