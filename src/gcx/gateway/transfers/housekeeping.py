"""Transfer housekeeping: received files whose retention has ended, abandoned uploads, the
files of uploads no longer open that a crash left behind, and chunks sent ahead that no
manifest claimed (gcx.gateway.transfers.early_chunks).

Runs beside the transfer worker on every gateway. Each deletion is its own
transaction with its audit entry, so a crash part way leaves nothing
half-deleted that the next run would not finish.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import sqlalchemy as sa

from gcx import audit
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.early_chunks import ABANDONED_AFTER
from gcx.gateway.transfers.policy import transfer_files
from gcx.httpapi import run_sync
from gcx.store import iso
from gcx.store.schema_transfers import transfers, uploads

log = logging.getLogger("gcx.gateway.transfers.sending")

# An upload nobody has added to for a week is abandoned.
STALE_UPLOAD = dt.timedelta(days=7)


def apply_retention(gateway: Gateway, now: dt.datetime) -> list[str]:
    """Delete received transfers whose retention has ended, and stale uploads; audit each."""
    files = transfer_files(gateway)
    with gateway.db.read() as conn:
        due = conn.execute(
            sa.select(transfers.c.id, transfers.c.recipients, transfers.c.retain_until).where(
                transfers.c.direction == "in",
                transfers.c.state == "complete",
                transfers.c.retain_until <= iso(now),
            )
        ).all()
        stale = conn.execute(
            sa.select(uploads.c.id).where(
                uploads.c.state == "open", uploads.c.updated_at <= iso(now - STALE_UPLOAD)
            )
        ).all()
    deleted = []
    for row in due:
        files.delete("received", row.id)
        with gateway.db.transaction() as conn:
            conn.execute(
                transfers.update()
                .where(transfers.c.id == row.id, transfers.c.direction == "in")
                .values(state="deleted", updated_at=iso(now))
            )
            audit.append(
                conn,
                actor=f"gateway:{gateway.config.name}",
                action="transfer.retention-deleted",
                subject=row.id,
                now=now,
                details={"recipients": row.recipients, "retain_until": row.retain_until},
            )
        deleted.append(row.id)
    for row in stale:
        files.delete_upload(row.id)
        with gateway.db.transaction() as conn:
            conn.execute(uploads.update().where(uploads.c.id == row.id).values(state="expired"))
            audit.append(
                conn,
                actor=f"gateway:{gateway.config.name}",
                action="upload.expired",
                subject=row.id,
                now=now,
            )
    for upload_id in _files_of_finished_uploads(gateway):
        files.delete_upload(upload_id)
        log.info("deleted the file of upload %s, which is no longer open", upload_id)
    for transfer_id in _unclaimed_early_chunks(gateway, now):
        files.delete("incoming", transfer_id)
        log.info("deleted chunks of %s sent ahead that no manifest claimed", transfer_id)
    return deleted


def _files_of_finished_uploads(gateway: Gateway) -> list[str]:
    """Upload files whose upload is no longer open: made into a transfer (its own second
    name keeps a kept file), deleted or expired. Each is unlinked right after the state
    is recorded, so a crash in between leaves the file behind with nothing to expire it;
    the state change was audited then, so nothing is audited here."""
    present = transfer_files(gateway).upload_ids()
    finished: list[str] = []
    with gateway.db.read() as conn:
        for at in range(0, len(present), 500):
            finished += conn.execute(
                sa.select(uploads.c.id).where(
                    uploads.c.id.in_(present[at : at + 500]), uploads.c.state != "open"
                )
            ).scalars()
    return finished


def _unclaimed_early_chunks(gateway: Gateway, now: dt.datetime) -> list[str]:
    """Incoming chunk files untouched for a day with no transfer: chunks sent ahead, never
    offered (nothing was audited for them, so nothing is audited here either)."""
    files = transfer_files(gateway)
    idle = files.untouched_since("incoming", (now - ABANDONED_AFTER).timestamp())
    if not idle:
        return []
    with gateway.db.read() as conn:
        known = set(
            conn.execute(
                sa.select(transfers.c.id).where(
                    transfers.c.id.in_(idle), transfers.c.direction == "in"
                )
            ).scalars()
        )
    return [i for i in idle if i not in known]


async def housekeeping(gateway: Gateway) -> None:
    while True:
        try:
            await run_sync(apply_retention, gateway, gateway.clock.now())
        except Exception:
            log.exception("transfer housekeeping failed; trying again later")
        await asyncio.sleep(gateway.config.transfer_housekeeping_seconds)
