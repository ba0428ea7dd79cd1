"""The gateway's hold on the directory: fetch, verify against the anchor, accept, keep.

The held directory lives in the database (so every replica of a gateway sees
the same one) and is cached here between polls. Each refusal is logged and
audited with its code; the previous directory stays held until it expires.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.clock import Clock
from gcx.errors import DirectoryError, DirectorySignatureInvalid, SignatureInvalid
from gcx.protocol import directory as dirproto
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import directory_archive, held_directory

log = logging.getLogger("gcx.gateway.directory")

# How many recent signed directory documents a keeper remembers (see
# DirectoryKeeper.signed_document): enough that a send or a receive that took
# the directory just before a newer version arrived still finds its own.
RECENT_DOCUMENTS = 8


def archive_directory(conn: Connection, version: int, document: bytes, *, now: dt.datetime) -> None:
    """Keep the signed document of directory ``version`` for evidence, unless already kept.

    Called in the transaction that stores an envelope referencing the version,
    so a committed envelope never names a version that is not archived. The
    insert ignores a conflict rather than failing on it: two senders (or two
    replicas) may archive the same version at once, and neither may fail.
    """
    values = {"version": version, "document": document, "archived_at": iso(now)}
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(insert(directory_archive).values(**values).on_conflict_do_nothing())


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
        self._documents: OrderedDict[int, bytes] = OrderedDict()
        self._archived: set[int] = set()
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
            self._remember(self._held.version, bytes(row.document))

    def _remember(self, version: int, document: bytes) -> None:
        # Called with the lock held.
        self._documents[version] = document
        self._documents.move_to_end(version)
        while len(self._documents) > RECENT_DOCUMENTS:
            self._documents.popitem(last=False)

    def _verify(self, document: bytes) -> bytes:
        try:
            return crypto.verify_document(document, dirproto.PAYLOAD_TYPE, self._trusted)
        except SignatureInvalid as exc:
            raise DirectorySignatureInvalid() from exc

    def offer(self, document: bytes) -> dirproto.Directory:
        """Take a directory fetched from central, or raise the reason it was refused."""
        now = self.clock.now()
        try:
            with self._lock:
                held, held_bytes = self._held, self._held_bytes
                held_document = self._documents.get(held.version) if held else None
            if held is not None and held_bytes is not None and held_document == document:
                # The document held, byte for byte (what every poll brings between two
                # versions): its signature was checked and it was read when first taken,
                # against the same root. Checking and reading a national directory again
                # every poll would cost far more than this comparison; its expiry is
                # still checked below.
                offered, payload = held, held_bytes
            else:
                payload = self._verify(document)
                offered = dirproto.Directory.from_bytes(payload)
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
                self._remember(offered.version, document)
        else:
            with self._lock:
                self._fetched_at = now
        return offered

    def signed_document(self, version: int) -> bytes | None:
        """The signed document of directory ``version`` exactly as central issued it.

        The held version and the few before it that this process held are
        kept; None if ``version`` is not among them.
        """
        with self._lock:
            return self._documents.get(version)

    def archive(self, conn: Connection, version: int, *, now: dt.datetime) -> None:
        """Archive directory ``version`` for evidence in the caller's transaction.

        Every envelope stored calls this, so the common case costs nothing: a
        version seen committed in the archive is remembered and not looked up
        again (archived rows are never deleted). Otherwise one primary-key
        lookup decides, and only a missing version sends the document, which
        grows with the network. Call it at most once per transaction: a row
        this same transaction inserted would look committed.

        ``version`` is that of a directory this keeper handed out, so its
        document is known; if it is not (it would have to be several versions
        old), the gap is logged and the caller's work goes on: evidence for
        that envelope then reports the version as not archived.
        """
        with self._lock:
            if version in self._archived:
                return
        present = conn.execute(
            sa.select(directory_archive.c.version).where(directory_archive.c.version == version)
        ).first()
        if present is not None:
            with self._lock:
                if len(self._archived) >= RECENT_DOCUMENTS:
                    self._archived.clear()
                self._archived.add(version)
            return
        document = self.signed_document(version)
        if document is None:
            log.warning("directory version %d is no longer known; not archived", version)
            return
        archive_directory(conn, version, document, now=now)

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
