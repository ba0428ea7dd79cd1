"""Tables of bulk file transfer, on the one gcx metadata (migration ``0007``).

The bytes themselves live in the transfer chunk store
(:mod:`gcx.store.transfer_files`); these tables hold what must survive a
crash with its audit entry: uploads and their durable offsets, transfers and
their signed manifests, and per-organisation quotas and retention. A
transfer's delivery to each receiving gateway is a row of the one outbox
(kind ``transfer``) and its receipts are rows of the one ``receipts`` table
(migration ``0014``).
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

uploads = sa.Table(
    "transfer_uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("length", sa.BigInteger, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("direction", sa.String(3), primary_key=True),
    sa.Column("sender_org", sa.String(16), nullable=False, index=True),
    sa.Column("sender_user", sa.String(64), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("marking", sa.String(32), nullable=False),
    sa.Column("manifest", sa.LargeBinary, nullable=False),
    sa.Column("manifest_digest", sa.String(71), nullable=False),
    # The sender's own view of the files (names, sizes, digests); empty on the
    # receiving side, which reads them from the encrypted metadata when asked.
    sa.Column("files", sa.JSON, nullable=False),
    sa.Column("ciphertext_bytes", sa.BigInteger, nullable=False),
    sa.Column("plaintext_bytes", sa.BigInteger, nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("status_message", sa.Text),
    sa.Column("peer_gateway", sa.String(63)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("completed_at", sa.String(40)),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("retain_until", sa.String(40)),
)

transfer_policies = sa.Table(
    "transfer_policies",
    metadata,
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("max_file_bytes", sa.BigInteger),
    sa.Column("max_batch_bytes", sa.BigInteger),
    sa.Column("storage_bytes", sa.BigInteger),
    sa.Column("retention_days", sa.Float),
    sa.Column("updated_at", sa.String(40), nullable=False),
)
