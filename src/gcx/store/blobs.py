"""Blob storage for envelope parts: a port and its filesystem adapter.

Parts are ciphertext, so a blob store never holds anything readable. Writes
go to a temporary file that is fsynced and renamed into place, so a crash
never leaves a half-written blob under its final name; a blob that exists is
complete. Files are 0600 and folders 0700 (gcx.private_files). An
S3-compatible adapter comes with bulk transfer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from gcx.errors import NotFound
from gcx.private_files import private_dir, write_private

_KEY = re.compile(r"^[a-z0-9][a-z0-9/._-]{0,200}$")


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = private_dir(root)

    def _path(self, key: str) -> Path:
        if not _KEY.match(key) or ".." in key:
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        private_dir(path.parent)
        write_private(path, data)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"The stored part {key} is missing.") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return

    def exists(self, key: str) -> bool:
        return self._path(key).exists()
