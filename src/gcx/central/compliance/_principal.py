"""Who is acting (:class:`Principal`) and the role and membership checks every use case makes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gcx.compliance.statement import Role
from gcx.errors import Forbidden, RoleRequired


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


def require_role(by: Principal, role: Role) -> None:
    if not by.has(role):
        raise RoleRequired(f"This step needs the {role.value} role.", role=role.value)


def require_officer(by: Principal) -> None:
    """An organisation officer: a security officer or a sign-off officer."""
    if not (by.has(Role.SECURITY_OFFICER) or by.has(Role.SIGN_OFF)):
        raise RoleRequired("Requesting an extension needs an organisation officer's role.")


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
