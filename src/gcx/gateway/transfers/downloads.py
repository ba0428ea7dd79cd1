"""Whether a received batch of files has been downloaded in a receiving organisation.

The audit log records every download (``transfer.downloaded``). Lists need
only "new" or "downloaded" for a page of batches, so the first download per
(transfer, organisation) is also kept in ``transfer_downloads`` and read by
primary key. Writing it twice is harmless: the first row stands.

A batch is also "New" to each person until they download it whole, however
they do (the web pages or their own API token), so each person's first
complete download is kept in ``transfer_person_downloads`` as well.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.store import iso
from gcx.store.schema_alerts import transfer_person_downloads
from gcx.store.schema_lists import transfer_downloads


def mark_downloaded(gateway: Gateway, caller: Caller, transfer_id: str) -> None:
    """Note the first download of ``transfer_id`` by the caller's organisation."""
    if not downloaded(gateway, caller.organisation, [transfer_id]):
        _keep_first(gateway, transfer_downloads, caller, transfer_id)


def downloaded(gateway: Gateway, organisation: str, transfer_ids: Iterable[str]) -> dict[str, str]:
    """When each of ``transfer_ids`` was first downloaded in ``organisation``, if it was."""
    ids = list(transfer_ids)
    if not ids:
        return {}
    with gateway.db.read() as conn:
        rows = conn.execute(
            sa.select(transfer_downloads.c.transfer_id, transfer_downloads.c.downloaded_at).where(
                transfer_downloads.c.organisation == organisation,
                transfer_downloads.c.transfer_id.in_(ids),
            )
        ).all()
    return {row.transfer_id: row.downloaded_at for row in rows}


def mark_person_download(gateway: Gateway, caller: Caller, transfer_id: str) -> None:
    """Note that a person downloaded ``transfer_id`` whole (their first download stands).

    Called once the bytes were sent: a download cut short leaves the batch new to
    them. A system's token downloads for no person, so it leaves nothing here.
    """
    if not caller.is_person:
        return
    with gateway.db.read() as conn:
        if conn.execute(
            sa.select(transfer_person_downloads.c.transfer_id).where(
                transfer_person_downloads.c.transfer_id == transfer_id,
                transfer_person_downloads.c.organisation == caller.organisation,
                transfer_person_downloads.c.account == caller.account,
            )
        ).first():
            return
    _keep_first(gateway, transfer_person_downloads, caller, transfer_id)


def _keep_first(gateway: Gateway, table: sa.Table, caller: Caller, transfer_id: str) -> None:
    """Insert the caller's download into ``table``; a row already there stands (a colleague's
    download, or the same person's in two tabs, that got there first)."""
    try:
        with gateway.db.transaction() as conn:
            conn.execute(
                table.insert().values(
                    transfer_id=transfer_id,
                    organisation=caller.organisation,
                    account=caller.account,
                    downloaded_at=iso(gateway.clock.now()),
                )
            )
    except IntegrityError:
        pass
