"""Tables of the staff lists, on the one gcx metadata (migration ``0016``).

* ``transfer_downloads``: when a received batch of files was first downloaded
  by someone in a receiving organisation, so the inbox and the files list can
  say "New files" until then. One row per (transfer, organisation), written
  once: the audit log keeps every download; this is only the state a list
  shows, read by primary key for a page of rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

transfer_downloads = sa.Table(
    "transfer_downloads",
    metadata,
    sa.Column("transfer_id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("downloaded_at", sa.String(40), nullable=False),
)
