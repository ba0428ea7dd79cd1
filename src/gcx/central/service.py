"""Central's use cases: registry, enrolment and revocation.

Operators' tokens are :class:`gcx.central.operators.OperatorTokens`'s part, publishing
the directory is :class:`gcx.central.publishing.DirectoryPublishing`'s; the service
holds one of each and offers their use cases under its own name, which is the
name its callers (the API, the web pages, the CLI) use.

The module passes 400 lines because enrolment (submission, the duplicate and
key-reuse checks, approval with certificate issue, rejection, revocation) is one
lifecycle over one table and reads best in one place; the registry beside it is
short.

Every change is written in one transaction together with its audit entry and
the directory version it causes, so a crash never leaves a change that the
log or the directory does not show.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.compliance import require_compliance as compliance_gate
from gcx.central.home import CentralKeys
from gcx.central.operators import OperatorTokens
from gcx.central.publishing import DirectoryPublishing
from gcx.clock import Clock
from gcx.config import CentralConfig
from gcx.errors import (
    CryptoError,
    DuplicateEnrolment,
    InputError,
    NotFound,
    UnknownOrganisation,
)
from gcx.protocol.enrolment import (
    HOLDING_STATES,
    EnrolmentEvent,
    EnrolmentState,
    key_binding_message,
    next_state,
)
from gcx.protocol.identifiers import (
    check_gateway_name,
    check_organisation_code,
    parse_organisation_type,
)
from gcx.store import Database, iso
from gcx.store.schema import enrolments, organisations


class CentralService:
    def __init__(
        self, config: CentralConfig, database: Database, keys: CentralKeys, clock: Clock
    ) -> None:
        self.config = config
        self.db = database
        self.keys = keys
        self.clock = clock
        self.operators = OperatorTokens(database, clock)
        self.directory = DirectoryPublishing(config, database, keys, clock)
        self.add_operator = self.operators.add_operator
        self.authenticate_operator = self.operators.authenticate_operator
        self.revoke_operator = self.operators.revoke_operator
        self.publish_directory = self.directory.publish_directory
        self.publish_in = self.directory.publish_in
        self.prune_directories = self.directory.prune_directories
        self.latest_directory = self.directory.latest_directory
        self.latest_directory_expiry = self.directory.latest_directory_expiry

    # -- member registry ---------------------------------------------------

    def add_organisation(
        self, operator: str, code: str, name: str, type_: str, contacts: list[dict[str, str]]
    ) -> dict[str, Any]:
        check_organisation_code(code)
        org_type = parse_organisation_type(type_)
        if not name.strip() or len(name) > 200:
            raise InputError("The organisation name must be 1 to 200 characters.")
        now = self.clock.now()
        with self.db.transaction() as conn:
            if conn.execute(
                sa.select(organisations.c.code).where(organisations.c.code == code)
            ).first():
                raise DuplicateEnrolment(
                    f"Organisation {code} is already in the registry.", code=code
                )
            conn.execute(
                organisations.insert().values(
                    code=code,
                    name=name.strip(),
                    type=org_type.value,
                    contacts=contacts,
                    created_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=f"operator:{operator}",
                action="organisation.added",
                subject=code,
                now=now,
                details={"name": name, "type": org_type.value},
            )
            self.publish_in(conn, now, reason=f"organisation {code} added")
        return {"code": code, "name": name.strip(), "type": org_type.value, "contacts": contacts}

    def list_organisations(self) -> list[dict[str, Any]]:
        with self.db.transaction() as conn:
            rows = conn.execute(sa.select(organisations).order_by(organisations.c.code)).all()
        return [
            {"code": r.code, "name": r.name, "type": r.type, "contacts": r.contacts} for r in rows
        ]

    # -- enrolment ---------------------------------------------------------

    def submit_enrolment(
        self, csr_pem: bytes, peer_address: str, organisation_keys: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """Record a gateway's request to join; it waits for an operator's decision."""
        info = crypto.parse_enrolment_request(csr_pem)
        check_gateway_name(info.gateway_name)
        _check_peer_address(peer_address)
        codes = [check_organisation_code(c) for c in info.organisation_codes]
        if set(organisation_keys) != set(codes):
            raise InputError(
                "The enrolment must give signing and encryption keys for exactly the "
                "organisations the request names."
            )
        for code in codes:
            _check_key_binding(csr_pem, code, organisation_keys[code])
        now = self.clock.now()
        enrolment_id = crypto.random_id(12)
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            known = {
                r.code
                for r in conn.execute(
                    sa.select(organisations.c.code).where(organisations.c.code.in_(codes))
                )
            }
            missing = [c for c in codes if c not in known]
            if missing:
                raise audit.AuditedRefusal(
                    UnknownOrganisation(
                        f"The request names {', '.join(missing)}, which the member registry "
                        "does not hold; an operator must register the organisation first.",
                        organisations=missing,
                    ),
                    actor=f"gateway:{info.gateway_name}",
                    action="enrolment.refused",
                    subject=info.gateway_name,
                    details={"organisations": missing},
                )
            self._refuse_duplicates(conn, info.gateway_name, codes, info.public_key, now)
            conn.execute(
                enrolments.insert().values(
                    id=enrolment_id,
                    gateway_name=info.gateway_name,
                    state=EnrolmentState.PENDING.value,
                    csr_pem=csr_pem.decode(),
                    peer_address=peer_address,
                    organisations=codes,
                    organisation_keys=organisation_keys,
                    requested_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=f"gateway:{info.gateway_name}",
                action="enrolment.requested",
                subject=enrolment_id,
                now=now,
                details={
                    "gateway": info.gateway_name,
                    "organisations": codes,
                    "peer_address": peer_address,
                },
            )
        return {
            "id": enrolment_id,
            "state": EnrolmentState.PENDING.value,
            "gateway": info.gateway_name,
            "organisations": codes,
        }

    def _refuse_duplicates(
        self,
        conn: Connection,
        gateway: str,
        codes: list[str],
        key: crypto.VerifyKey,
        now: dt.datetime,
    ) -> None:
        holding = {s.value for s in HOLDING_STATES}
        # Every enrolment is looked at, not only pending and active ones: a key
        # that was ever enrolled is never accepted again, so a revoked or
        # rejected gateway must come back with new keys.
        rows = conn.execute(
            sa.select(
                enrolments.c.id,
                enrolments.c.gateway_name,
                enrolments.c.organisations,
                enrolments.c.csr_pem,
                enrolments.c.state,
            )
        ).all()
        for row in rows:
            held = row.state in holding
            clash = sorted(set(row.organisations) & set(codes)) if held else []
            same_key = (
                crypto.parse_enrolment_request(row.csr_pem.encode()).public_key.raw() == key.raw()
            )
            if same_key and not held:
                raise audit.AuditedRefusal(
                    DuplicateEnrolment(
                        f"This key was already used by enrolment {row.id}, which is {row.state}; "
                        "enrol again with new keys (gcx gateway init makes them).",
                        existing=row.id,
                    ),
                    actor=f"gateway:{gateway}",
                    action="enrolment.refused",
                    subject=gateway,
                    details={"existing": row.id, "reused_key": True},
                )
            if not held:
                continue
            if row.gateway_name == gateway or clash or same_key:
                what = (
                    f"gateway {gateway}"
                    if row.gateway_name == gateway
                    else f"organisation {', '.join(clash)}"
                    if clash
                    else "this key"
                )
                raise audit.AuditedRefusal(
                    DuplicateEnrolment(
                        f"An enrolment for {what} is already pending or active ({row.id}); "
                        "revoke or reject it before enrolling again.",
                        existing=row.id,
                    ),
                    actor=f"gateway:{gateway}",
                    action="enrolment.refused",
                    subject=gateway,
                    details={"existing": row.id},
                )

    def get_enrolment(self, enrolment_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(sa.select(enrolments).where(enrolments.c.id == enrolment_id)).first()
        if row is None:
            raise NotFound(f"There is no enrolment {enrolment_id[:40]!r}.")
        return _enrolment_view(row)

    def list_enrolments(self, state: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(enrolments).order_by(enrolments.c.requested_at)
        if state:
            query = query.where(enrolments.c.state == state)
        with self.db.transaction() as conn:
            return [_enrolment_view(r) for r in conn.execute(query)]

    def approve_enrolment(
        self,
        operator: str,
        enrolment_id: str,
        reason: str,
        *,
        override: bool = False,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Issue the gateway's certificates and put it in the directory.

        With ``require_compliance`` set, every hosted organisation needs a
        current certificate of compliance or a granted extension, unless the
        operator overrides with a reason (recorded and shown on the dashboard).
        """
        reason = _require_reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = self._locked_enrolment(conn, enrolment_id)
            next_state(EnrolmentState(row.state), EnrolmentEvent.APPROVE)
            compliance_details: dict[str, Any] = {}
            if self.config.require_compliance:
                compliance_details = compliance_gate(
                    conn,
                    enrolment_id=enrolment_id,
                    codes=row.organisations,
                    operator=operator,
                    now=now,
                    home=self.config.home,
                    override=override,
                    override_reason=override_reason,
                )
            info = crypto.parse_enrolment_request(row.csr_pem.encode())
            validity = dt.timedelta(days=self.config.certificate_validity_days)
            host = row.peer_address.rsplit(":", 1)[0].strip("[]")
            certificate = crypto.issue_gateway_certificate(
                self.keys.root_key, self.keys.root, info, [host], now, validity
            )
            names = {
                r.code: r.name
                for r in conn.execute(
                    sa.select(organisations.c.code, organisations.c.name).where(
                        organisations.c.code.in_(row.organisations)
                    )
                )
            }
            org_certs = {
                code: crypto.issue_organisation_certificate(
                    self.keys.root_key,
                    self.keys.root,
                    code,
                    names[code],
                    crypto.VerifyKey.from_b64(row.organisation_keys[code]["signing_key"]),
                    now,
                    validity,
                ).pem.decode()
                for code in row.organisations
            }
            conn.execute(
                enrolments.update()
                .where(enrolments.c.id == enrolment_id)
                .values(
                    state=EnrolmentState.ACTIVE.value,
                    decided_at=iso(now),
                    decided_by=operator,
                    decision_reason=reason,
                    certificate_pem=certificate.pem.decode(),
                    certificate_fingerprint=certificate.fingerprint,
                    certificate_serial=certificate.serial,
                    certificate_not_after=iso(certificate.not_after),
                    organisation_certificates=org_certs,
                )
            )
            audit.append(
                conn,
                actor=f"operator:{operator}",
                action="enrolment.approved",
                subject=enrolment_id,
                now=now,
                details={
                    "gateway": row.gateway_name,
                    "reason": reason,
                    "certificate_fingerprint": certificate.fingerprint,
                    "organisations": row.organisations,
                    **compliance_details,
                },
            )
            self.publish_in(conn, now, reason=f"gateway {row.gateway_name} admitted")
        return self.get_enrolment(enrolment_id)

    def reject_enrolment(self, operator: str, enrolment_id: str, reason: str) -> dict[str, Any]:
        reason = _require_reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = self._locked_enrolment(conn, enrolment_id)
            next_state(EnrolmentState(row.state), EnrolmentEvent.REJECT)
            conn.execute(
                enrolments.update()
                .where(enrolments.c.id == enrolment_id)
                .values(
                    state=EnrolmentState.REJECTED.value,
                    decided_at=iso(now),
                    decided_by=operator,
                    decision_reason=reason,
                )
            )
            audit.append(
                conn,
                actor=f"operator:{operator}",
                action="enrolment.rejected",
                subject=enrolment_id,
                now=now,
                details={"reason": reason},
            )
        return self.get_enrolment(enrolment_id)

    def revoke_gateway(self, operator: str, gateway: str, reason: str) -> dict[str, Any]:
        """Withdraw an active gateway; its certificate joins the next directory's revocations."""
        reason = _require_reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(enrolments)
                .where(
                    enrolments.c.gateway_name == gateway,
                    enrolments.c.state == EnrolmentState.ACTIVE.value,
                )
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"There is no active gateway named {gateway[:63]!r}.")
            next_state(EnrolmentState(row.state), EnrolmentEvent.REVOKE)
            conn.execute(
                enrolments.update()
                .where(enrolments.c.id == row.id)
                .values(
                    state=EnrolmentState.REVOKED.value,
                    revoked_at=iso(now),
                    revoked_by=operator,
                    revocation_reason=reason,
                )
            )
            audit.append(
                conn,
                actor=f"operator:{operator}",
                action="gateway.revoked",
                subject=gateway,
                now=now,
                details={
                    "enrolment": row.id,
                    "reason": reason,
                    "certificate_fingerprint": row.certificate_fingerprint,
                },
            )
            self.publish_in(conn, now, reason=f"gateway {gateway} revoked")
        return self.get_enrolment(row.id)

    def _locked_enrolment(self, conn: Connection, enrolment_id: str) -> Any:
        row = conn.execute(
            sa.select(enrolments).where(enrolments.c.id == enrolment_id).with_for_update()
        ).first()
        if row is None:
            raise NotFound(f"There is no enrolment {enrolment_id[:40]!r}.")
        return row

    # -- audit -------------------------------------------------------------

    def verify_audit(self) -> audit.VerifyReport:
        with self.db.transaction() as conn:
            return audit.verify(conn)


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InputError("A reason is required and is recorded in the audit log.")
    if len(reason) > 1000:
        raise InputError("The reason must be at most 1,000 characters.")
    return reason


