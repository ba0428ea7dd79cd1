"""The gateway's hold on the directory: fetch, verify against the anchor, accept, keep.

The held directory lives in the database (so every replica of a gateway sees
the same one) and is cached here between polls. Each refusal is logged and
audited with its code; the previous directory stays held until it expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.clock import Clock
from gcx.errors import DirectoryError, DirectorySignatureInvalid, SignatureInvalid
from gcx.protocol import directory as dirproto
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import held_directory

log = logging.getLogger("gcx.gateway.directory")


class DirectoryKeeper:
    def __init__(
        self, db: Database, anchor: crypto.Certificate, network: str, clock: Clock
    ) -> None:
        self.db = db
        self.anchor = anchor
        self.network = network
        self.clock = clock
        self._trusted = {crypto.key_id(anchor.public_key()): anchor.public_key()}
        self._lock = threading.Lock()
        self._held: dirproto.Directory | None = None
        self._held_bytes: bytes | None = None
        self._fetched_at: dt.datetime | None = None
        self.last_error: DirectoryError | None = None
        self.reload()

    def reload(self) -> None:
        """Read the held directory from the database (another replica may have moved it)."""
        with self.db.transaction() as conn:
            row = conn.execute(sa.select(held_directory).where(held_directory.c.id == 1)).first()
        if row is None:
            return
        payload = self._verify(bytes(row.document))
        with self._lock:
            self._held = dirproto.Directory.from_bytes(payload)
            self._held_bytes = payload
            self._fetched_at = parse_iso(row.fetched_at)

    def _verify(self, document: bytes) -> bytes:
        try:
            return crypto.verify_document(document, dirproto.PAYLOAD_TYPE, self._trusted)
        except SignatureInvalid as exc:
            raise DirectorySignatureInvalid() from exc

    def offer(self, document: bytes) -> dirproto.Directory:
        """Take a directory fetched from central, or raise the reason it was refused."""
        now = self.clock.now()
        try:
            payload = self._verify(document)
            offered = dirproto.Directory.from_bytes(payload)
            with self._lock:
                held, held_bytes = self._held, self._held_bytes
            changed = dirproto.accept_directory(
                held, held_bytes, offered, payload, network=self.network, now=now
            )
        except DirectoryError as error:
            self.last_error = error
            log.warning("directory refused: %s: %s", error.code, error.message)
            with self.db.transaction() as conn:
                audit.append(
                    conn,
                    actor="central",
                    action="directory.refused",
                    subject="directory",
                    now=now,
                    details={"code": error.code, "message": error.message},
                )
            raise
        self.last_error = None
        if changed:
            with self.db.transaction() as conn:
                current = conn.execute(
                    sa.select(held_directory.c.version)
                    .where(held_directory.c.id == 1)
                    .with_for_update()
                ).first()
                # Another replica may have stored a newer one meanwhile; never step back.
                if current is None:
                    conn.execute(
                        held_directory.insert().values(
                            id=1, version=offered.version, document=document, fetched_at=iso(now)
                        )
                    )
                elif current.version < offered.version:
                    conn.execute(
                        held_directory.update()
                        .where(held_directory.c.id == 1)
                        .values(version=offered.version, document=document, fetched_at=iso(now))
                    )
                audit.append(
                    conn,
                    actor="central",
                    action="directory.accepted",
                    subject=f"v{offered.version}",
                    now=now,
                    details={"expires_at": iso(offered.expires_at)},
                )
            with self._lock:
                self._held, self._held_bytes, self._fetched_at = offered, payload, now
        else:
            with self._lock:
                self._fetched_at = now
        return offered

    def current(self) -> dirproto.Directory:
        """The directory to act on now, or :class:`DirectoryUnavailable`."""
        with self._lock:
            held = self._held
        return dirproto.usable_directory(held, now=self.clock.now())

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            held, fetched = self._held, self._fetched_at
        usable = held is not None and now < held.expires_at
        status: dict[str, Any] = {
            "usable": usable,
            "version": held.version if held else None,
            "issued_at": held.issued_at.isoformat() if held else None,
            "expires_at": held.expires_at.isoformat() if held else None,
            "age_seconds": round((now - held.issued_at).total_seconds(), 1) if held else None,
            "last_fetched_at": fetched.isoformat() if fetched else None,
        }
        if not usable:
            status["reason"] = (
                "no directory has been received from central yet"
                if held is None
                else "the directory held has expired"
            )
        if self.last_error is not None:
            status["last_refusal"] = self.last_error.to_dict()
        return status
