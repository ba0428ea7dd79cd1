"""Processes opening one SQLite database at the same moment all get a working connection.

Turning a rollback-journal database into WAL needs an exclusive lock, and two
connections racing for it make SQLite refuse one at once ("database is locked")
without waiting on the busy timeout. A CLI command run beside a starting
gateway met exactly this; the store must wait it out instead.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

_OPEN = """
import sys, time
from gcx.store.db import Database
start = float(sys.argv[2])
database = Database("sqlite:///" + sys.argv[1])
while time.time() < start:
    pass
with database.engine.connect() as connection:
    print(connection.exec_driver_sql("PRAGMA journal_mode").scalar())
database.dispose()
"""


def test_simultaneous_first_connections_all_succeed(tmp_path: Path) -> None:
    for round_ in range(4):
        path = tmp_path / f"race-{round_}.db"
        with sqlite3.connect(path) as seed:  # a fresh file, still in rollback-journal mode
            seed.execute("CREATE TABLE seeded (x INTEGER)")
        seed.close()
        start = time.time() + 1.5  # every process is imported and waiting by then
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _OPEN, str(path), repr(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            assert out.strip() == "wal"