def _check_peer_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{address[:100]!r} is not a peer address of the form host:port.")


def _check_key_binding(csr_pem: bytes, code: str, keys: dict[str, str]) -> None:
    try:
        signing = crypto.VerifyKey.from_b64(keys["signing_key"])
        crypto.EncryptionPublicKey.from_b64(keys["encryption_key"])
        proof = keys["proof"]
        signing.verify(
            base64.b64decode(proof, validate=True),
            key_binding_message(csr_pem, code, keys["signing_key"], keys["encryption_key"]),
        )
    except (KeyError, TypeError, ValueError, CryptoError) as exc:
        raise InputError(
            f"The keys given for {code} are missing, malformed, or not proven by a signature "
            "with the organisation's signing key.",
            organisation=code,
        ) from exc


def _enrolment_view(row: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "gateway": row.gateway_name,
        "state": row.state,
        "organisations": list(row.organisations),
        "peer_address": row.peer_address,
        "requested_at": row.requested_at,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
    }
    if row.certificate_pem:
        view["certificate_pem"] = row.certificate_pem
        view["certificate_fingerprint"] = row.certificate_fingerprint
        view["organisation_certificates"] = row.organisation_certificates
    if row.revoked_at:
        view.update(
            revoked_at=row.revoked_at,
            revoked_by=row.revoked_by,
            revocation_reason=row.revocation_reason,
        )
    return view
