"""Received batches of files as staff see them: in the inbox, on their page, and as one zip.

A batch received by the person's organisation is listed in the inbox among
the messages of the same time (:func:`received_between`), with who sent it,
how many files, the covering note's first words and whether the person has
downloaded it yet (:mod:`gcx.web.gateway.files_seen`). Its page
(:mod:`gcx.web.gateway.files_status`) adds the note in full, who in the
organisation has downloaded it, and a "download all" link.

"Download all" is a zip made while it is sent: each file is decrypted
segment by segment (as a single download is, checking its SHA-256 at the
end) and written through :mod:`zipfile` into a small buffer that is handed to
the response and emptied after every segment. :mod:`zipfile` writes to a
stream it cannot seek with data descriptors after each file, so the whole
zip is never held in memory or on disk, whatever the batch's size. Files
are stored, not compressed: the bytes are what was sent, and compressing
would cost the gateway's processor for files that are often compressed
already. Each file is recorded in the audit log as downloaded, as a single
download is, before its first byte is sent.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from gcx.errors import GcxError
from gcx.gateway.messages.addresses import AddressBook
from gcx.gateway.messages.finding import MailFilter
from gcx.gateway.runtime import Gateway
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers import reading as transfer_reading
from gcx.gateway.transfers.downloads import mark_person_download
from gcx.gateway.transfers.policy import RECEIVING_ROLES
from gcx.httpapi import attachment_disposition, run_sync
from gcx.store import iso
from gcx.store.schema_transfers import transfers
from gcx.web.gateway import caller_of, parts_of
from gcx.web.gateway.files_seen import downloaders, not_seen_by, seen_by
from gcx.web.site import Site, needs
from gcx.web.words import moment, size_text

# Batches merged into one page of the inbox at most; more in one stretch of
# time are on the Files page, which the inbox then links to.
MAX_IN_INBOX = 100


def navigation(site: Site) -> None:
    """No entry of its own: batches are reached from the inbox and the Files page."""


def add_routes(app: web.Application) -> None:
    app.router.add_get("/files/{id:[0-9a-f]{32}}/all.zip", download_all)


def day_start(day: dt.date) -> str:
    return iso(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))


def received_between(
    gateway: Gateway,
    caller: Caller,
    oldest: str | None,
    newest: str | None,
    wanted: MailFilter,
) -> list[dict[str, Any]]:
    """Complete batches received by the caller's organisation from ``oldest`` to before
    ``newest`` (either end open when None), as inbox rows, filtered as ``wanted`` says."""
    if not RECEIVING_ROLES & set(caller.roles):
        return []
    org = caller.organisation
    query = (
        sa.select(
            transfers.c.id,
            transfers.c.sender_org,
            transfers.c.sender_user,
            transfers.c.recipients,
            transfers.c.marking,
            transfers.c.plaintext_bytes,
            transfers.c.created_at,
        )
        .where(
            transfers.c.direction == "in",
            transfers.c.state == "complete",
            # Recipients are a JSON list of organisation codes (letters, digits,
            # hyphens); the quoted code matches one element, on both databases.
            sa.cast(transfers.c.recipients, sa.Text).like(f'%"{org}"%'),
        )
        .order_by(transfers.c.created_at.desc())
        .limit(MAX_IN_INBOX)
    )
    if oldest is not None:
        query = query.where(transfers.c.created_at >= oldest)
    if newest is not None:
        query = query.where(transfers.c.created_at < newest)
    if wanted.marking:
        query = query.where(transfers.c.marking == wanted.marking)
    if wanted.organisation:
        query = query.where(transfers.c.sender_org == wanted.organisation)
    if wanted.since:
        query = query.where(transfers.c.created_at >= day_start(wanted.since))
    if wanted.until:
        query = query.where(transfers.c.created_at < day_start(wanted.until + dt.timedelta(days=1)))
    if wanted.unread:
        query = query.where(not_seen_by(caller, transfers.c.id))
    with gateway.db.read() as conn:
        rows = conn.execute(query).all()
    rows = [r for r in rows if transfer_reading.can_see_incoming(caller, r.recipients)]
    seen = seen_by(gateway, caller, [r.id for r in rows])
    names = organisation_names(gateway)
    listed = AddressBook(gateway).listed_names() if rows else {}
    batches = []
    for row in rows:
        note, count = _note_and_count(gateway, caller, row.id)
        batches.append(
            {
                "kind": "files",
                "id": row.id,
                "marking": row.marking,
                "created_at": row.created_at,
                "when": moment(row.created_at),
                "from_text": sender_text(row.sender_user, row.sender_org, names, listed),
                "title": f"{_files_text(count)}, {size_text(row.plaintext_bytes)}",
                "note": note,
                "new": row.id not in seen,
            }
        )
    return batches


def _files_text(count: int) -> str:
    return f"{count} {'file' if count == 1 else 'files'}"


def sender_text(user: str, org: str, names: dict[str, str], listed: dict[str, str]) -> str:
    """``Benefits Officer, London Borough of Tower Hamlets`` for a person who chose to be
    listed; ``benefits.officer at London Borough of Tower Hamlets`` for anyone else."""
    where = names.get(org, org)
    name = listed.get(f"{user}@{org}")
    return f"{name}, {where}" if name else f"{user} at {where}"


def organisation_names(gateway: Gateway) -> dict[str, str]:
    """Organisations by code, as the current directory names them (none without one)."""
    try:
        directory = gateway.directory.current()
    except GcxError:
        return {}
    return {o.code: o.name for o in directory.organisations}


def _note_and_count(gateway: Gateway, caller: Caller, transfer_id: str) -> tuple[str, int]:
    try:
        _, metadata, _ = transfer_reading.open_incoming(gateway, caller, transfer_id)
    except GcxError:
        return "", 0
    return metadata.note or "", len(metadata.files)


def received_details(gateway: Gateway, caller: Caller, status: dict[str, Any]) -> dict[str, Any]:
    """What a received batch's page adds to the transfer's status: sender, note, state."""
    if status.get("direction") != "in" or status.get("state") != "complete":
        return {}
    user, _, org = str(status["sender"]).partition("@")
    note, count = _note_and_count(gateway, caller, status["id"])
    who = downloaders(gateway, caller.organisation, status["id"])
    return {
        "sender_text": sender_text(
            user, org, organisation_names(gateway), AddressBook(gateway).listed_names()
        ),
        "note": note,
        "file_count": count,
        "seen_by_you": bool(seen_by(gateway, caller, [status["id"]])),
        "downloaders": [{"name": d.name, "when": moment(d.downloaded_at)} for d in who],
        "zip_href": f"/files/{status['id']}/all.zip",
    }


# -- download all --------------------------------------------------------------------------


class _Spout:
    """What zipfile writes into: a buffer the handler empties after every segment.

    It can tell its position (zipfile needs offsets for the central directory)
    but not seek, so zipfile writes a data descriptor after each file instead
    of going back to fill in sizes.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to do: the handler takes what was written."""

    def close(self) -> None:
        """Nothing to release: the response is the handler's to finish."""

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


