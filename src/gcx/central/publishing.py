"""Central publishing the signed directory: building it, versions, keeping and pruning.

A change (an approval, a revocation, an organisation added) publishes in the
same transaction as itself through :meth:`DirectoryPublishing.publish_in`, so
the directory never lags a decision that was committed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance import excluded_organisations
from gcx.central.home import CentralKeys
from gcx.central.ports import ACTOR_SYSTEM
from gcx.central.services import directory_sections
from gcx.clock import Clock
from gcx.config import CentralConfig
from gcx.protocol import directory as dirproto
from gcx.protocol.enrolment import EnrolmentState
from gcx.store import Database, iso, parse_iso
from gcx.store.schema import directory_publications, enrolments, organisations


class DirectoryPublishing:
    """Building, signing, keeping and pruning central's directory versions."""

    def __init__(
        self, config: CentralConfig, database: Database, keys: CentralKeys, clock: Clock
    ) -> None:
        self.config = config
        self.db = database
        self.keys = keys
        self.clock = clock

    def publish_directory(self, reason: str = "scheduled") -> int:
        """Publish a fresh directory version (the periodic refresh calls this)."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            return self.publish_in(conn, now, reason=reason)

    def prune_directories(self) -> int:
        """Delete publications that expired over ``directory_keep_days`` ago; keep the newest.

        A directory is republished every minute, each a signed copy of every
        member's keys, so keeping them all grows without bound. Gateways keep
        the versions their envelopes were checked against (their directory
        archive), and this log keeps each publication's hash.
        """
        now = self.clock.now()
        cutoff = iso(now - dt.timedelta(days=self.config.directory_keep_days))
        with self.db.transaction() as conn:
            newest = conn.execute(sa.select(sa.func.max(directory_publications.c.version))).scalar()
            if newest is None:
                return 0
            condition = sa.and_(
                directory_publications.c.expires_at < cutoff,
                directory_publications.c.version < newest,
            )
            through = conn.execute(
                sa.select(sa.func.max(directory_publications.c.version)).where(condition)
            ).scalar()
            if through is None:
                return 0
            count = conn.execute(directory_publications.delete().where(condition)).rowcount
            audit.append(
                conn,
                actor=ACTOR_SYSTEM,
                action="directory.pruned",
                subject="directory",
                now=now,
                details={
                    "count": count,
                    "through_version": through,
                    "keep_days": self.config.directory_keep_days,
                },
            )
        return int(count)

    def latest_directory(self) -> bytes:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(directory_publications.c.document)
                .order_by(directory_publications.c.version.desc())
                .limit(1)
            ).first()
            if row is not None:
                return bytes(row.document)
        self.publish_directory("first request")
        return self.latest_directory()

    def latest_directory_expiry(self) -> dt.datetime | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(directory_publications.c.expires_at)
                .order_by(directory_publications.c.version.desc())
                .limit(1)
            ).first()
        return parse_iso(row.expires_at) if row else None

    def publish_in(self, conn: Connection, now: dt.datetime, *, reason: str) -> int:
        # Version allocation under the same transaction as the change, behind the
        # audit log's lock: publishers queue there, so each reads the version the
        # previous one committed (PostgreSQL reads committed rows per statement),
        # and a transaction that appended to the audit log before publishing
        # (an approval) holds it already, so no two publishers wait on each
        # other's version and audit entry at once. SQLite serialises writers.
        audit.lock_head(conn)
        current = conn.execute(sa.select(sa.func.max(directory_publications.c.version))).scalar()
        version = int(current or 0) + 1
        directory = self._build_directory(conn, version, now)
        payload = directory.to_bytes()
        document = crypto.sign_document(
            dirproto.PAYLOAD_TYPE, payload, self.keys.root_key, self.keys.root_key_id
        )
        conn.execute(
            directory_publications.insert().values(
                version=version,
                issued_at=iso(now),
                expires_at=iso(directory.expires_at),
                content_hash=crypto.sha256_hex(payload),
                document=document,
            )
        )
        audit.append(
            conn,
            actor=ACTOR_SYSTEM,
            action="directory.published",
            subject=f"v{version}",
            now=now,
            details={
                "reason": reason,
                "sha256": crypto.sha256_hex(payload),
                "expires_at": iso(directory.expires_at),
            },
        )
        return version

    def _build_directory(
        self, conn: Connection, version: int, now: dt.datetime
    ) -> dirproto.Directory:
        active = conn.execute(
            sa.select(enrolments)
            .where(enrolments.c.state == EnrolmentState.ACTIVE.value)
            .order_by(enrolments.c.gateway_name)
        ).all()
        revoked = conn.execute(
            sa.select(enrolments)
            .where(enrolments.c.state == EnrolmentState.REVOKED.value)
            .order_by(enrolments.c.revoked_at)
        ).all()
        # An organisation whose Code of Connection approval has lapsed beyond its
        # grace period, or been withdrawn, is listed without gateway or keys, and
        # a gateway left hosting no one is left out, so its peers refuse it.
        excluded = excluded_organisations(conn, now, self.config.home)
        hosting: dict[str, Any] = {}
        for row in active:
            for code in row.organisations:
                if code not in excluded:
                    hosting[code] = row
        orgs = []
        for org in conn.execute(sa.select(organisations).order_by(organisations.c.code)):
            host = hosting.get(org.code)
            keys = host.organisation_keys[org.code] if host else {}
            orgs.append(
                dirproto.OrganisationEntry(
                    code=org.code,
                    name=org.name,
                    type=org.type,
                    gateway=host.gateway_name if host else None,
                    signing_key=keys.get("signing_key"),
                    signing_certificate=host.organisation_certificates[org.code] if host else None,
                    encryption_key=keys.get("encryption_key"),
                    encryption_kem="MLKEM768-X25519" if host else None,
                )
            )
        gateways = [
            dirproto.GatewayEntry(
                name=row.gateway_name,
                peer_address=row.peer_address,
                certificate_fingerprint=row.certificate_fingerprint,
                certificate_serial=row.certificate_serial,
                certificate_not_after=parse_iso(row.certificate_not_after),
                organisations=tuple(c for c in row.organisations if c not in excluded),
            )
            for row in active
            if any(c not in excluded for c in row.organisations)
        ]
        revocations = [
            dirproto.Revocation(
                gateway=row.gateway_name,
                certificate_serial=row.certificate_serial,
                certificate_fingerprint=row.certificate_fingerprint,
                reason=row.revocation_reason or "",
                revoked_at=parse_iso(row.revoked_at),
            )
            for row in revoked
            # A revoked certificate past its own expiry can no longer be used
            # anywhere, so it can leave the list (as CRLs drop expired entries).
            if parse_iso(row.certificate_not_after) > now
        ]
        return dirproto.Directory(
            **directory_sections(conn, set(hosting)),
            network=self.config.network,
            version=version,
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=self.config.directory_validity_seconds),
            organisations=tuple(orgs),
            gateways=tuple(gateways),
            revocations=tuple(revocations),
        )
