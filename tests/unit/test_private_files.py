"""Owner-only files and folders whatever the umask, and the start-up check of a home."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcx.errors import ConfigError, HomeNotPrivate
from gcx.private_files import (
    check_private,
    create_private,
    open_private,
    private_dir,
    write_private,
)
from gcx.store.db import open_database, sqlite_files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Runs the test under the usual umask and under the permissive one containers use."""
    previous = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(previous)


def test_private_dir_makes_every_missing_folder_0700(tmp_path: Path, umask: int) -> None:
    """Nested folders made by private_dir are all 0700; the existing parent keeps its mode."""
    tmp_path.chmod(0o755)
    target = private_dir(tmp_path / "a" / "b" / "c")
    assert target.is_dir()
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    assert mode(tmp_path) == 0o755


def test_private_dir_makes_an_existing_folder_0700(tmp_path: Path, umask: int) -> None:
    """A home folder that already exists (made by the operator, say 0755) becomes 0700."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    private_dir(home)
    assert mode(home) == 0o700


def test_open_private_creates_0600(tmp_path: Path, umask: int) -> None:
    """Every writing mode of open_private creates a 0600 file."""
    with open_private(tmp_path / "w", "wb") as w, open_private(tmp_path / "x", "xb") as x:
        w.write(b"data")
        x.write(b"data")
    with open_private(tmp_path / "a", "ab") as a:
        a.write(b"data")
    assert [mode(tmp_path / name) for name in "wxa"] == [0o600] * 3


def test_open_private_makes_an_existing_export_0600(tmp_path: Path, umask: int) -> None:
    """Overwriting an existing 0644 file (an evidence export to the same path) leaves it 0600."""
    out = tmp_path / "evidence.json"
    out.write_bytes(b"old")
    out.chmod(0o644)
    with open_private(out) as handle:
        handle.write(b"new")
    assert mode(out) == 0o600
    assert out.read_bytes() == b"new"


def test_open_private_exclusive_refuses_an_existing_file(tmp_path: Path) -> None:
    """Mode xb never overwrites: a key file is written once."""
    create_private(tmp_path / "key")
    with pytest.raises(FileExistsError):
        open_private(tmp_path / "key", "xb")


def test_create_private_leaves_an_existing_file_alone(tmp_path: Path, umask: int) -> None:
    """create_private makes a new empty 0600 file and keeps an existing one's bytes."""
    create_private(tmp_path / "upload")
    assert mode(tmp_path / "upload") == 0o600
    (tmp_path / "upload").write_bytes(b"held")
    create_private(tmp_path / "upload")
    assert (tmp_path / "upload").read_bytes() == b"held"


def test_write_private_replaces_whole_and_leaves_no_temporary(tmp_path: Path, umask: int) -> None:
    """write_private replaces a 0644 file by a 0600 one and leaves nothing else behind."""
    path = tmp_path / "gateway.toml"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.toml"]


def test_new_sqlite_database_and_its_wal_are_0600(tmp_path: Path, umask: int) -> None:
    """A new SQLite database, its WAL and its shared-memory file are all 0600."""
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    database = open_database(url)
    try:
        with database.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE written (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO written VALUES (1)")
        files = sqlite_files(url)
        assert all(f.exists() for f in files), "the WAL and its index exist while open"
        assert [mode(f) for f in files] == [0o600] * 3
    finally:
        database.dispose()


def test_sqlite_files_names_none_for_postgresql_or_memory() -> None:
    """Only a SQLite file URL has files to keep private."""
    assert sqlite_files("postgresql://postgres@127.0.0.1/gcx") == []
    assert sqlite_files("sqlite://") == []
    assert [p.name for p in sqlite_files("sqlite:////srv/gcx/central.db")] == [
        "central.db",
        "central.db-wal",
        "central.db-shm",
    ]


def _home(tmp_path: Path) -> Path:
    home = private_dir(tmp_path / "home")
    private_dir(home / "orgs" / "DWP")
    private_dir(home / "blobs" / "transfers" / "uploads")
    for name in ("gateway.toml", "tls.key", "orgs/DWP/signing.key", "blobs/transfers/uploads/u"):
        write_private(home / name, b"x")
    return home


def test_check_private_accepts_a_private_home(tmp_path: Path) -> None:
    """A home of 0700 folders and 0600 files passes."""
    check_private(_home(tmp_path))


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("", 0o755),
        ("tls.key", 0o644),
        ("orgs/DWP/signing.key", 0o640),
        ("orgs", 0o710),
        ("gateway.toml", 0o602),
        ("blobs", 0o755),
    ],
)
def test_check_private_refuses_what_others_can_reach(tmp_path: Path, where: str, bad: int) -> None:
    """Any permission for group or others, on the home, a key, a file or a folder, is refused."""
    home = _home(tmp_path)
    (home / where).chmod(bad)
    with pytest.raises(HomeNotPrivate) as refused:
        check_private(home)
    assert isinstance(refused.value, ConfigError)
    assert refused.value.code == "home-not-private"
    assert str(home / where) in refused.value.message
    assert f"chmod -R go-rwx {home}" in refused.value.message


def test_check_private_looks_at_bulk_stores_but_not_into_them(tmp_path: Path) -> None:
    """A blob file inside blobs/ is not walked (blobs/ itself decides, being 0700)."""
    home = _home(tmp_path)
    (home / "blobs" / "transfers" / "uploads" / "u").chmod(0o644)
    check_private(home)


def test_check_private_looks_at_a_database_kept_outside_the_home(tmp_path: Path) -> None:
    """Files in ``also`` (a SQLite database elsewhere) are checked too; missing ones skipped."""
    home = _home(tmp_path)
    database = tmp_path / "elsewhere.db"
    database.write_bytes(b"")
    database.chmod(0o644)
    check_private(home, also=[tmp_path / "missing.db-wal"])
    with pytest.raises(HomeNotPrivate) as refused:
        check_private(home, also=[database])
    assert str(database) in refused.value.message
