"""What queueing email alerts adds to storing a received message.

Storing a message on a receiving gateway is one write transaction; with a
mail relay configured, ``enqueue_alerts`` runs inside it (one query for the
organisation's people with alerts on, and an outbox row for each one who can
read the copy). This measures that transaction three ways on the same
database in the same run: the baseline (a mailbox copy written, no relay
configured), with a relay and a recipient who has no alerts (the common
case), and with a recipient who has them (one outbox row more). The
database is SQLite in WAL, as a gateway's is by default, or PostgreSQL with
``--database``.

    python bench/alerts_queue.py [--count 2000] [--database URL]

The last line of standard output is one JSON object ending with the ratios
to the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gcx.gateway.notifications.queue import enqueue_alerts
from gcx.gateway.notifications.settings import set_alert
from gcx.protocol.message import Address
from gcx.store import Database, iso, open_database
from gcx.store.schema import mailbox_items
from gcx.store.schema_web import web_users

ORG = "DWP"
NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)


class _Directory:
    def organisation(self, code: str) -> Any:
        return SimpleNamespace(name="London Borough of Tower Hamlets")


def _people(db: Database, count: int, alerted: int) -> None:
    rows = [
        {
            "username": f"person.{n}",
            "organisation": ORG,
            "display_name": f"Person {n}",
            "roles": ["staff"],
            "password_hash": "x",
            "totp_sealed": "x",
            "totp_last_step": 0,
            "failed_attempts": 0,
            "created_at": iso(NOW),
        }
        for n in range(count)
    ]
    with db.transaction() as conn:
        conn.execute(web_users.insert(), rows)
    clock = SimpleNamespace(now=lambda: NOW)
    for n in range(alerted):
        set_alert(
            db,
            clock,  # type: ignore[arg-type]
            organisation=ORG,
            account=f"person.{n}",
            enabled=True,
            address=f"person.{n}@home.example.org",
            actor="bench",
        )


def _run(db: Database, gateway: Any, count: int, owner: str, tag: str) -> float:
    header = SimpleNamespace(
        id="",
        kind="message",
        marking="OFFICIAL",
        sender=SimpleNamespace(organisation="E09000030", user="bench"),
    )
    started = time.perf_counter()
    for n in range(count):
        header.id = f"{tag}{n:030d}"[:32]
        with db.transaction() as conn:
            conn.execute(
                mailbox_items.insert(),
                {
                    "envelope_id": header.id,
                    "box": "inbox",
                    "organisation": ORG,
                    "owner": owner,
                    "created_at": iso(NOW),
                },
            )
            if gateway is not None:
                deliveries = [(ORG, [Address(ORG, owner)], [])]
                enqueue_alerts(conn, gateway, _Directory(), header, deliveries, NOW)  # type: ignore[arg-type]
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database or f"sqlite:///{Path(directory) / 'bench.db'}"
        db = open_database(url)
        try:
            _people(db, 1000, 50)
            on = SimpleNamespace(config=SimpleNamespace(smtp_host="relay", name="dwp"))
            off = SimpleNamespace(config=SimpleNamespace(smtp_host="", name="dwp"))
            _run(db, off, 200, "person.999", "w")  # warm up
            baseline = _run(db, off, args.count, "person.999", "a")
            no_alerts = _run(db, on, args.count, "person.999", "b")
            alerted = _run(db, on, args.count, "person.1", "c")
        finally:
            db.dispose()
    print(
        json.dumps(
            {
                "count": args.count,
                "database": "postgresql" if args.database else "sqlite",
                "load_average": os.getloadavg()[0],
                "baseline_us": round(baseline, 1),
                "relay_no_alert_us": round(no_alerts, 1),
                "relay_one_alert_us": round(alerted, 1),
                "ratio_no_alert": round(no_alerts / baseline, 3),
                "ratio_one_alert": round(alerted / baseline, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
