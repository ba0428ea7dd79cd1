"""Central's Code of Connection use cases: statements, assessment, approval, extensions.

Theory of operation:

* People act through accounts with roles (:class:`Principal`). Central's
  operators keep their ``gcxo_`` tokens; assessors and an organisation's
  security officers and sign-off officers get ``gcxc_`` tokens that an
  operator issues. Account names and operator names are one namespace, so
  separation of duties compares people, not tokens.
* A statement moves only along :data:`gcx.compliance.statement.TRANSITIONS`;
  every step is written in one transaction with its audit entry, as central's
  other use cases are.
* Approval creates a certificate of compliance with an expiry. Whether an
  organisation is connected follows from its standing (certificate,
  extensions, grace period, withdrawal), computed from ``now`` whenever the
  directory is built, so a lapse needs no job to take effect; :meth:`sweep`
  only records notifications and republishes promptly.
* Steps that can bring an organisation into or out of the directory
  (approval, withdrawal, extension granted, lapse seen by a sweep) publish a
  new directory version in the same transaction.

Settings come from ``compliance.toml`` in central's home, if present
(:class:`ComplianceSettings`); every one has a safe default.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.compliance import exports
from gcx.compliance.catalogue import (
    Catalogue,
    Level,
    Result,
    builtin_catalogue_text,
    catalogue_digest,
    parse_catalogue,
)
from gcx.compliance.evidence import SELFCHECK_MEDIA_TYPE, check_evidence, normalise_media_type
from gcx.compliance.rules import (
    CONNECTED,
    EXCLUDED,
    VERDICT_RULE,
    CertificateFacts,
    Outcome,
    PairedResult,
    Standing,
    StandingReport,
    check_extension_request,
    compute_verdict,
    consistency_report,
    due_reminder,
    missing_results,
    standing,
)
from gcx.compliance.selfcheck_format import SELFCHECK_TYPE, parse_report
from gcx.compliance.statement import (
    CENTRAL_ROLES,
    EDITABLE,
    OPEN,
    ORGANISATION_ROLES,
    SECOND_ASSESSABLE,
    Role,
    StatementEvent,
    StatementState,
    advance,
    check_separation,
    system_advance,
)
from gcx.errors import (
    AssessmentIncomplete,
    ComplianceRequired,
    ConfigError,
    Conflict,
    ControlNotInCatalogue,
    CryptoError,
    DuplicateEnrolment,
    Forbidden,
    GcxError,
    InputError,
    JustificationRequired,
    NotFound,
    RoleRequired,
    SelfCheckSignatureInvalid,
    StateTransitionRefused,
    TokenInvalid,
    VerdictNotMet,
)
from gcx.protocol.enrolment import EnrolmentState
from gcx.protocol.identifiers import check_account_name, check_organisation_code
from gcx.store import iso, parse_iso
from gcx.store.blobs import BlobStore, FileBlobStore
from gcx.store.schema import enrolments, organisations
from gcx.store.schema_compliance import (
    compliance_accounts,
    compliance_answers,
    compliance_assessments,
    compliance_catalogues,
    compliance_certificates,
    compliance_evidence,
    compliance_evidence_links,
    compliance_extensions,
    compliance_notifications,
    compliance_overrides,
    compliance_results,
    compliance_selfchecks,
    compliance_statements,
)

if TYPE_CHECKING:
    from gcx.central.service import CentralService

SETTINGS_FILE = "compliance.toml"
ACCOUNT_TOKEN_PREFIX = "gcxc"  # noqa: S105 - a prefix, not a secret
MAX_TEXT = 20_000


@dataclass(frozen=True)
class ComplianceSettings:
    """Network-wide Code of Connection settings (``compliance.toml`` in central's home)."""

    certificate_validity_days: float = 365.0
    grace_period_days: float = 30.0
    max_extension_days: int = 90
    evidence_max_bytes: int = 10 * 1024 * 1024
    evidence_validity_days: int = 365

    @classmethod
    def load(cls, home: Path) -> ComplianceSettings:
        path = home / SETTINGS_FILE
        if not path.exists():
            return cls()
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown settings in {path}: {', '.join(sorted(unknown))}.")
        try:
            settings = cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"{path} holds a setting of the wrong kind: {exc}.") from exc
        if settings.grace_period_days < 0 or settings.certificate_validity_days <= 0:
            raise ConfigError(f"{path}: validity must be positive and grace not negative.")
        return settings

    @property
    def grace(self) -> dt.timedelta:
        return dt.timedelta(days=self.grace_period_days)


@dataclass(frozen=True)
class Principal:
    """Who is acting: an operator, an assessor, or a person of one organisation."""

    name: str
    kind: str  # "operator" or "account"
    roles: frozenset[str]
    organisation: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.name}"

    def has(self, role: Role) -> bool:
        return role.value in self.roles

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": sorted(self.roles),
            "organisation": self.organisation,
        }


# -- hooks central's enrolment and directory code call ---------------------------


def _latest_certificates(conn: Connection) -> dict[str, Any]:
    rows = conn.execute(
        sa.select(compliance_certificates).order_by(compliance_certificates.c.decided_at)
    ).all()
    return {row.organisation: row for row in rows}  # later rows win


def _granted_extensions(conn: Connection) -> dict[str, list[dt.datetime]]:
    granted: dict[str, list[dt.datetime]] = {}
    for row in conn.execute(
        sa.select(
            compliance_extensions.c.organisation, compliance_extensions.c.granted_until
        ).where(compliance_extensions.c.state == "granted")
    ):
        granted.setdefault(row.organisation, []).append(parse_iso(row.granted_until))
    return granted


def standings(
    conn: Connection, now: dt.datetime, settings: ComplianceSettings
) -> dict[str, StandingReport]:
    """The standing of every registered organisation at ``now``."""
    latest = _latest_certificates(conn)
    granted = _granted_extensions(conn)
    result = {}
    for (code,) in conn.execute(sa.select(organisations.c.code)):
        row = latest.get(code)
        facts = (
            CertificateFacts(
                parse_iso(row.decided_at),
                parse_iso(row.expires_at),
                parse_iso(row.withdrawn_at) if row.withdrawn_at else None,
            )
            if row is not None
            else None
        )
        result[code] = standing(facts, granted.get(code, []), now, settings.grace)
    return result


def excluded_organisations(conn: Connection, now: dt.datetime, home: Path) -> set[str]:
    """Organisations whose approval has lapsed beyond grace or been withdrawn: not in the directory.

    Organisations that were never certified are not excluded here: whether
    they may join was decided when their gateway's enrolment was approved
    (with a certificate, an extension, an override, or with the gate off).
    """
    settings = ComplianceSettings.load(home)
    return {code for code, s in standings(conn, now, settings).items() if s.standing in EXCLUDED}


def require_compliance(
    conn: Connection,
    *,
    enrolment_id: str,
    codes: Iterable[str],
    operator: str,
    now: dt.datetime,
    home: Path,
    override: bool,
    override_reason: str | None,
) -> dict[str, Any]:
    """The Code of Connection gate on enrolment approval.

    Every organisation must be connected by standing (certificate, extension
    or grace), unless the operator overrides with a reason; an override is
    recorded for the dashboard. Returns what to add to the audit entry.
    """
    settings = ComplianceSettings.load(home)
    current = standings(conn, now, settings)
    missing = sorted(
        c
        for c in codes
        if current.get(c, StandingReport(Standing.NONE, None)).standing not in CONNECTED
    )
    if not missing:
        return {"compliance": "met"}
    if not override:
        raise ComplianceRequired(
            f"{', '.join(missing)} has no current certificate of compliance or granted extension; "
            "approve its statement first, or approve with an override and a reason.",
            organisations=missing,
        )
    reason = (override_reason or "").strip()
    if not reason:
        raise JustificationRequired(
            "An override of the Code of Connection needs a reason; it is recorded and shown on "
            "the network dashboard."
        )
    for code in missing:
        conn.execute(
            compliance_overrides.insert().values(
                enrolment_id=enrolment_id,
                organisation=code,
                operator=operator,
                reason=reason[:1000],
                created_at=iso(now),
            )
        )
    return {"compliance": "overridden", "override_reason": reason[:1000], "overridden": missing}


# -- the service ---------------------------------------------------------------------


