"""Files a gateway or central keeps in its home: readable by their owner only.

A home holds the private keys, the key passphrase, the database (call logs
name people, purposes and National Insurance numbers), pending uploads in
plaintext, and the ciphertext of every envelope and chunk. So every file gcx
writes there is mode 0600 and every folder 0700, and the mode is *set*, with
``fchmod``/``chmod`` after creation, rather than left to the process umask:
the usual umask of 022 would make a new file readable by every local user,
and the 000 some containers run with would make it writable too.

Writers create their files through :func:`open_private`, :func:`write_private`
or :func:`create_private` and their folders through :func:`private_dir`,
never with ``Path.write_text`` or ``mkdir``. Before serving, a gateway or
central calls :func:`check_private` and refuses to start from a home that
other users could read or change (:class:`~gcx.errors.HomeNotPrivate`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Literal

from gcx.errors import HomeNotPrivate

FILE_MODE = 0o600
DIR_MODE = 0o700
# Any permission for the group or for others: read, write or (for a folder) enter.
_SHARED = 0o077
# Folders that hold one file per blob, chunk or upload: possibly millions.
# check_private looks at these folders themselves, not at what they hold (see there).
BULK_FOLDERS = frozenset({"blobs", "evidence"})
_SHOWN = 5

_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "xb": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}


def private_dir(path: Path) -> Path:
    """Make ``path`` (and any missing parents) a folder with mode 0700, and return it.

    Only folders this call creates, and ``path`` itself, are changed: an
    existing parent (``/srv``, the user's home) keeps its mode.
    """
    _make_dirs(path)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def _make_dirs(path: Path) -> None:
    if path.is_dir():
        return
    if path.parent != path:
        _make_dirs(path.parent)
    # Another thread or process may make the same folder at the same moment.
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a folder.")
    os.chmod(path, DIR_MODE)


def open_private(path: Path, mode: Literal["wb", "xb", "ab"] = "wb") -> BinaryIO:
    """Open a file for writing with mode 0600, whether it is new or already there.

    ``wb`` truncates, ``xb`` refuses a file that exists, ``ab`` appends. The
    file is never readable by others, not even between creation and a chmod.
    """
    descriptor = os.open(path, _FLAGS[mode] | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
        return os.fdopen(descriptor, "ab" if mode == "ab" else "wb")
    except BaseException:
        os.close(descriptor)
        raise


def create_private(path: Path) -> None:
    """Make an empty file with mode 0600 if none exists; an existing file is left as it is."""
    with contextlib.suppress(FileExistsError), open_private(path, "xb"):
        pass


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, all at once (temporary file, fsync, rename).

    A reader, or a crash, sees the old contents or the new, never half of them.
    """
    temporary = path.with_name(f".partial-{path.name}-{secrets.token_hex(4)}")
    try:
        with open_private(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def check_private(home: Path, also: Iterable[Path] = ()) -> None:
    """Refuse a home that users other than its owner can read, change or enter.

    Looked at: the home folder, everything in it, and everything below it
    (keys under ``orgs/``, the passphrase under ``secrets/``) except the
    contents of the bulk stores (``blobs/``, ``evidence/``), whose own folders
    are looked at but not what they hold: a folder others cannot enter
    protects every file below it, so the store's folder is what decides, and
    a store of millions of blobs must not slow every start. (Their files are
    still written 0600 as a second line.) ``also`` names files outside the
    home to look at as well, such as a SQLite database kept elsewhere;
    missing ones are skipped.
    """
    shared: list[str] = []

    def look(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & _SHARED:
                shared.append(f"{path} ({mode:04o})")

    look(home)
    for folder, folders, files in os.walk(home):
        here = Path(folder)
        for name in [*folders, *files]:
            look(here / name)
        if here == home:
            folders[:] = [name for name in folders if name not in BULK_FOLDERS]
    for path in also:
        look(path)
    if shared:
        more = len(shared) - _SHOWN
        listed = ", ".join(shared[:_SHOWN]) + (f" and {more} more" if more > 0 else "")
        raise HomeNotPrivate(
            f"Other users of this machine can read or change files in the home {home}: "
            f"{listed}; make them private to this account (chmod -R go-rwx {home}) "
            "and start again.",
            paths=shared,
        )
