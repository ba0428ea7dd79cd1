"""Drafts: messages a person has written and not yet sent, kept sealed at rest.

A draft holds the plaintext of unsent mail (often OFFICIAL-SENSITIVE), so
nothing a person typed is stored in clear: the fields, and each attachment
with its name and type, are sealed with :func:`gcx.crypto.seal_secret`
under a key derived from the gateway's passphrase for this purpose alone,
and bound to the draft, its owner and (for an attachment) its position, so
a sealed value copied onto another row does not open. Only sizes and times
are in clear. A copy of the database without the passphrase reveals no
draft; the files are also private to the gateway's user (gcx.private_files).

A draft belongs to one person: every read and change names the owner, and
another person's draft is "not found", as if it did not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gcx import crypto
from gcx.errors import Conflict, CryptoError, NotFound
from gcx.gateway.runtime import Gateway
from gcx.protocol import strict_json
from gcx.protocol.message import check_attachment_sizes
from gcx.store import iso
from gcx.store.schema_mail import mail_draft_attachments, mail_drafts

MAX_DRAFTS = 200


@dataclass
class Draft:
    id: str
    fields: dict[str, Any]
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    updated_at: str = ""


@dataclass(frozen=True)
class DraftSummary:
    id: str
    fields: dict[str, Any]
    attachment_sizes: tuple[int, ...]
    updated_at: str


class DraftStore:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._key = crypto.secret_sealing_key(gateway.config.passphrase(), "mail drafts")

    @staticmethod
    def _bound(draft_id: str, organisation: str, owner: str, position: int | None = None) -> str:
        where = "" if position is None else f":{position}"
        return f"draft:{draft_id}:{owner}@{organisation}{where}"

    def _open_fields(self, row: Any, organisation: str, owner: str) -> dict[str, Any]:
        try:
            raw = crypto.open_secret(
                self._key, row.sealed, self._bound(row.id, organisation, owner)
            )
            return strict_json.loads_object(raw)
        except (CryptoError, ValueError) as exc:
            # A draft that no longer opens (the passphrase changed, the row was
            # edited) is treated as gone rather than shown half-read.
            raise NotFound("That draft cannot be opened any more.") from exc

    def save(
        self,
        organisation: str,
        owner: str,
        draft_id: str | None,
        fields: dict[str, Any],
        attachments: list[tuple[str, str, bytes]],
    ) -> str:
        """Create or replace a draft with these fields and exactly these attachments."""
        check_attachment_sizes([len(data) for _, _, data in attachments])
        now = iso(self.gateway.clock.now())
        with self.gateway.db.transaction() as conn:
            if draft_id is not None:
                self._owned(conn, draft_id, organisation, owner)
            else:
                held = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(mail_drafts)
                    .where(mail_drafts.c.organisation == organisation, mail_drafts.c.owner == owner)
                ).scalar_one()
                if held >= MAX_DRAFTS:
                    raise Conflict(
                        f"You have {MAX_DRAFTS} drafts already; send or delete some first."
                    )
                draft_id = crypto.random_id()
            sealed = crypto.seal_secret(
                self._key,
                json.dumps(fields, ensure_ascii=False).encode(),
                self._bound(draft_id, organisation, owner),
            )
            values = {"sealed": sealed, "updated_at": now}
            if conn.execute(
                sa.select(mail_drafts.c.id).where(mail_drafts.c.id == draft_id)
            ).first():
                conn.execute(
                    mail_drafts.update().where(mail_drafts.c.id == draft_id).values(**values)
                )
            else:
                conn.execute(
                    mail_drafts.insert().values(
                        id=draft_id,
                        organisation=organisation,
                        owner=owner,
                        created_at=now,
                        **values,
                    )
                )
            conn.execute(
                mail_draft_attachments.delete().where(mail_draft_attachments.c.draft_id == draft_id)
            )
            for position, (name, media_type, data) in enumerate(attachments):
                packed = json.dumps({"name": name, "media_type": media_type}).encode()
                conn.execute(
                    mail_draft_attachments.insert().values(
                        draft_id=draft_id,
                        position=position,
                        size=len(data),
                        sealed=crypto.seal_secret(
                            self._key,
                            len(packed).to_bytes(4, "big") + packed + data,
                            self._bound(draft_id, organisation, owner, position),
                        ),
                    )
                )
        return draft_id

    def _owned(self, conn: sa.Connection, draft_id: str, organisation: str, owner: str) -> Any:
        row = conn.execute(
            sa.select(mail_drafts).where(
                mail_drafts.c.id == draft_id,
                mail_drafts.c.organisation == organisation,
                mail_drafts.c.owner == owner,
            )
        ).first()
        if row is None:
            raise NotFound("There is no such draft; it may have been sent or deleted.")
        return row

    def open(self, organisation: str, owner: str, draft_id: str) -> Draft:
        with self.gateway.db.read() as conn:
            row = self._owned(conn, draft_id, organisation, owner)
            files = conn.execute(
                sa.select(mail_draft_attachments)
                .where(mail_draft_attachments.c.draft_id == draft_id)
                .order_by(mail_draft_attachments.c.position)
            ).all()
        draft = Draft(draft_id, self._open_fields(row, organisation, owner), [], row.updated_at)
        for item in files:
            try:
                raw = crypto.open_secret(
                    self._key,
                    item.sealed,
                    self._bound(draft_id, organisation, owner, item.position),
                )
            except CryptoError as exc:
                raise NotFound("An attachment of that draft cannot be opened any more.") from exc
            length = int.from_bytes(raw[:4], "big")
            meta = json.loads(raw[4 : 4 + length])
            draft.attachments.append((meta["name"], meta["media_type"], raw[4 + length :]))
        return draft

    def list(self, organisation: str, owner: str) -> list[DraftSummary]:
        with self.gateway.db.read() as conn:
            rows = conn.execute(
                sa.select(mail_drafts)
                .where(mail_drafts.c.organisation == organisation, mail_drafts.c.owner == owner)
                .order_by(mail_drafts.c.updated_at.desc())
            ).all()
            sizes: dict[str, list[int]] = {}
            for item in conn.execute(
                sa.select(mail_draft_attachments.c.draft_id, mail_draft_attachments.c.size).where(
                    mail_draft_attachments.c.draft_id.in_([r.id for r in rows])
                )
            ):
                sizes.setdefault(item.draft_id, []).append(item.size)
        summaries = []
        for row in rows:
            try:
                fields = self._open_fields(row, organisation, owner)
            except NotFound:
                fields = {"subject": "(this draft cannot be opened any more)"}
            summaries.append(
                DraftSummary(row.id, fields, tuple(sizes.get(row.id, ())), row.updated_at)
            )
        return summaries

    def delete(self, organisation: str, owner: str, draft_id: str) -> None:
        with self.gateway.db.transaction() as conn:
            self._owned(conn, draft_id, organisation, owner)
            conn.execute(
                mail_draft_attachments.delete().where(mail_draft_attachments.c.draft_id == draft_id)
            )
            conn.execute(mail_drafts.delete().where(mail_drafts.c.id == draft_id))
