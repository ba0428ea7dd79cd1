"""Tables of email alerts and per-person downloads, on the one gcx metadata (migration ``0017``).

* ``email_alerts``: a person's choice to be told by email, at their ordinary
  address, that a message has arrived for them (:mod:`gcx.gateway.notifications`).
  No row, or ``enabled`` false, means no alerts: they are off until chosen.
  The address is kept when alerts are turned off, so turning them on again
  does not mean typing it again.
* ``transfer_person_downloads``: when each person first downloaded a received
  batch of files, so the Files page can show a batch as new to everyone who
  has not, and who in the organisation has. One row per (transfer,
  organisation, person), written once; the audit log keeps every download.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

email_alerts = sa.Table(
    "email_alerts",
    metadata,
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(254), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

transfer_person_downloads = sa.Table(
    "transfer_person_downloads",
    metadata,
    sa.Column("transfer_id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("downloaded_at", sa.String(40), nullable=False),
)
