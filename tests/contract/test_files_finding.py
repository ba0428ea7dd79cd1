"""The Files page's finding and its per-person "new", on SQLite and PostgreSQL.

Transfers here are rows as the sending side keeps them (file names in the
clear); received batches, whose names and notes are encrypted, are searched
in the browser test (tests/integration/test_web_files.py).
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from gcx.clock import FixedClock
from gcx.errors import InputError
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.downloads import mark_person_download
from gcx.store import Database, iso
from gcx.store.schema_transfers import transfers
from gcx.store.schema_web import web_users
from gcx.web.gateway import files_finding
from gcx.web.gateway.files_finding import find_transfers
from gcx.web.gateway.files_seen import downloaders, not_seen_by, seen_by

COUNCIL = "E09000030"
CLERK = Caller(COUNCIL, "clerk", "user", ("staff",))
COLLEAGUE = Caller(COUNCIL, "colleague", "user", ("staff",))
NAMES = {"DWP": "Department for Work and Pensions", "MPS": "Metropolitan Police Service"}


def _row(n: int, at: dt.datetime, **values: Any) -> dict[str, Any]:
    return {
        "id": f"{n:032x}",
        "direction": "out",
        "sender_org": COUNCIL,
        "sender_user": "clerk",
        "recipients": ["DWP"],
        "marking": "OFFICIAL",
        "manifest": b"{}",
        "manifest_digest": "sha256:" + "0" * 64,
        "files": [{"name": f"claims-{n:03d}.csv", "size": 10}],
        "ciphertext_bytes": 10,
        "plaintext_bytes": 10,
        "chunk_count": 1,
        "state": "complete",
        "created_at": iso(at),
        "updated_at": iso(at),
        "expires_at": iso(at + dt.timedelta(days=7)),
        **values,
    }


@pytest.fixture
def gateway(database: Database, clock: FixedClock) -> Any:
    """120 transfers the clerk sent, every tenth to the police, and a colleague's few."""
    start = clock.now()
    rows = []
    for n in range(120):
        extra: dict[str, Any] = {}
        if n % 10 == 0:
            extra = {"recipients": ["MPS"], "files": [{"name": f"referral-{n}.pdf", "size": 5}]}
        if n % 40 == 5:
            extra = {"sender_user": "colleague"}
        rows.append(_row(n, start + dt.timedelta(seconds=n), **extra))
    with database.transaction() as conn:
        conn.execute(transfers.insert(), rows)
    return SimpleNamespace(db=database, clock=clock)


def _ids(page: files_finding.FilesPage) -> list[int]:
    return [int(item["id"], 16) for item in page.items]


def test_newest_and_oldest_first_page_through_everything_once(gateway: Any) -> None:
    """Both sorts, 25 a page, visit each of the clerk's transfers once, in order."""
    mine = [n for n in range(120) if n % 40 != 5]
    for oldest_first in (False, True):
        seen: list[int] = []
        cursor = None
        while True:
            page = find_transfers(
                gateway, CLERK, oldest_first=oldest_first, limit=25, cursor=cursor
            )
            seen += _ids(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == (mine if oldest_first else mine[::-1])


def test_a_search_matches_file_names_and_recipients_by_name(gateway: Any) -> None:
    """Every word must match: a file name, or the organisation's name or code."""
    page = find_transfers(gateway, CLERK, text="referral", names=NAMES, limit=50)
    assert _ids(page) == [n for n in range(110, -1, -10)]
    page = find_transfers(gateway, CLERK, text="Metropolitan referral-30", names=NAMES)
    assert _ids(page) == [30]
    page = find_transfers(gateway, CLERK, text="claims-007.csv", names=NAMES, oldest_first=True)
    assert _ids(page) == [7]
    assert find_transfers(gateway, CLERK, text="nothing like it", names=NAMES).items == []


def test_a_search_stops_after_scanning_its_share_and_goes_on_from_there(
    gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a scan limit of 30 rows, a rare match is found over several pages, none lost."""
    monkeypatch.setattr(files_finding, "SCAN", 30)
    found: list[int] = []
    cursor = None
    stops = 0
    while True:
        page = find_transfers(gateway, CLERK, text="referral", names=NAMES, cursor=cursor)
        found += _ids(page)
        stops += page.stopped_early
        cursor = page.next_cursor
        if cursor is None:
            break
    assert found == [n for n in range(110, -1, -10)]
    assert stops >= 3


def test_a_cursor_that_is_not_one_is_refused(gateway: Any) -> None:
    with pytest.raises(InputError):
        find_transfers(gateway, CLERK, cursor="2026-01-01~x~sideways")


def _received(gateway: Any, n: int) -> str:
    row = _row(
        1000 + n,
        gateway.clock.now(),
        direction="in",
        sender_org="DWP",
        sender_user="claims.processor",
        recipients=[COUNCIL],
        files=[],
    )
    with gateway.db.transaction() as conn:
        conn.execute(transfers.insert(), [row])
    return str(row["id"])


def test_a_batch_is_new_to_each_person_until_they_download_it(gateway: Any) -> None:
    """One person's download leaves it new to a colleague; downloading twice is one row;
    the batch names everyone who downloaded it, by name where they have an account."""
    batch = _received(gateway, 1)
    with gateway.db.transaction() as conn:
        conn.execute(
            web_users.insert().values(
                username="clerk",
                organisation=COUNCIL,
                display_name="Chris Clerk",
                roles=["staff"],
                password_hash="x",
                totp_sealed="x",
                totp_last_step=0,
                failed_attempts=0,
                created_at=iso(gateway.clock.now()),
            )
        )
    assert seen_by(gateway, CLERK, [batch]) == set()
    mark_person_download(gateway, CLERK, batch)
    gateway.clock.advance(dt.timedelta(minutes=5))
    mark_person_download(gateway, CLERK, batch)
    assert seen_by(gateway, CLERK, [batch]) == {batch}
    assert seen_by(gateway, COLLEAGUE, [batch]) == set()
    unread = [transfers.c.direction == "in"]
    new_to_colleague = find_transfers(
        gateway, COLLEAGUE, conditions=[*unread, not_seen_by(COLLEAGUE, transfers.c.id)]
    )
    new_to_clerk = find_transfers(
        gateway, CLERK, conditions=[*unread, not_seen_by(CLERK, transfers.c.id)]
    )
    assert [i["id"] for i in new_to_colleague.items] == [batch]
    assert new_to_clerk.items == []
    mark_person_download(gateway, COLLEAGUE, batch)
    who = downloaders(gateway, COUNCIL, batch)
    assert [d.name for d in who] == ["Chris Clerk", "colleague"]
    start = gateway.clock.now() - dt.timedelta(minutes=5)
    assert [d.downloaded_at for d in who] == [iso(start), iso(gateway.clock.now())], (
        "the clerk's first download stands"
    )


def test_a_systems_download_makes_a_batch_downloaded_for_nobody(gateway: Any) -> None:
    """A system's token downloads for no person: the batch stays new to everyone."""
    batch = _received(gateway, 1)
    mark_person_download(gateway, Caller(COUNCIL, "housing-system", "system", ("staff",)), batch)
    assert downloaders(gateway, COUNCIL, batch) == []
    assert seen_by(gateway, CLERK, [batch]) == set()
