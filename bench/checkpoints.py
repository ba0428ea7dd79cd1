"""Benchmark: one audit checkpoint of a long log, remembered tree against hashing it all.

Run from the project's virtual environment::

    python bench/checkpoints.py                   # a 200,000-entry log, 100 new entries
    python bench/checkpoints.py --entries 1000000 --new 500 --rounds 5

A SQLite database (the default store) in a temporary directory gets
``--entries`` real audit entries (gcx.audit.append, so a real hash chain).
Each round then appends ``--new`` entries and times one signed checkpoint with
a proof from the previous size, two ways, in the same run:

* gcx: the ``AuditTree`` a running gateway (or central) keeps, which reads
  only the new entries and reuses the hashes of complete subtrees;
* baseline: what every checkpoint did before, reading every entry hash and
  hashing the whole tree and the whole proof again.

Both must give the same head; the script stops if they do not. The last line
on standard output is one JSON object: the median seconds per checkpoint of
each, and the ratio baseline/gcx (how many times faster the kept tree is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.audit.checkpoint import AuditTree
from gcx.clock import FixedClock
from gcx.store import Database, open_database
from gcx.store.schema import audit_entries

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


def _append(db: Database, count: int) -> None:
    done = 0
    while done < count:
        batch = min(10_000, count - done)
        with db.transaction() as conn:
            for i in range(batch):
                audit.append(
                    conn, actor="bench", action="bench.entry", subject=str(done + i), now=NOW
                )
        done += batch


def _whole_log_checkpoint(db: Database, previous: int) -> tuple[int, bytes, list[bytes]]:
    """The checkpoint as computed before: every entry read and hashed again."""
    with db.read() as conn:
        leaves = [
            bytes.fromhex(h)
            for h in conn.execute(
                sa.select(audit_entries.c.entry_hash).order_by(audit_entries.c.seq)
            ).scalars()
        ]
    return len(leaves), crypto.tree_head(leaves), crypto.consistency_proof(previous, leaves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    key = crypto.SigningKey.generate()
    clock = FixedClock(NOW)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        print(f"writing {args.entries} audit entries", file=sys.stderr)
        _append(db, args.entries)
        tree = AuditTree(db)
        started = time.perf_counter()
        checkpoint, _ = tree.checkpoint(gateway="bench", previous_size=0, key=key, clock=clock)
        first = time.perf_counter() - started
        kept: list[float] = []
        whole: list[float] = []
        for _ in range(args.rounds):
            previous = checkpoint.tree_size
            _append(db, args.new)
            started = time.perf_counter()
            checkpoint, _ = tree.checkpoint(
                gateway="bench", previous_size=previous, key=key, clock=clock
            )
            kept.append(time.perf_counter() - started)
            started = time.perf_counter()
            size, head, proof = _whole_log_checkpoint(db, previous)
            whole.append(time.perf_counter() - started)
            if (size, head.hex(), tuple(p.hex() for p in proof)) != (
                checkpoint.tree_size,
                checkpoint.root_hash,
                checkpoint.consistency_proof,
            ):
                raise SystemExit("the two ways disagree: the benchmark is void")
            print(f"round: kept {kept[-1]:.4f}s, whole {whole[-1]:.4f}s", file=sys.stderr)
        db.dispose()
    gcx_s, baseline_s = statistics.median(kept), statistics.median(whole)
    print(
        json.dumps(
            {
                "entries": checkpoint.tree_size,
                "new_per_round": args.new,
                "rounds": args.rounds,
                "first_checkpoint_s": round(first, 4),
                "gcx_median_s": round(gcx_s, 5),
                "baseline_median_s": round(baseline_s, 5),
                "ratio": round(baseline_s / gcx_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
