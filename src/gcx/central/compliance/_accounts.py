"""Who is calling: authenticating tokens, and the compliance accounts operators issue."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.central.compliance._principal import Principal, require_role
from gcx.central.compliance._records import require_organisation
from gcx.central.compliance._settings import ACCOUNT_TOKEN_PREFIX
from gcx.central.ports import OperatorAuthenticator
from gcx.clock import Clock
from gcx.compliance.statement import CENTRAL_ROLES, ORGANISATION_ROLES, Role
from gcx.errors import DuplicateEnrolment, InputError, NotFound, TokenInvalid
from gcx.protocol.identifiers import check_account_name
from gcx.store import Database, iso
from gcx.store.schema_compliance import compliance_accounts
from gcx.store.tokens import live_token_row


class Accounts:
    """Authentication and compliance accounts.

    Operators' ``gcxo_`` tokens are checked by central's operators; every other
    token is a compliance account's.
    """

    def __init__(self, database: Database, clock: Clock, operators: OperatorAuthenticator) -> None:
        self.db = database
        self.clock = clock
        self.operators = operators

    def authenticate(self, token: str | None, *, request: str) -> Principal:
        if token and token.startswith("gcxo_"):
            name = self.operators.authenticate_operator(token, request=request)
            return Principal(name, "operator", frozenset({Role.OPERATOR.value}))
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = live_token_row(conn, compliance_accounts, token)
            if row is None:
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
        require_role(by, Role.OPERATOR)
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
                require_organisation(conn, organisation)
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
        require_role(by, Role.OPERATOR)
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
        require_role(by, Role.OPERATOR)
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
