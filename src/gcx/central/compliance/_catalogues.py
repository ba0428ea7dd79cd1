"""Reading and publishing versions of the Code of Connection catalogue."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit
from gcx.central.compliance._principal import Principal, require_role
from gcx.clock import Clock
from gcx.compliance.catalogue import (
    Catalogue,
    builtin_catalogue_text,
    catalogue_digest,
    parse_catalogue,
)
from gcx.compliance.statement import Role
from gcx.errors import Conflict, NotFound
from gcx.store import Database, iso
from gcx.store.schema_compliance import compliance_catalogues


class Catalogues:
    """The catalogue versions statements are answered against.

    The first use of an empty database publishes the catalogue shipped with
    gcx. Parsed catalogues are kept by version and digest: a published
    version never changes, so the cache needs no invalidation.
    """

    def __init__(self, database: Database, clock: Clock) -> None:
        self.db = database
        self.clock = clock
        self._parsed: dict[tuple[str, str], Catalogue] = {}

    # -- inside a use case's transaction ---------------------------------------------

    def ensure_builtin(self, conn: Connection, now: dt.datetime) -> None:
        if conn.execute(sa.select(compliance_catalogues.c.version).limit(1)).first():
            return
        text = builtin_catalogue_text()
        catalogue = parse_catalogue(text)
        conn.execute(
            compliance_catalogues.insert().values(
                version=catalogue.version,
                sha256=catalogue_digest(text),
                document=text,
                published_at=iso(now),
                published_by="central",
                current=True,
            )
        )
        audit.append(
            conn,
            actor="central",
            action="compliance.catalogue.published",
            subject=catalogue.version,
            now=now,
            details={"sha256": catalogue_digest(text), "source": "shipped with gcx"},
        )

    def load(self, conn: Connection, version: str | None = None) -> Catalogue:
        """The catalogue of ``version``, or the current one."""
        query = sa.select(compliance_catalogues)
        query = (
            query.where(compliance_catalogues.c.version == version)
            if version
            else query.where(compliance_catalogues.c.current.is_(True))
        )
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no catalogue version {str(version)[:40]!r}.")
        key = (row.version, row.sha256)
        if key not in self._parsed:
            self._parsed[key] = parse_catalogue(row.document)
        return self._parsed[key]

    # -- use cases ------------------------------------------------------------------

    def current_catalogue(self) -> Catalogue:
        now = self.clock.now()
        with self.db.transaction() as conn:
            self.ensure_builtin(conn, now)
            return self.load(conn)

    def catalogue(self, version: str) -> Catalogue:
        with self.db.transaction() as conn:
            self.ensure_builtin(conn, self.clock.now())
            return self.load(conn, version)

    def list_catalogues(self) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            self.ensure_builtin(conn, self.clock.now())
            rows = conn.execute(
                sa.select(compliance_catalogues).order_by(compliance_catalogues.c.published_at)
            ).all()
            return [
                {
                    **self.load(conn, r.version).summary(),
                    "sha256": r.sha256,
                    "published_at": r.published_at,
                    "published_by": r.published_by,
                    "current": bool(r.current),
                }
                for r in rows
            ]

    def publish_catalogue(self, by: Principal, text: str) -> dict[str, Any]:
        """Validate and publish a new catalogue version; open statements keep theirs."""
        require_role(by, Role.OPERATOR)
        catalogue = parse_catalogue(text)
        now = self.clock.now()
        with self.db.transaction() as conn:
            self.ensure_builtin(conn, now)
            if conn.execute(
                sa.select(compliance_catalogues.c.version).where(
                    compliance_catalogues.c.version == catalogue.version
                )
            ).first():
                raise Conflict(
                    f"Catalogue version {catalogue.version} is already published; give the new "
                    "one a new version."
                )
            conn.execute(compliance_catalogues.update().values(current=False))
            conn.execute(
                compliance_catalogues.insert().values(
                    version=catalogue.version,
                    sha256=catalogue_digest(text),
                    document=text,
                    published_at=iso(now),
                    published_by=by.name,
                    current=True,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.catalogue.published",
                subject=catalogue.version,
                now=now,
                details={"sha256": catalogue_digest(text), "controls": len(catalogue.controls)},
            )
        return catalogue.summary()
