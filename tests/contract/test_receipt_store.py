"""The one receipt store keeps each receipt once, for every kind, on SQLite and PostgreSQL."""

from __future__ import annotations

from gcx.clock import FixedClock
from gcx.gateway.exchange import receipts
from gcx.store import Database

SUBJECT = "ab" * 16


def test_a_receipt_is_kept_once_and_said_new_only_the_first_time(
    database: Database, clock: FixedClock
) -> None:
    """Held again (a retry answered as the first try was), a receipt is not stored twice and
    the first document stands; another kind or organisation about the same subject is its
    own receipt."""
    now = clock.now()
    with database.transaction() as conn:
        first = receipts.hold(
            conn,
            subject_id=SUBJECT,
            organisation="DWP",
            kind="transfer",
            outcome="accepted",
            document=b"first",
            now=now,
        )
        again = receipts.hold(
            conn,
            subject_id=SUBJECT,
            organisation="DWP",
            kind="transfer",
            outcome="accepted",
            document=b"second",
            now=now,
        )
        other_kind = receipts.hold(
            conn,
            subject_id=SUBJECT,
            organisation="DWP",
            kind="transfer-issued",
            outcome="accepted",
            document=b"issued",
            now=now,
        )
        other_org = receipts.hold(
            conn,
            subject_id=SUBJECT,
            organisation="MPS",
            kind="transfer",
            outcome="accepted",
            document=b"police",
            now=now,
        )
    assert (first, again, other_kind, other_org) == (True, False, True, True)
    with database.read() as conn:
        assert receipts.documents(conn, SUBJECT, "transfer") == ["first", "police"]
        assert receipts.documents(conn, SUBJECT, "transfer-issued") == ["issued"]
        assert receipts.documents(conn, "cd" * 16, "transfer") == []


def test_receipts_held_in_a_batch_are_said_new_once_and_read_back_per_subject(
    database: Database, clock: FixedClock
) -> None:
    """hold_many keeps each receipt once and returns exactly the ones it made; a batch held
    again (a retry after a crash) makes none; documents_for reads them back per subject."""
    now = clock.now()
    other = "cd" * 16
    batch = [
        receipts.Held(SUBJECT, "DWP", "delivery", "accepted", b"dwp"),
        receipts.Held(SUBJECT, "MPS", "delivery", "refused", b"mps", late=True),
        receipts.Held(other, "DWP", "delivery", "accepted", b"other"),
    ]
    with database.transaction() as conn:
        assert receipts.hold(
            conn,
            subject_id=SUBJECT,
            organisation="DWP",
            kind="delivery",
            outcome="accepted",
            document=b"held before",
            now=now,
        )
        first = receipts.hold_many(conn, batch, now=now)
        again = receipts.hold_many(conn, batch, now=now)
    assert first == {(SUBJECT, "MPS", "delivery"), (other, "DWP", "delivery")}
    assert again == set()
    with database.read() as conn:
        held = receipts.documents_for(conn, [SUBJECT, other, "ef" * 16], "delivery")
    assert held == {SUBJECT: ["held before", "mps"], other: ["other"]}
