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
  directory is built, so a lapse needs no job to take effect;
  :meth:`ComplianceService.sweep` only records notifications and republishes
  promptly.
* Steps that can bring an organisation into or out of the directory
  (approval, withdrawal, extension granted, lapse seen by a sweep) publish a
  new directory version in the same transaction.

Settings come from ``compliance.toml`` in central's home, if present
(:class:`._settings.ComplianceSettings`); every one has a safe default.

Layout: :mod:`._standing` holds the hooks central's enrolment and directory
code call (:func:`excluded_organisations`, :func:`require_compliance`);
:class:`ComplianceService` (:mod:`._service`) builds one plain class per group
of use cases (:mod:`._accounts`, :mod:`._catalogues`, :mod:`._statements`,
:mod:`._answers`, :mod:`._assessment`, :mod:`._decisions`, :mod:`._reports`,
:mod:`._selfcheck`), each given what it uses; they share the statement table
(:mod:`._steps`) and the row functions in :mod:`._records`, not a base class.
Central itself is reached only through :class:`gcx.central.ports.CentralParts`.
"""

from __future__ import annotations

from gcx.central.compliance._principal import Principal, require_officer, require_role
from gcx.central.compliance._service import ComplianceService
from gcx.central.compliance._standing import excluded_organisations, require_compliance

__all__ = [
    "ComplianceService",
    "Principal",
    "excluded_organisations",
    "require_compliance",
    "require_officer",
    "require_role",
]
