"""Who in a receiving organisation has downloaded a batch of files, person by person.

A received batch is "New" to each person until they download it (one file
or all of them), whoever else has: staff share an organisation's batches,
and a colleague having downloaded one does not mean it was dealt with by
everyone who needs it. The batch's page says who has downloaded it and
when, by name.

The first complete download of each person, on these pages or with their
own API token, is kept in ``transfer_person_downloads`` by
:func:`gcx.gateway.transfers.downloads.mark_person_download` (one row per
transfer, organisation and person, written once); this module reads it, by
primary key for a page of rows. The audit log keeps every download.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.store.schema_alerts import transfer_person_downloads
from gcx.store.schema_web import web_users


@dataclass(frozen=True)
class Downloader:
    name: str
    downloaded_at: str


def seen_by(gateway: Gateway, caller: Caller, transfer_ids: Iterable[str]) -> set[str]:
    """Which of ``transfer_ids`` the caller has downloaded."""
    ids = list(transfer_ids)
    if not ids:
        return set()
    with gateway.db.read() as conn:
        rows = conn.execute(
            sa.select(transfer_person_downloads.c.transfer_id).where(
                transfer_person_downloads.c.organisation == caller.organisation,
                transfer_person_downloads.c.account == caller.account,
                transfer_person_downloads.c.transfer_id.in_(ids),
            )
        ).all()
    return {row.transfer_id for row in rows}


def not_seen_by(caller: Caller, transfer_id: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """SQL: the caller has not downloaded the transfer ``transfer_id`` names (a filter)."""
    return ~sa.exists().where(
        transfer_person_downloads.c.transfer_id == transfer_id,
        transfer_person_downloads.c.organisation == caller.organisation,
        transfer_person_downloads.c.account == caller.account,
    )


def downloaders(gateway: Gateway, organisation: str, transfer_id: str) -> list[Downloader]:
    """Everyone in ``organisation`` who downloaded the batch, first first, by name."""
    with gateway.db.read() as conn:
        rows = conn.execute(
            sa.select(
                transfer_person_downloads.c.account,
                transfer_person_downloads.c.downloaded_at,
                web_users.c.display_name,
            )
            .select_from(
                transfer_person_downloads.outerjoin(
                    web_users, web_users.c.username == transfer_person_downloads.c.account
                )
            )
            .where(
                transfer_person_downloads.c.transfer_id == transfer_id,
                transfer_person_downloads.c.organisation == organisation,
            )
            .order_by(transfer_person_downloads.c.downloaded_at)
        ).all()
    return [Downloader(row.display_name or row.account, row.downloaded_at) for row in rows]
