"""Tables of the address book and of drafts, on the one gcx metadata (migration ``0015``).

* ``address_book_people``: each person's own choice to be listed in the
  address book that peers receive. A person with no row is not listed: the
  listing shares a name and a work address with every organisation in the
  network, which is personal data, so it is opt-in (see docs/security.md).
* ``address_book_policy``: an organisation's choice to list its people at
  all; with ``people_listed`` false only its shared mailboxes are listed.
* ``peer_address_listings``: the signed listings fetched from peer gateways,
  kept until they expire so that a page need not ask the peer every time, and
  shared by every replica (no process-local cache).
* ``mail_drafts`` and ``mail_draft_attachments``: unsent messages. What a
  person wrote is sealed with a key derived from the gateway's passphrase
  (:func:`gcx.crypto.seal_secret`), bound to the draft and its owner, so a
  copy of the database alone does not reveal it.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

address_book_people = sa.Table(
    "address_book_people",
    metadata,
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("listed", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

address_book_policy = sa.Table(
    "address_book_policy",
    metadata,
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("people_listed", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)

peer_address_listings = sa.Table(
    "peer_address_listings",
    metadata,
    # One row per organisation listed by a peer: the signed document as it
    # came, re-verified on every read so that a row edited in the database
    # is refused rather than believed.
    sa.Column("organisation", sa.String(16), primary_key=True),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("fetched_at", sa.String(40), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
)

mail_drafts = sa.Table(
    "mail_drafts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    # The subject is inside ``sealed`` with the rest; nothing typed is in clear.
    sa.Column("sealed", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Index("ix_mail_drafts_owner", "organisation", "owner"),
)

mail_draft_attachments = sa.Table(
    "mail_draft_attachments",
    metadata,
    sa.Column("draft_id", sa.String(32), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # Name, media type and content, sealed together.
    sa.Column("sealed", sa.Text, nullable=False),
)
