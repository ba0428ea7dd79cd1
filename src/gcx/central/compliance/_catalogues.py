"""Reading and publishing versions of the Code of Connection catalogue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx import audit
from gcx.central.compliance._core import ComplianceCore
from gcx.central.compliance._principal import Principal, _require
from gcx.compliance.catalogue import Catalogue, catalogue_digest, parse_catalogue
from gcx.compliance.statement import Role
from gcx.errors import Conflict
from gcx.store import iso
from gcx.store.schema_compliance import compliance_catalogues


class CatalogueUseCases(ComplianceCore):
    """The catalogue versions statements are answered against."""

    def current_catalogue(self) -> Catalogue:
        now = self.clock.now()
        with self.db.transaction() as conn:
            self._ensure_builtin(conn, now)
            return self._catalogue(conn)

    def catalogue(self, version: str) -> Catalogue:
        with self.db.transaction() as conn:
            self._ensure_builtin(conn, self.clock.now())
            return self._catalogue(conn, version)

    def list_catalogues(self) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            self._ensure_builtin(conn, self.clock.now())
            rows = conn.execute(
                sa.select(compliance_catalogues).order_by(compliance_catalogues.c.published_at)
            ).all()
            return [
                {
                    **self._catalogue(conn, r.version).summary(),
                    "sha256": r.sha256,
                    "published_at": r.published_at,
                    "published_by": r.published_by,
                    "current": bool(r.current),
                }
                for r in rows
            ]

    def publish_catalogue(self, by: Principal, text: str) -> dict[str, Any]:
        """Validate and publish a new catalogue version; open statements keep theirs."""
        _require(by, Role.OPERATOR)
        catalogue = parse_catalogue(text)
        now = self.clock.now()
        with self.db.transaction() as conn:
            self._ensure_builtin(conn, now)
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