@needs("staff")
async def download_all(request: web.Request) -> web.StreamResponse:
    gateway = parts_of(request).gateway
    caller = caller_of(request)
    transfer_id = request.match_info["id"]
    manifest, metadata, key = await run_sync(
        transfer_reading.open_incoming, gateway, caller, transfer_id
    )
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": attachment_disposition(f"files-{transfer_id[:8]}.zip"),
        }
    )
    for described in metadata.files:
        await run_sync(
            transfer_reading.record_download, gateway, caller, transfer_id, described.index
        )
    await response.prepare(request)
    spout = _Spout()
    # Every file carries the time the batch was sent (UTC), the one time the
    # sender vouched for in the signed manifest.
    sent = manifest.created_at.astimezone(dt.UTC)
    date_time = (sent.year, sent.month, sent.day, sent.hour, sent.minute, sent.second)
    end = object()
    with zipfile.ZipFile(spout, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for described in metadata.files:
            info = zipfile.ZipInfo(described.name, date_time=date_time)
            info.compress_type = zipfile.ZIP_STORED
            segments = transfer_reading.decrypted_segments(
                gateway, manifest, metadata, key, described.index
            )
            # A segment that fails its check raises here, after the headers went:
            # the connection is dropped, so the download fails rather than
            # leaving a zip that looks whole.
            with archive.open(info, mode="w", force_zip64=True) as member:
                while (plain := await run_sync(next, segments, end)) is not end:
                    assert isinstance(plain, bytes)
                    member.write(plain)
                    await response.write(spout.take())
            await response.write(spout.take())
    # Every file has passed its checks: noted before the zip's closing directory goes,
    # so nobody holds a whole zip before it counts, and one cut short leaves it new.
    await run_sync(mark_person_download, gateway, caller, transfer_id)
    await response.write(spout.take())
    await response.write_eof()
    return response
