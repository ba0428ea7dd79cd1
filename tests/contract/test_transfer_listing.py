"""Listing transfers a page at a time on a gateway hosting several organisations, both databases."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from gcx.clock import FixedClock
from gcx.errors import InputError
from gcx.gateway.tokens import Caller
from gcx.gateway.transfers.listing import list_transfers
from gcx.store import Database, iso
from gcx.store.schema_transfers import transfers

COUNCIL = "E09000030"
CLERK = Caller(COUNCIL, "clerk", "user", ("staff",))
COLLEAGUE = Caller(COUNCIL, "colleague", "user", ("staff",))
ADMIN = Caller(COUNCIL, "head.of.service", "user", ("admin",))


def _row(n: int, at: dt.datetime, **values: Any) -> dict[str, Any]:
    return {
        "id": f"{n:032x}",
        "direction": "out",
        "sender_org": "DWP",
        "sender_user": "claims.processor",
        "recipients": ["HMRC"],
        "marking": "OFFICIAL",
        "manifest": b"{}",
        "manifest_digest": "sha256:" + "0" * 64,
        "files": [],
        "ciphertext_bytes": 10,
        "plaintext_bytes": 10,
        "chunk_count": 1,
        "state": "receipted",
        "created_at": iso(at),
        "updated_at": iso(at),
        "expires_at": iso(at + dt.timedelta(days=7)),
        **values,
    }


@pytest.fixture
def gateway(database: Database, clock: FixedClock) -> Any:
    """1,200 transfers of another organisation, with the council's few spread among them."""
    ours = {
        100: {"sender_org": COUNCIL, "sender_user": "clerk", "recipients": ["DWP"]},
        350: {"direction": "in", "recipients": [COUNCIL], "state": "complete"},
        351: {"direction": "in", "recipients": [COUNCIL], "state": "receiving"},
        600: {"sender_org": COUNCIL, "sender_user": "colleague", "recipients": ["DWP"]},
        700: {"sender_org": COUNCIL, "sender_user": "clerk", "recipients": ["MPS"]},
        1150: {"direction": "in", "recipients": ["MPS", COUNCIL], "state": "complete"},
        1199: {"sender_org": COUNCIL, "sender_user": "clerk", "recipients": ["DWP"]},
    }
    start = clock.now()
    rows = [_row(n, start + dt.timedelta(seconds=n), **ours.get(n, {})) for n in range(1200)]
    with database.transaction() as conn:
        conn.execute(transfers.insert(), rows)
    return SimpleNamespace(db=database)


def _all_pages(gateway: Any, caller: Caller, limit: int) -> list[list[str]]:
    pages, before = [], None
    while True:
        page = list_transfers(gateway, caller, limit, before)
        pages.append([item["id"] for item in page.items])
        if page.older is None:
            return pages
        before = page.older


def test_pages_reach_every_transfer_the_caller_may_see_once(gateway: Any) -> None:
    """Only what the caller may see, newest first, however far apart among others' rows."""
    ids = {n: f"{n:032x}" for n in (100, 350, 600, 700, 1150, 1199)}
    assert _all_pages(gateway, CLERK, 2) == [
        [ids[1199], ids[1150]],
        [ids[700], ids[350]],
        [ids[100]],
    ]
    everything = list_transfers(gateway, CLERK, 5)
    assert everything.older is None, "an exact last page says so"
    assert [i["id"] for i in everything.items] == [ids[n] for n in (1199, 1150, 700, 350, 100)]
    # A colleague's sending is theirs; the organisation's administrator sees all of it.
    assert ids[600] in [i["id"] for i in list_transfers(gateway, COLLEAGUE, 10).items]
    admin_sees = [i["id"] for i in list_transfers(gateway, ADMIN, 10).items]
    assert {ids[600], ids[700], ids[100], ids[1199]} <= set(admin_sees)


def test_bad_limits_and_cursors_are_refused(gateway: Any) -> None:
    for limit in (0, 1001):
        with pytest.raises(InputError, match="limit"):
            list_transfers(gateway, CLERK, limit)
    for cursor in ("", "yesterday", "2026-11-21T09:00:00.000000Z~zz~out", "x~" + "0" * 32 + "~in"):
        with pytest.raises(InputError, match="earlier page"):
            list_transfers(gateway, CLERK, 10, cursor)