class ComplianceService:
    def __init__(
        self,
        central: CentralService,
        blobs: BlobStore | None = None,
        settings: ComplianceSettings | None = None,
    ) -> None:
        self.central = central
        self.db = central.db
        self.clock = central.clock
        self.blobs = blobs or FileBlobStore(central.config.home / "evidence")
        self._settings = settings
        self._catalogues: dict[tuple[str, str], Catalogue] = {}

    @property
    def settings(self) -> ComplianceSettings:
        return self._settings or ComplianceSettings.load(self.central.config.home)

    # -- who is calling ------------------------------------------------------------

    def authenticate(self, token: str | None, *, request: str) -> Principal:
        if token and token.startswith("gcxo_"):
            name = self.central.authenticate_operator(token, request=request)
            return Principal(name, "operator", frozenset({Role.OPERATOR.value}))
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = None
            if token:
                row = conn.execute(
                    sa.select(compliance_accounts).where(
                        compliance_accounts.c.token_hash == crypto.hash_token(token)
                    )
                ).first()
            if (
                row is None
                or row.revoked_at is not None
                or not token
                or not crypto.token_matches(token, row.token_hash)
            ):
                raise audit.AuditedRefusal(
                    TokenInvalid(
                        "The token is unknown or revoked; ask the network operator for a "
                        "compliance account token."
                    ),
                    actor="anonymous",
                    action="token.refused",
                    subject="compliance",
                    details={"request": request},
                )
            audit.append(
                conn,
                actor=f"account:{row.name}",
                action="token.used",
                subject="compliance",
                now=now,
                details={"request": request},
            )
            return Principal(row.name, "account", frozenset(row.roles), row.organisation)

    def add_account(
        self, by: Principal, name: str, roles: list[str], organisation: str | None
    ) -> str:
        """Create a compliance account and return its token (shown once)."""
        _require(by, Role.OPERATOR)
        check_account_name(name)
        try:
            wanted = {Role(r) for r in roles}
        except ValueError as exc:
            raise InputError("Roles must be among: assessor, security-officer, sign-off.") from exc
        if not wanted or Role.OPERATOR in wanted:
            raise InputError(
                "Give one or more of: assessor, security-officer, sign-off (operators are made "
                "with 'gcx central operator add')."
            )
        if wanted & ORGANISATION_ROLES and wanted & CENTRAL_ROLES:
            raise InputError("One account cannot be both an assessor and an organisation officer.")
        if wanted & ORGANISATION_ROLES and not organisation:
            raise InputError("Organisation officers need the organisation they act for.")
        if wanted & CENTRAL_ROLES and organisation:
            raise InputError("Assessors act for the network, not for one organisation.")
        token = crypto.new_token(ACCOUNT_TOKEN_PREFIX)
        now = self.clock.now()
        with self.db.transaction() as conn:
            if organisation:
                self._require_organisation(conn, organisation)
            if conn.execute(
                sa.select(compliance_accounts.c.name).where(compliance_accounts.c.name == name)
            ).first():
                raise DuplicateEnrolment(f"A compliance account named {name!r} already exists.")
            conn.execute(
                compliance_accounts.insert().values(
                    name=name,
                    organisation=organisation,
                    roles=sorted(r.value for r in wanted),
                    token_hash=crypto.hash_token(token),
                    created_at=iso(now),
                    created_by=by.name,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.account.added",
                subject=name,
                now=now,
                details={"roles": sorted(r.value for r in wanted), "organisation": organisation},
            )
        return token

    def revoke_account(self, by: Principal, name: str) -> None:
        _require(by, Role.OPERATOR)
        now = self.clock.now()
        with self.db.transaction() as conn:
            updated = conn.execute(
                compliance_accounts.update()
                .where(
                    compliance_accounts.c.name == name, compliance_accounts.c.revoked_at.is_(None)
                )
                .values(revoked_at=iso(now))
            ).rowcount
            if not updated:
                raise NotFound(f"There is no active compliance account named {name[:64]!r}.")
            audit.append(
                conn, actor=by.actor, action="compliance.account.revoked", subject=name, now=now
            )

    def list_accounts(self, by: Principal) -> list[dict[str, Any]]:
        _require(by, Role.OPERATOR)
        with self.db.transaction() as conn:
            rows = conn.execute(
                sa.select(compliance_accounts).order_by(compliance_accounts.c.name)
            ).all()
        return [
            {
                "name": r.name,
                "organisation": r.organisation,
                "roles": list(r.roles),
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
            for r in rows
        ]

    # -- catalogues ---------------------------------------------------------------

    def _ensure_builtin(self, conn: Connection, now: dt.datetime) -> None:
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

    def _catalogue(self, conn: Connection, version: str | None = None) -> Catalogue:
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
        if key not in self._catalogues:
            self._catalogues[key] = parse_catalogue(row.document)
        return self._catalogues[key]

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

    # -- statements ------------------------------------------------------------------

    def create_statement(self, by: Principal, organisation: str) -> dict[str, Any]:
        """Start a statement on the current catalogue; a renewal copies the last approved one."""
        _require(by, Role.SECURITY_OFFICER)
        _require_member(by, organisation)
        now = self.clock.now()
        statement_id = crypto.random_id(12)
        with self.db.transaction() as conn:
            self._ensure_builtin(conn, now)
            self._require_organisation(conn, organisation)
            open_states = [s.value for s in OPEN]
            existing = conn.execute(
                sa.select(compliance_statements.c.id).where(
                    compliance_statements.c.organisation == organisation,
                    compliance_statements.c.state.in_(open_states),
                )
            ).first()
            if existing:
                raise Conflict(
                    f"{organisation} already has an open statement ({existing.id}); finish or "
                    "abandon it first.",
                    statement=existing.id,
                )
            catalogue = self._catalogue(conn)
            previous = conn.execute(
                sa.select(compliance_statements)
                .where(
                    compliance_statements.c.organisation == organisation,
                    compliance_statements.c.state == StatementState.APPROVED.value,
                )
                .order_by(compliance_statements.c.decided_at.desc())
                .limit(1)
            ).first()
            conn.execute(
                compliance_statements.insert().values(
                    id=statement_id,
                    organisation=organisation,
                    catalogue_version=catalogue.version,
                    state=StatementState.DRAFT.value,
                    renewal_of=previous.id if previous else None,
                    created_at=iso(now),
                    created_by=by.name,
                    updated_at=iso(now),
                    contributors=[],
                    history=[_history(now, by, "create", StatementState.DRAFT)],
                )
            )
            copied = 0
            if previous is not None:
                copied = self._copy_for_renewal(conn, previous.id, statement_id, catalogue, now)
            self._link_latest_selfcheck(conn, organisation, statement_id, catalogue, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.statement.created",
                subject=statement_id,
                now=now,
                details={
                    "organisation": organisation,
                    "catalogue_version": catalogue.version,
                    "renewal_of": previous.id if previous else None,
                    "answers_to_reconfirm": copied,
                },
            )
        return self.statement(by, statement_id)

    def _copy_for_renewal(
        self,
        conn: Connection,
        source: str,
        target: str,
        catalogue: Catalogue,
        now: dt.datetime,
    ) -> int:
        """Copy last year's answers, each marked for re-confirmation, and in-date evidence."""
        copied = 0
        for row in conn.execute(
            sa.select(compliance_answers).where(compliance_answers.c.statement_id == source)
        ):
            if catalogue.control(row.control_id) is None:
                continue  # the control left the catalogue; nothing to carry over
            conn.execute(
                compliance_answers.insert().values(
                    statement_id=target,
                    control_id=row.control_id,
                    choice=row.choice,
                    answer=row.answer,
                    plan=row.plan,
                    plan_target=row.plan_target,
                    needs_reconfirmation=True,
                    updated_at=row.updated_at,
                    updated_by=row.updated_by,
                )
            )
            copied += 1
        for link in conn.execute(
            sa.select(compliance_evidence_links, compliance_evidence.c.expires_at)
            .join(
                compliance_evidence,
                compliance_evidence.c.id == compliance_evidence_links.c.evidence_id,
            )
            .where(compliance_evidence_links.c.statement_id == source)
        ):
            if parse_iso(link.expires_at) > now and catalogue.control(link.control_id):
                conn.execute(
                    compliance_evidence_links.insert().values(
                        statement_id=target,
                        control_id=link.control_id,
                        evidence_id=link.evidence_id,
                    )
                )
        return copied

    def statement(self, by: Principal, statement_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id)
            _require_reader(by, row.organisation)
            return self._statement_view(conn, row)

    def list_statements(
        self, by: Principal, *, organisation: str | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        if by.organisation is not None:
            if organisation not in (None, by.organisation):
                raise Forbidden("You may only see your own organisation's statements.")
            organisation = by.organisation
        query = sa.select(compliance_statements).order_by(compliance_statements.c.created_at)
        if organisation:
            query = query.where(compliance_statements.c.organisation == organisation)
        if state:
            query = query.where(compliance_statements.c.state == state)
        with self.db.transaction() as conn:
            return [_statement_summary(r) for r in conn.execute(query)]

    def answer(
        self,
        by: Principal,
        statement_id: str,
        control_id: str,
        *,
        answer: str,
        choice: str | None = None,
        plan: str | None = None,
        plan_target: str | None = None,
    ) -> dict[str, Any]:
        """Write (or re-confirm) the organisation's answer to one control."""
        _require(by, Role.SECURITY_OFFICER)
        answer = (answer or "").strip()
        if not answer or len(answer) > MAX_TEXT:
            raise InputError(f"An answer must be 1 to {MAX_TEXT:,} characters.")
        target_date = _parse_date(plan_target, "plan_target") if plan_target else None
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id, lock=True)
            _require_member(by, row.organisation)
            self._require_editable(row)
            catalogue = self._catalogue(conn, row.catalogue_version)
            control = catalogue.control(control_id)
            if control is None:
                raise audit.AuditedRefusal(
                    ControlNotInCatalogue(
                        f"{control_id[:40]} is not a control of catalogue version "
                        f"{row.catalogue_version}, which this statement uses.",
                        control=control_id[:40],
                        catalogue_version=row.catalogue_version,
                    ),
                    actor=by.actor,
                    action="compliance.answer.refused",
                    subject=statement_id,
                    details={"control": control_id[:40]},
                )
            if choice is not None:
                if control.choices is None:
                    raise InputError(f"{control_id} has no scripted answer choices.")
                if control.choices.result_for(choice) is None:
                    raise InputError(
                        f"{choice[:40]!r} is not one of {control_id}'s answer choices.",
                        choices=[o.value for o in control.choices.options],
                    )
            if target_date is not None and control.level is Level.MUST:
                raise InputError(
                    f"{control_id} is a MUST control: it must be met, so a plan with a target "
                    "date cannot stand in for it."
                )
            if (plan is None) != (target_date is None):
                raise InputError("A plan needs both its text and a target date (YYYY-MM-DD).")
            values = {
                "choice": choice,
                "answer": answer,
                "plan": (plan or "").strip()[:MAX_TEXT] or None,
                "plan_target": target_date.isoformat() if target_date else None,
                "needs_reconfirmation": False,
                "updated_at": iso(now),
                "updated_by": by.name,
            }
            exists = conn.execute(
                sa.select(compliance_answers.c.control_id).where(
                    compliance_answers.c.statement_id == statement_id,
                    compliance_answers.c.control_id == control_id,
                )
            ).first()
            if exists:
                conn.execute(
                    compliance_answers.update()
                    .where(
                        compliance_answers.c.statement_id == statement_id,
                        compliance_answers.c.control_id == control_id,
                    )
                    .values(**values)
                )
            else:
                conn.execute(
                    compliance_answers.insert().values(
                        statement_id=statement_id, control_id=control_id, **values
                    )
                )
            self._touch(conn, row, by, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.answer.written",
                subject=statement_id,
                now=now,
                details={
                    "control": control_id,
                    "choice": choice,
                    "plan_target": values["plan_target"],
                },
            )
            return self._statement_view(conn, self._statement_row(conn, statement_id))

    def add_evidence(
        self,
        by: Principal,
        statement_id: str,
        *,
        filename: str,
        media_type: str,
        data: bytes,
        controls: list[str],
        expires_at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Store an evidence file (by SHA-256, with an expiry) and attach it to controls."""
        _require(by, Role.SECURITY_OFFICER)
        settings = self.settings
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise InputError("The evidence's expiry date must be in the future.")
        if not controls:
            raise InputError("Name at least one control the evidence supports.")
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id, lock=True)
            _require_member(by, row.organisation)
            self._require_editable(row)
            catalogue = self._catalogue(conn, row.catalogue_version)
            unknown = [c for c in controls if catalogue.control(c) is None]
            try:
                if unknown:
                    raise ControlNotInCatalogue(
                        f"{', '.join(c[:20] for c in unknown[:5])} is not a control of catalogue "
                        f"version {row.catalogue_version}.",
                        controls=[c[:20] for c in unknown[:20]],
                    )
                check_evidence(filename, media_type, data, max_bytes=settings.evidence_max_bytes)
            except InputError as error:
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.evidence.refused",
                    subject=statement_id,
                    details={"size": len(data), "media_type": media_type[:80]},
                ) from None
            digest = crypto.sha256_hex(data)
            self.blobs.put(f"evidence/{digest}", data)
            evidence_id = crypto.random_id(12)
            expiry = expires_at or now + dt.timedelta(days=settings.evidence_validity_days)
            conn.execute(
                compliance_evidence.insert().values(
                    id=evidence_id,
                    organisation=row.organisation,
                    kind="file",
                    filename=filename.strip(),
                    media_type=normalise_media_type(media_type),
                    size=len(data),
                    sha256=digest,
                    expires_at=iso(expiry),
                    uploaded_at=iso(now),
                    uploaded_by=by.name,
                )
            )
            for control_id in sorted(set(controls)):
                conn.execute(
                    compliance_evidence_links.insert().values(
                        statement_id=statement_id, control_id=control_id, evidence_id=evidence_id
                    )
                )
            self._touch(conn, row, by, now)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.evidence.added",
                subject=statement_id,
                now=now,
                details={
                    "evidence": evidence_id,
                    "sha256": digest,
                    "size": len(data),
                    "controls": sorted(set(controls)),
                    "expires_at": iso(expiry),
                },
            )
        return {"id": evidence_id, "sha256": digest, "size": len(data), "expires_at": iso(expiry)}

    def evidence_content(self, by: Principal, evidence_id: str) -> tuple[dict[str, Any], bytes]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_evidence).where(compliance_evidence.c.id == evidence_id)
            ).first()
            if row is None:
                raise NotFound(f"There is no evidence {evidence_id[:40]!r}.")
            _require_reader(by, row.organisation)
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.evidence.read",
                subject=evidence_id,
                now=self.clock.now(),
            )
        data = self.blobs.get(f"evidence/{row.sha256}")
        if crypto.sha256_hex(data) != row.sha256:
            raise CryptoError("The stored evidence does not match its recorded SHA-256.")
        return {"filename": row.filename, "media_type": row.media_type, "sha256": row.sha256}, data

    def request_sign_off(self, by: Principal, statement_id: str) -> dict[str, Any]:
        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            answers = self._answers(conn, statement_id)
            unanswered = [c for c in catalogue.control_ids if c not in answers]
            stale = sorted(c for c, a in answers.items() if a["needs_reconfirmation"])
            if unanswered or stale:
                raise StateTransitionRefused(
                    f"The statement is not ready for sign-off: {len(unanswered)} control(s) "
                    f"unanswered and {len(stale)} answer(s) from last year not yet re-confirmed.",
                    unanswered=unanswered[:100],
                    to_reconfirm=stale[:100],
                )
            return {"sign_off_requested_by": by.name}

        return self._step(by, statement_id, StatementEvent.REQUEST_SIGN_OFF, check)

    def decline_sign_off(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = _reason(reason)
        return self._step(
            by,
            statement_id,
            StatementEvent.DECLINE_SIGN_OFF,
            lambda conn, row, cat: {"decision_reason": reason},
            details={"reason": reason},
        )

    def sign_off(self, by: Principal, statement_id: str) -> dict[str, Any]:
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            check_separation(
                by.name, [*row.contributors, row.sign_off_requested_by, row.created_by], "sign off"
            )
            return {"signed_off_by": by.name, "signed_off_at": iso(now), "submitted_at": iso(now)}

        return self._step(by, statement_id, StatementEvent.SIGN_OFF, check)

    def abandon(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = _reason(reason)
        return self._step(
            by,
            statement_id,
            StatementEvent.ABANDON,
            lambda conn, row, cat: {"decision_reason": reason},
            details={"reason": reason},
        )

    # -- assessment ------------------------------------------------------------------

    def start_assessment(self, by: Principal, statement_id: str) -> dict[str, Any]:
        """Open the assessment of record (the first assessor to take the statement)."""
        now = self.clock.now()
        assessment_id = crypto.random_id(12)

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            check_separation(by.name, _organisation_people(row), "assess")
            conn.execute(
                compliance_assessments.insert().values(
                    id=assessment_id,
                    statement_id=statement_id,
                    ordinal=1,
                    assessor=by.name,
                    state="open",
                    started_at=iso(now),
                    change_requests=[],
                )
            )
            return {}

        self._step(
            by,
            statement_id,
            StatementEvent.START_ASSESSMENT,
            check,
            details={"assessment": assessment_id},
        )
        return self.assessment(by, assessment_id)

    def start_second_assessment(self, by: Principal, statement_id: str) -> dict[str, Any]:
        """A second, independent assessment of the same answers, for the consistency report."""
        _require(by, Role.ASSESSOR)
        now = self.clock.now()
        assessment_id = crypto.random_id(12)
        with self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id, lock=True)
            if StatementState(row.state) not in SECOND_ASSESSABLE:
                raise StateTransitionRefused(
                    f"A second assessment needs a statement under assessment or assessed; this "
                    f"one is {row.state}."
                )
            others = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state != "returned",
                )
            ).all()
            if any(a.ordinal == 2 for a in others):
                raise Conflict("This statement already has a second assessment.")
            check_separation(
                by.name, [*_organisation_people(row), *(a.assessor for a in others)], "assess"
            )
            conn.execute(
                compliance_assessments.insert().values(
                    id=assessment_id,
                    statement_id=statement_id,
                    ordinal=2,
                    assessor=by.name,
                    state="open",
                    started_at=iso(now),
                    change_requests=[],
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.assessment.second-started",
                subject=statement_id,
                now=now,
                details={"assessment": assessment_id},
            )
        return self.assessment(by, assessment_id)

    def assessment(self, by: Principal, assessment_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = self._assessment_row(conn, assessment_id)
            statement = self._statement_row(conn, row.statement_id)
            _require_reader(by, statement.organisation)
            return _assessment_view(row, self._results(conn, assessment_id))

    def record_result(
        self, by: Principal, assessment_id: str, control_id: str, result: str, reason: str
    ) -> dict[str, Any]:
        """The assessor's finding on one control, with the reason for it."""
        _require(by, Role.ASSESSOR)
        try:
            finding = Result(result)
        except ValueError as exc:
            raise InputError(
                "The result must be compliant, partially-compliant, non-compliant or "
                "not-applicable."
            ) from exc
        reason = _reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = self._assessment_row(conn, assessment_id, lock=True)
            self._require_own_open_assessment(row, by)
            statement = self._statement_row(conn, row.statement_id)
            catalogue = self._catalogue(conn, statement.catalogue_version)
            if catalogue.control(control_id) is None:
                raise ControlNotInCatalogue(
                    f"{control_id[:40]} is not a control of catalogue version "
                    f"{statement.catalogue_version}.",
                    control=control_id[:40],
                )
            conn.execute(
                compliance_results.delete().where(
                    compliance_results.c.assessment_id == assessment_id,
                    compliance_results.c.control_id == control_id,
                )
            )
            conn.execute(
                compliance_results.insert().values(
                    assessment_id=assessment_id,
                    control_id=control_id,
                    result=finding.value,
                    reason=reason,
                    recorded_at=iso(now),
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.result.recorded",
                subject=assessment_id,
                now=now,
                details={"control": control_id, "result": finding.value},
            )
            return _assessment_view(row, self._results(conn, assessment_id))

    def return_for_changes(
        self, by: Principal, statement_id: str, change_requests: list[dict[str, str]]
    ) -> dict[str, Any]:
        """Send the statement back to the organisation with what to change."""
        if not change_requests:
            raise InputError("Say what must change: give at least one change request.")
        requests = [
            {
                "control": str(r.get("control", ""))[:20],
                "request": _reason(str(r.get("request", ""))),
            }
            for r in change_requests
        ]
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            for item in requests:
                if item["control"] and catalogue.control(item["control"]) is None:
                    raise ControlNotInCatalogue(
                        f"{item['control']} is not a control of catalogue version "
                        f"{row.catalogue_version}."
                    )
            if by.has(Role.ASSESSOR) and not by.has(Role.OPERATOR):
                primary = self._primary(conn, statement_id)
                if primary is None or primary.assessor != by.name:
                    raise Forbidden("Only the statement's assessor may send it back.")
            conn.execute(
                compliance_assessments.update()
                .where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state.in_(["open", "completed"]),
                )
                .values(state="returned", completed_at=iso(now), change_requests=requests)
            )
            return {"signed_off_by": None, "signed_off_at": None, "sign_off_requested_by": None}

        return self._step(
            by, statement_id, StatementEvent.RETURN, check, details={"change_requests": requests}
        )

    def complete_assessment(
        self,
        by: Principal,
        assessment_id: str,
        *,
        override_outcome: str | None = None,
        justification: str | None = None,
    ) -> dict[str, Any]:
        """Compute the verdict by the versioned rule; an override needs a written justification."""
        _require(by, Role.ASSESSOR)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = self._assessment_row(conn, assessment_id, lock=True)
            self._require_own_open_assessment(row, by)
            statement = self._statement_row(conn, row.statement_id, lock=True)
            catalogue = self._catalogue(conn, statement.catalogue_version)
            results = {
                c: Result(r["result"]) for c, r in self._results(conn, assessment_id).items()
            }
            missing = missing_results(catalogue, results)
            if missing:
                raise AssessmentIncomplete(
                    f"{len(missing)} control(s) have no result yet, starting with {missing[0]}.",
                    missing=missing[:100],
                )
            answers = self._answers(conn, row.statement_id)
            targets = {
                c: dt.date.fromisoformat(a["plan_target"]) if a["plan_target"] else None
                for c, a in answers.items()
            }
            verdict = compute_verdict(catalogue, results, targets, now, rule=VERDICT_RULE)
            outcome = verdict.outcome
            text = (justification or "").strip()
            if override_outcome is not None:
                try:
                    wanted = Outcome(override_outcome)
                except ValueError as exc:
                    raise InputError("The outcome must be 'meets' or 'does-not-meet'.") from exc
                if wanted is not outcome:
                    if not text:
                        raise JustificationRequired(
                            "Overriding the computed verdict needs a written justification."
                        )
                    outcome = wanted
            conn.execute(
                compliance_assessments.update()
                .where(compliance_assessments.c.id == assessment_id)
                .values(
                    state="completed",
                    completed_at=iso(now),
                    rule=verdict.rule,
                    computed_outcome=verdict.outcome.value,
                    outcome=outcome.value,
                    shortfalls=[s.to_dict() for s in verdict.shortfalls],
                    override_justification=text[:MAX_TEXT]
                    if outcome is not verdict.outcome
                    else None,
                )
            )
            details = {
                "assessment": assessment_id,
                "rule": verdict.rule,
                "computed": verdict.outcome.value,
                "outcome": outcome.value,
                "shortfalls": len(verdict.shortfalls),
            }
            if outcome is not verdict.outcome:
                details["override_justification"] = text[:1000]
                audit.append(
                    conn,
                    actor=by.actor,
                    action="compliance.verdict.overridden",
                    subject=row.statement_id,
                    now=now,
                    details=details,
                )
            if row.ordinal == 1:
                new_state = advance(
                    StatementState(statement.state), StatementEvent.COMPLETE_ASSESSMENT, by.roles
                )
                self._set_state(conn, statement, new_state, by, now, "complete-assessment")
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.assessment.completed",
                subject=row.statement_id,
                now=now,
                details=details,
            )
            return _assessment_view(
                self._assessment_row(conn, assessment_id), self._results(conn, assessment_id)
            )

    # -- decisions ------------------------------------------------------------------

    def approve(
        self,
        by: Principal,
        statement_id: str,
        reason: str,
        *,
        valid_for_days: float | None = None,
    ) -> dict[str, Any]:
        """Approve an assessed statement: issue the certificate of compliance."""
        reason = _reason(reason)
        settings = self.settings
        validity = settings.certificate_validity_days
        if valid_for_days is not None:
            if not 0 < valid_for_days <= validity:
                raise InputError(
                    f"A certificate may be valid for at most {validity:g} days on this network."
                )
            validity = valid_for_days
        now = self.clock.now()
        certificate_id = crypto.random_id(12)

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            assessments = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.statement_id == statement_id,
                    compliance_assessments.c.state == "completed",
                )
            ).all()
            primary = next((a for a in assessments if a.ordinal == 1), None)
            assessors = sorted({a.assessor for a in assessments})
            check_separation(by.name, [*_organisation_people(row), *assessors], "approve")
            if primary is None or primary.outcome != Outcome.MEETS.value:
                shortfalls = primary.shortfalls if primary is not None else []
                raise VerdictNotMet(
                    "The assessment found the statement does not meet the Code of Connection "
                    f"({len(shortfalls or [])} shortfall(s)), and no assessor justified an "
                    "override; it cannot be approved.",
                    shortfalls=(shortfalls or [])[:50],
                )
            for old in conn.execute(
                sa.select(compliance_statements).where(
                    compliance_statements.c.organisation == row.organisation,
                    compliance_statements.c.state == StatementState.APPROVED.value,
                )
            ):
                superseded = system_advance(StatementState(old.state), StatementEvent.SUPERSEDE)
                conn.execute(
                    compliance_statements.update()
                    .where(compliance_statements.c.id == old.id)
                    .values(state=superseded.value, updated_at=iso(now))
                )
            expires = now + dt.timedelta(days=validity)
            conn.execute(
                compliance_certificates.insert().values(
                    id=certificate_id,
                    organisation=row.organisation,
                    statement_id=statement_id,
                    catalogue_version=row.catalogue_version,
                    decided_at=iso(now),
                    decided_by=by.name,
                    assessors=assessors,
                    expires_at=iso(expires),
                )
            )
            return {"decided_at": iso(now), "decided_by": by.name, "decision_reason": reason}

        self._step(
            by,
            statement_id,
            StatementEvent.APPROVE,
            check,
            details={"reason": reason, "certificate": certificate_id},
            publish=True,
        )
        return self.certificate(by, certificate_id)

    def reject(self, by: Principal, statement_id: str, reason: str) -> dict[str, Any]:
        reason = _reason(reason)
        now = self.clock.now()

        def check(conn: Connection, row: Any, catalogue: Catalogue) -> dict[str, Any]:
            assessors = [
                a.assessor
                for a in conn.execute(
                    sa.select(compliance_assessments.c.assessor).where(
                        compliance_assessments.c.statement_id == statement_id
                    )
                )
            ]
            check_separation(by.name, [*_organisation_people(row), *assessors], "reject")
            return {"decided_at": iso(now), "decided_by": by.name, "decision_reason": reason}

        return self._step(
            by, statement_id, StatementEvent.REJECT, check, details={"reason": reason}
        )

    def withdraw(self, by: Principal, organisation: str, reason: str) -> dict[str, Any]:
        """Withdraw an organisation's approval now: it leaves the next directory."""
        _require(by, Role.OPERATOR)
        reason = _reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            certificate = _latest_certificates(conn).get(organisation)
            if certificate is None or certificate.withdrawn_at is not None:
                raise NotFound(f"{organisation[:16]} has no certificate of compliance to withdraw.")
            statement = self._statement_row(conn, certificate.statement_id, lock=True)
            new_state = advance(StatementState(statement.state), StatementEvent.WITHDRAW, by.roles)
            conn.execute(
                compliance_certificates.update()
                .where(compliance_certificates.c.id == certificate.id)
                .values(withdrawn_at=iso(now), withdrawn_by=by.name, withdrawal_reason=reason)
            )
            self._set_state(conn, statement, new_state, by, now, "withdraw")
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.approval.withdrawn",
                subject=organisation,
                now=now,
                details={"certificate": certificate.id, "reason": reason},
            )
            self.central._publish(conn, now, reason=f"approval of {organisation} withdrawn")
        return self.certificate(by, certificate.id)

    def certificate(self, by: Principal, certificate_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_certificates).where(
                    compliance_certificates.c.id == certificate_id
                )
            ).first()
            if row is None:
                raise NotFound(f"There is no certificate {certificate_id[:40]!r}.")
            _require_reader(by, row.organisation)
            return _certificate_view(row)

    def standing_of(self, by: Principal, organisation: str) -> dict[str, Any]:
        _require_reader(by, organisation)
        with self.db.transaction() as conn:
            self._require_organisation(conn, organisation)
            report = standings(conn, self.clock.now(), self.settings)[organisation]
            certificate = _latest_certificates(conn).get(organisation)
        return {
            "organisation": organisation,
            **report.to_dict(),
            "certificate": _certificate_view(certificate) if certificate else None,
        }

    # -- extensions ----------------------------------------------------------------

    def request_extension(
        self, by: Principal, organisation: str, until: dt.datetime, reason: str
    ) -> dict[str, Any]:
        if not (by.has(Role.SECURITY_OFFICER) or by.has(Role.SIGN_OFF)):
            raise RoleRequired("Requesting an extension needs an organisation officer's role.")
        _require_member(by, organisation)
        reason = _reason(reason)
        now = self.clock.now()
        extension_id = crypto.random_id(12)
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            certificate = _latest_certificates(conn).get(organisation)
            current_expiry = (
                parse_iso(certificate.expires_at)
                if certificate is not None and certificate.withdrawn_at is None
                else None
            )
            try:
                check_extension_request(
                    until,
                    current_expiry=current_expiry,
                    now=now,
                    max_days=self.settings.max_extension_days,
                )
            except InputError as error:
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.extension.refused",
                    subject=organisation,
                    details={"requested_until": iso(until)},
                ) from None
            conn.execute(
                compliance_extensions.insert().values(
                    id=extension_id,
                    organisation=organisation,
                    state="requested",
                    reason=reason,
                    requested_until=iso(until),
                    requested_at=iso(now),
                    requested_by=by.name,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.extension.requested",
                subject=organisation,
                now=now,
                details={"extension": extension_id, "until": iso(until), "reason": reason},
            )
        return self.extension(by, extension_id)

    def decide_extension(
        self,
        by: Principal,
        extension_id: str,
        *,
        grant: bool,
        reason: str,
        until: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Grant (possibly for less time than asked) or refuse an extension."""
        _require(by, Role.OPERATOR)
        reason = _reason(reason)
        now = self.clock.now()
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_extensions)
                .where(compliance_extensions.c.id == extension_id)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"There is no extension request {extension_id[:40]!r}.")
            if row.state != "requested":
                raise StateTransitionRefused(f"This extension request is already {row.state}.")
            check_separation(by.name, [row.requested_by], "decide on")
            requested = parse_iso(row.requested_until)
            granted_until = None
            if grant:
                granted_until = until or requested
                if granted_until > requested or granted_until <= now:
                    raise InputError(
                        "An extension may be granted to a future date no later than the one asked."
                    )
            conn.execute(
                compliance_extensions.update()
                .where(compliance_extensions.c.id == extension_id)
                .values(
                    state="granted" if grant else "refused",
                    decided_at=iso(now),
                    decided_by=by.name,
                    decision_reason=reason,
                    granted_until=iso(granted_until) if granted_until else None,
                )
            )
            audit.append(
                conn,
                actor=by.actor,
                action="compliance.extension.granted" if grant else "compliance.extension.refused",
                subject=row.organisation,
                now=now,
                details={
                    "extension": extension_id,
                    "reason": reason,
                    "until": iso(granted_until) if granted_until else None,
                },
            )
            if grant:
                self.central._publish(conn, now, reason=f"extension for {row.organisation}")
        return self.extension(by, extension_id)

    def extension(self, by: Principal, extension_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = conn.execute(
                sa.select(compliance_extensions).where(compliance_extensions.c.id == extension_id)
            ).first()
        if row is None:
            raise NotFound(f"There is no extension request {extension_id[:40]!r}.")
        _require_reader(by, row.organisation)
        return _extension_view(row)

    def register(self, by: Principal) -> dict[str, Any]:
        """The register of extensions and exemptions: extensions, enrolment overrides, and
        assessment verdicts overridden with a justification."""
        _require_central(by)
        with self.db.transaction() as conn:
            extensions = [
                _extension_view(r)
                for r in conn.execute(
                    sa.select(compliance_extensions).order_by(compliance_extensions.c.requested_at)
                )
            ]
            overrides = [
                {
                    "organisation": r.organisation,
                    "enrolment": r.enrolment_id,
                    "operator": r.operator,
                    "reason": r.reason,
                    "at": r.created_at,
                }
                for r in conn.execute(
                    sa.select(compliance_overrides).order_by(compliance_overrides.c.id)
                )
            ]
            verdicts = [
                {
                    "statement": r.statement_id,
                    "organisation": r.organisation,
                    "assessor": r.assessor,
                    "computed": r.computed_outcome,
                    "outcome": r.outcome,
                    "justification": r.override_justification,
                    "at": r.completed_at,
                }
                for r in conn.execute(
                    sa.select(compliance_assessments, compliance_statements.c.organisation)
                    .join(
                        compliance_statements,
                        compliance_statements.c.id == compliance_assessments.c.statement_id,
                    )
                    .where(compliance_assessments.c.override_justification.is_not(None))
                )
            ]
        return {
            "extensions": extensions,
            "enrolment_overrides": overrides,
            "verdict_overrides": verdicts,
        }

    # -- reminders, lapses and reports ------------------------------------------------

    def sweep(self) -> dict[str, Any]:
        """Record due reminders and lapses; republish the directory if anyone lapsed.

        Idempotent: each reminder and each lapse is recorded once (a unique
        key), so running it twice, or on two replicas, changes nothing more.
        """
        now = self.clock.now()
        settings = self.settings
        reminders: list[dict[str, Any]] = []
        lapsed: list[str] = []
        with self.db.transaction() as conn:
            current = standings(conn, now, settings)
            latest = _latest_certificates(conn)
            for code, certificate in sorted(latest.items()):
                if certificate.withdrawn_at is not None:
                    continue
                expires = parse_iso(certificate.expires_at)
                sent = {
                    r.days
                    for r in conn.execute(
                        sa.select(compliance_notifications.c.days).where(
                            compliance_notifications.c.subject == certificate.id,
                            compliance_notifications.c.kind == "expiry-reminder",
                        )
                    )
                }
                decision = due_reminder(expires, now, sent)
                for days in decision.skip:
                    self._notify(
                        conn, code, "expiry-reminder", certificate.id, days, now, "", False
                    )
                if decision.send is not None:
                    message = (
                        f"The certificate of compliance of {code} expires on "
                        f"{expires.date().isoformat()} (in under {decision.send} day"
                        f"{'s' if decision.send != 1 else ''}); start the renewal statement now."
                    )
                    self._notify(
                        conn, code, "expiry-reminder", certificate.id, decision.send, now, message
                    )
                    reminders.append({"organisation": code, "days": decision.send})
                if (
                    current[code].standing is Standing.LAPSED
                    and not conn.execute(
                        sa.select(compliance_notifications.c.id).where(
                            compliance_notifications.c.subject == certificate.id,
                            compliance_notifications.c.kind == "lapsed",
                        )
                    ).first()
                ):
                    message = (
                        f"The approval of {code} lapsed (expired {expires.date().isoformat()}, "
                        "grace period over); it has left the directory until approved again."
                    )
                    self._notify(conn, code, "lapsed", certificate.id, 0, now, message)
                    lapsed.append(code)
            if lapsed:
                self.central._publish(conn, now, reason=f"approval lapsed: {', '.join(lapsed)}")
        return {"reminders": reminders, "lapsed": lapsed}

    def _notify(
        self,
        conn: Connection,
        organisation: str,
        kind: str,
        subject: str,
        days: int,
        now: dt.datetime,
        message: str,
        sent: bool = True,
    ) -> None:
        conn.execute(
            compliance_notifications.insert().values(
                organisation=organisation,
                kind=kind,
                subject=subject,
                days=days,
                created_at=iso(now),
                sent=sent,
                message=message,
            )
        )
        if sent:
            audit.append(
                conn,
                actor="central",
                action=f"compliance.{kind}",
                subject=organisation,
                now=now,
                details={"certificate": subject, "days": days, "message": message},
            )

    def notifications(self, by: Principal, organisation: str | None = None) -> list[dict[str, Any]]:
        if by.organisation is not None:
            organisation = by.organisation
        query = (
            sa.select(compliance_notifications)
            .where(compliance_notifications.c.sent.is_(True))
            .order_by(compliance_notifications.c.id)
        )
        if organisation:
            query = query.where(compliance_notifications.c.organisation == organisation)
        with self.db.transaction() as conn:
            return [
                {
                    "organisation": r.organisation,
                    "kind": r.kind,
                    "days": r.days,
                    "at": r.created_at,
                    "message": r.message,
                }
                for r in conn.execute(query)
            ]

    def network_report(self, by: Principal) -> list[dict[str, Any]]:
        """One row per organisation: standing, certificate, extension, open statement, overrides."""
        _require_central(by)
        now = self.clock.now()
        with self.db.transaction() as conn:
            current = standings(conn, now, self.settings)
            latest = _latest_certificates(conn)
            granted = _granted_extensions(conn)
            open_rows = {
                r.organisation: r
                for r in conn.execute(
                    sa.select(compliance_statements)
                    .where(compliance_statements.c.state.in_([s.value for s in OPEN]))
                    .order_by(compliance_statements.c.created_at)
                )
            }
            override_counts: dict[str, int] = {}
            for r in conn.execute(sa.select(compliance_overrides.c.organisation)):
                override_counts[r.organisation] = override_counts.get(r.organisation, 0) + 1
            selfchecks = {
                r.organisation: r.received_at
                for r in conn.execute(
                    sa.select(compliance_selfchecks).order_by(compliance_selfchecks.c.received_at)
                )
            }
            rows = []
            for org in conn.execute(sa.select(organisations).order_by(organisations.c.code)):
                report = current[org.code]
                certificate = latest.get(org.code)
                statement = open_rows.get(org.code)
                extension = max(granted.get(org.code, []), default=None)
                rows.append(
                    {
                        "organisation": org.code,
                        "name": org.name,
                        "type": org.type,
                        "standing": report.standing.value,
                        "standing_until": iso(report.until) if report.until else None,
                        "certificate_expires_at": certificate.expires_at if certificate else None,
                        "extension_until": iso(extension) if extension else None,
                        "open_statement": statement.id if statement else None,
                        "open_statement_state": statement.state if statement else None,
                        "overrides": override_counts.get(org.code, 0),
                        "last_selfcheck_at": selfchecks.get(org.code),
                    }
                )
        return rows

    def dashboard(self, by: Principal) -> dict[str, Any]:
        """Counts across the network, for the operator's dashboard."""
        rows = self.network_report(by)
        by_standing = {s.value: 0 for s in Standing}
        for row in rows:
            by_standing[row["standing"]] += 1
        pending_states = {"draft", "awaiting-sign-off", "changes-requested", "submitted"}
        with self.db.transaction() as conn:
            overrides = [
                {
                    "organisation": r.organisation,
                    "enrolment": r.enrolment_id,
                    "operator": r.operator,
                    "reason": r.reason,
                    "at": r.created_at,
                }
                for r in conn.execute(
                    sa.select(compliance_overrides).order_by(compliance_overrides.c.id)
                )
            ]
        return {
            "organisations": len(rows),
            "approved": by_standing[Standing.APPROVED.value],
            "extended": by_standing[Standing.EXTENDED.value],
            "in_grace": by_standing[Standing.GRACE.value],
            "lapsed": by_standing[Standing.LAPSED.value],
            "withdrawn": by_standing[Standing.WITHDRAWN.value],
            "never_approved": by_standing[Standing.NONE.value],
            "pending": sum(1 for r in rows if r["open_statement_state"] in pending_states),
            "under_assessment": sum(
                1 for r in rows if r["open_statement_state"] in ("under-assessment", "assessed")
            ),
            "manual_overrides": len(overrides),
            "overrides": overrides,
        }

    def consistency(self, by: Principal) -> dict[str, Any]:
        """Agreement between first and second assessors of the same statements."""
        _require_central(by)
        with self.db.transaction() as conn:
            completed = conn.execute(
                sa.select(compliance_assessments).where(
                    compliance_assessments.c.state == "completed"
                )
            ).all()
            by_statement: dict[str, dict[int, str]] = {}
            for a in completed:
                by_statement.setdefault(a.statement_id, {})[a.ordinal] = a.id
            pairs = []
            for statement_id, ids in sorted(by_statement.items()):
                if 1 not in ids or 2 not in ids:
                    continue
                first = self._results(conn, ids[1])
                second = self._results(conn, ids[2])
                pairs += [
                    PairedResult(statement_id, c, first[c]["result"], second[c]["result"])
                    for c in sorted(set(first) & set(second))
                ]
        return consistency_report(pairs)

    def export_statement(self, by: Principal, statement_id: str, fmt: str) -> tuple[str, bytes]:
        view = self.statement(by, statement_id)
        if fmt == "csv":
            return "text/csv", exports.statement_csv(view)
        if fmt == "json":
            return "application/json", exports.statement_json(view)
        if fmt == "oscal":
            if not any(a["state"] == "completed" for a in view["assessments"]):
                raise StateTransitionRefused(
                    "OSCAL assessment results need at least one completed assessment."
                )
            document = exports.statement_oscal(view, now=iso(self.clock.now()))
            return "application/json", exports.statement_json(document)
        raise InputError("The export format must be csv, json or oscal.")

    def export_network(self, by: Principal, fmt: str) -> tuple[str, bytes]:
        rows = self.network_report(by)
        if fmt == "csv":
            return "text/csv", exports.network_csv(rows)
        if fmt == "json":
            return "application/json", exports.network_json(rows)
        raise InputError("The export format must be csv or json.")

    # -- gateway self-check reports -------------------------------------------------

    def submit_selfcheck(self, document: bytes) -> dict[str, Any]:
        """Verify a gateway's signed self-check report and attach it as evidence.

        The signature must verify against the signing key central holds for
        the organisation named in the report (the key its active enrolment
        registered, which is the key the directory lists). A report that does
        not verify is refused and the refusal audited; nothing is stored.
        """
        now = self.clock.now()
        claimed = _claimed_organisation(document)
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            self._ensure_builtin(conn, now)
            key = self._organisation_key(conn, claimed)
            try:
                if key is None:
                    raise SelfCheckSignatureInvalid()
                payload = crypto.verify_document(
                    document, SELFCHECK_TYPE, {crypto.key_id(key): key}
                )
            except CryptoError:
                raise audit.AuditedRefusal(
                    SelfCheckSignatureInvalid(),
                    actor=f"organisation:{claimed[:16]}",
                    action="compliance.selfcheck.refused",
                    subject=claimed[:16] or "unknown",
                ) from None
            report = parse_report(payload)
            if report.organisation != claimed:
                raise SelfCheckSignatureInvalid()
            digest = crypto.sha256_hex(document)
            self.blobs.put(f"evidence/{digest}", document)
            evidence_id = crypto.random_id(12)
            report_id = crypto.random_id(12)
            conn.execute(
                compliance_evidence.insert().values(
                    id=evidence_id,
                    organisation=report.organisation,
                    kind="selfcheck",
                    filename=f"selfcheck-{report.gateway}-{report.generated_at:%Y%m%dT%H%M%SZ}.json",
                    media_type=SELFCHECK_MEDIA_TYPE,
                    size=len(document),
                    sha256=digest,
                    expires_at=iso(now + dt.timedelta(days=31)),
                    uploaded_at=iso(now),
                    uploaded_by=f"gateway:{report.gateway}",
                )
            )
            summary = report.summary()
            conn.execute(
                compliance_selfchecks.insert().values(
                    id=report_id,
                    organisation=report.organisation,
                    gateway=report.gateway,
                    generated_at=iso(report.generated_at),
                    received_at=iso(now),
                    summary=summary,
                    evidence_id=evidence_id,
                )
            )
            attached: dict[str, list[str]] = {}
            open_row = conn.execute(
                sa.select(compliance_statements).where(
                    compliance_statements.c.organisation == report.organisation,
                    compliance_statements.c.state.in_([s.value for s in EDITABLE]),
                )
            ).first()
            if open_row is not None:
                catalogue = self._catalogue(conn, open_row.catalogue_version)
                attached[open_row.id] = self._link_selfcheck(
                    conn, open_row.id, evidence_id, catalogue, report.check_ids()
                )
            audit.append(
                conn,
                actor=f"gateway:{report.gateway}",
                action="compliance.selfcheck.received",
                subject=report.organisation,
                now=now,
                details={
                    "report": report_id,
                    "sha256": digest,
                    "failed": summary["failed"],
                    "attached": attached,
                },
            )
        return {
            "id": report_id,
            "evidence": evidence_id,
            "organisation": report.organisation,
            "summary": summary,
            "attached": attached,
        }

    def _organisation_key(self, conn: Connection, code: str) -> crypto.VerifyKey | None:
        for row in conn.execute(
            sa.select(enrolments.c.organisations, enrolments.c.organisation_keys).where(
                enrolments.c.state == EnrolmentState.ACTIVE.value
            )
        ):
            if code in row.organisations:
                try:
                    return crypto.VerifyKey.from_b64(row.organisation_keys[code]["signing_key"])
                except (KeyError, TypeError, CryptoError):
                    return None
        return None

    def _link_selfcheck(
        self,
        conn: Connection,
        statement_id: str,
        evidence_id: str,
        catalogue: Catalogue,
        checks: Iterable[str],
    ) -> list[str]:
        controls = sorted({c for check in checks for c in catalogue.controls_for_self_check(check)})
        for control_id in controls:
            conn.execute(
                compliance_evidence_links.insert().values(
                    statement_id=statement_id, control_id=control_id, evidence_id=evidence_id
                )
            )
        return controls

    def _link_latest_selfcheck(
        self,
        conn: Connection,
        organisation: str,
        statement_id: str,
        catalogue: Catalogue,
        now: dt.datetime,
    ) -> None:
        row = conn.execute(
            sa.select(compliance_selfchecks, compliance_evidence.c.expires_at)
            .join(
                compliance_evidence, compliance_evidence.c.id == compliance_selfchecks.c.evidence_id
            )
            .where(compliance_selfchecks.c.organisation == organisation)
            .order_by(compliance_selfchecks.c.received_at.desc())
            .limit(1)
        ).first()
        if row is None or parse_iso(row.expires_at) <= now:
            return
        already = {
            (r.control_id)
            for r in conn.execute(
                sa.select(compliance_evidence_links.c.control_id).where(
                    compliance_evidence_links.c.statement_id == statement_id,
                    compliance_evidence_links.c.evidence_id == row.evidence_id,
                )
            )
        }
        checks = [c["id"] for c in row.summary.get("checks", [])]
        controls = {c for check in checks for c in catalogue.controls_for_self_check(check)}
        for control_id in sorted(controls - already):
            conn.execute(
                compliance_evidence_links.insert().values(
                    statement_id=statement_id, control_id=control_id, evidence_id=row.evidence_id
                )
            )

    # -- internals -------------------------------------------------------------------

    def _step(
        self,
        by: Principal,
        statement_id: str,
        event: StatementEvent,
        check: Any,
        *,
        details: dict[str, Any] | None = None,
        publish: bool = False,
    ) -> dict[str, Any]:
        """Take one step of the table: role, state, the step's own checks, audit, in one go."""
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = self._statement_row(conn, statement_id, lock=True)
            try:
                if by.organisation is not None:
                    _require_member(by, row.organisation)
                new_state = advance(StatementState(row.state), event, by.roles)
                catalogue = self._catalogue(conn, row.catalogue_version)
                extra = check(conn, row, catalogue)
            except GcxError as error:
                # Refused steps (wrong role, wrong state, one's own work, a verdict
                # that does not allow approval) are audited; nothing else is kept.
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.step.refused",
                    subject=statement_id,
                    details={"step": event.value},
                ) from None
            self._set_state(conn, row, new_state, by, now, event.value, extra)
            audit.append(
                conn,
                actor=by.actor,
                action=f"compliance.statement.{event.value}",
                subject=statement_id,
                now=now,
                details={
                    "organisation": row.organisation,
                    "from": row.state,
                    "to": new_state.value,
                    **(details or {}),
                },
            )
            if publish:
                self.central._publish(
                    conn, now, reason=f"Code of Connection {event.value} for {row.organisation}"
                )
            return self._statement_view(conn, self._statement_row(conn, statement_id))

    def _set_state(
        self,
        conn: Connection,
        row: Any,
        state: StatementState,
        by: Principal,
        now: dt.datetime,
        step: str,
        extra: dict[str, Any] | None = None,
    ) -> None:
        history = [*row.history, _history(now, by, step, state)]
        conn.execute(
            compliance_statements.update()
            .where(compliance_statements.c.id == row.id)
            .values(state=state.value, updated_at=iso(now), history=history, **(extra or {}))
        )

    def _touch(self, conn: Connection, row: Any, by: Principal, now: dt.datetime) -> None:
        contributors = sorted({*row.contributors, by.name})
        conn.execute(
            compliance_statements.update()
            .where(compliance_statements.c.id == row.id)
            .values(updated_at=iso(now), contributors=contributors)
        )

    def _require_editable(self, row: Any) -> None:
        if StatementState(row.state) not in EDITABLE:
            raise StateTransitionRefused(
                f"The statement is {row.state}; answers and evidence can change only while it "
                "is a draft or has changes requested."
            )

    def _require_own_open_assessment(self, row: Any, by: Principal) -> None:
        if row.assessor != by.name:
            raise Forbidden("Only the assessor who opened this assessment may record it.")
        if row.state != "open":
            raise StateTransitionRefused(f"This assessment is {row.state}, not open.")

    def _require_organisation(self, conn: Connection, code: str) -> None:
        check_organisation_code(code)
        if not conn.execute(
            sa.select(organisations.c.code).where(organisations.c.code == code)
        ).first():
            raise NotFound(f"{code} is not in the member registry.")

    def _statement_row(self, conn: Connection, statement_id: str, *, lock: bool = False) -> Any:
        query = sa.select(compliance_statements).where(compliance_statements.c.id == statement_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no statement {statement_id[:40]!r}.")
        return row

    def _assessment_row(self, conn: Connection, assessment_id: str, *, lock: bool = False) -> Any:
        query = sa.select(compliance_assessments).where(
            compliance_assessments.c.id == assessment_id
        )
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"There is no assessment {assessment_id[:40]!r}.")
        return row

    def _primary(self, conn: Connection, statement_id: str) -> Any:
        return conn.execute(
            sa.select(compliance_assessments).where(
                compliance_assessments.c.statement_id == statement_id,
                compliance_assessments.c.ordinal == 1,
                compliance_assessments.c.state != "returned",
            )
        ).first()

    def _answers(self, conn: Connection, statement_id: str) -> dict[str, dict[str, Any]]:
        return {
            r.control_id: {
                "choice": r.choice,
                "answer": r.answer,
                "plan": r.plan,
                "plan_target": r.plan_target,
                "needs_reconfirmation": bool(r.needs_reconfirmation),
                "updated_at": r.updated_at,
                "updated_by": r.updated_by,
            }
            for r in conn.execute(
                sa.select(compliance_answers).where(
                    compliance_answers.c.statement_id == statement_id
                )
            )
        }

    def _results(self, conn: Connection, assessment_id: str) -> dict[str, dict[str, Any]]:
        return {
            r.control_id: {"result": r.result, "reason": r.reason, "recorded_at": r.recorded_at}
            for r in conn.execute(
                sa.select(compliance_results).where(
                    compliance_results.c.assessment_id == assessment_id
                )
            )
        }

    def _statement_view(self, conn: Connection, row: Any) -> dict[str, Any]:
        catalogue = self._catalogue(conn, row.catalogue_version)
        answers = self._answers(conn, row.id)
        links: dict[str, list[str]] = {}
        for link in conn.execute(
            sa.select(compliance_evidence_links).where(
                compliance_evidence_links.c.statement_id == row.id
            )
        ):
            links.setdefault(link.evidence_id, []).append(link.control_id)
        evidence = [
            {
                "id": e.id,
                "kind": e.kind,
                "filename": e.filename,
                "media_type": e.media_type,
                "size": e.size,
                "sha256": e.sha256,
                "expires_at": e.expires_at,
                "uploaded_at": e.uploaded_at,
                "uploaded_by": e.uploaded_by,
                "controls": sorted(links[e.id]),
            }
            for e in conn.execute(
                sa.select(compliance_evidence)
                .where(compliance_evidence.c.id.in_(list(links)))
                .order_by(compliance_evidence.c.uploaded_at)
            )
        ]
        assessments = [
            _assessment_view(a, self._results(conn, a.id))
            for a in conn.execute(
                sa.select(compliance_assessments)
                .where(compliance_assessments.c.statement_id == row.id)
                .order_by(compliance_assessments.c.started_at, compliance_assessments.c.ordinal)
            )
        ]
        controls = []
        for control in catalogue.controls:
            entry = control.to_dict()
            answer = answers.get(control.id)
            if answer and answer["choice"] and control.choices:
                result = control.choices.result_for(answer["choice"])
                entry["scripted_result"] = result.value if result else None
            controls.append(entry)
        return {
            **_statement_summary(row),
            "contributors": list(row.contributors),
            "history": list(row.history),
            "controls": controls,
            "answers": answers,
            "evidence": evidence,
            "assessments": assessments,
            "progress": {
                "controls": len(catalogue.controls),
                "answered": len(answers),
                "to_reconfirm": sum(1 for a in answers.values() if a["needs_reconfirmation"]),
            },
        }


# -- small helpers ------------------------------------------------------------------


def _require(by: Principal, role: Role) -> None:
    if not by.has(role):
        raise RoleRequired(f"This step needs the {role.value} role.", role=role.value)


def _require_central(by: Principal) -> None:
    if by.organisation is not None or not (by.has(Role.OPERATOR) or by.has(Role.ASSESSOR)):
        raise RoleRequired("This needs an operator or assessor.", role="operator")


def _require_member(by: Principal, organisation: str) -> None:
    if by.organisation != organisation:
        raise Forbidden(f"You do not act for {organisation[:16]}.")


def _require_reader(by: Principal, organisation: str) -> None:
    if by.organisation is None and (by.has(Role.OPERATOR) or by.has(Role.ASSESSOR)):
        return
    if by.organisation != organisation:
        raise Forbidden(f"You may only see {by.organisation or 'nothing'}'s compliance records.")


def _organisation_people(row: Any) -> list[str | None]:
    return [*row.contributors, row.created_by, row.sign_off_requested_by, row.signed_off_by]


def _reason(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise JustificationRequired("A written reason is required; it is kept in the audit log.")
    if len(text) > MAX_TEXT:
        raise InputError(f"The text must be at most {MAX_TEXT:,} characters.")
    return text


def _parse_date(text: str, field_name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{field_name} must be a date as YYYY-MM-DD.") from exc


def _history(now: dt.datetime, by: Principal, step: str, state: StatementState) -> dict[str, str]:
    return {"at": iso(now), "by": by.actor, "step": step, "state": state.value}


def _claimed_organisation(document: bytes) -> str:
    """The organisation a self-check report names (unverified; only to pick the key)."""
    import base64
    import json

    try:
        envelope = json.loads(document)
        body = json.loads(base64.b64decode(envelope["payload"], validate=True))
        return str(body["organisation"])[:16]
    except (ValueError, KeyError, TypeError) as exc:
        raise SelfCheckSignatureInvalid("The self-check report is not a signed report.") from exc


def _statement_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "organisation": row.organisation,
        "catalogue_version": row.catalogue_version,
        "state": row.state,
        "renewal_of": row.renewal_of,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
        "sign_off_requested_by": row.sign_off_requested_by,
        "signed_off_by": row.signed_off_by,
        "signed_off_at": row.signed_off_at,
        "submitted_at": row.submitted_at,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
    }


def _assessment_view(row: Any, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "statement": row.statement_id,
        "ordinal": row.ordinal,
        "assessor": row.assessor,
        "state": row.state,
        "started_at": row.started_at,
        "completed_at": row.completed_at,
        "rule": row.rule,
        "computed_outcome": row.computed_outcome,
        "outcome": row.outcome,
        "shortfalls": row.shortfalls or [],
        "override_justification": row.override_justification,
        "change_requests": row.change_requests or [],
        "results": results,
    }


def _certificate_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "organisation": row.organisation,
        "statement": row.statement_id,
        "catalogue_version": row.catalogue_version,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "assessors": list(row.assessors),
        "expires_at": row.expires_at,
        "withdrawn_at": row.withdrawn_at,
        "withdrawn_by": row.withdrawn_by,
        "withdrawal_reason": row.withdrawal_reason,
    }


def _extension_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "organisation": row.organisation,
        "state": row.state,
        "reason": row.reason,
        "requested_until": row.requested_until,
        "requested_at": row.requested_at,
        "requested_by": row.requested_by,
        "decided_at": row.decided_at,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
        "granted_until": row.granted_until,
    }
