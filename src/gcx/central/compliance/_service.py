"""The Code of Connection service: one object per group of use cases, wired together.

Each group is a plain class given what it uses in its constructor: the
database, the clock, the catalogues, the statement table (:class:`StatementSteps`),
central's directory publisher, the settings. :class:`ComplianceService` builds
them once and offers their use cases under the names the API, the web pages and
the tests call, so a caller needs one object and no one class borrows another's
attributes.
"""

from __future__ import annotations

from gcx.central.compliance._accounts import Accounts
from gcx.central.compliance._answers import Answers
from gcx.central.compliance._assessment import Assessments
from gcx.central.compliance._catalogues import Catalogues
from gcx.central.compliance._decisions import Decisions
from gcx.central.compliance._reports import Reports
from gcx.central.compliance._selfcheck import SelfChecks
from gcx.central.compliance._settings import ComplianceSettings
from gcx.central.compliance._statements import Statements
from gcx.central.compliance._steps import StatementSteps
from gcx.central.ports import CentralParts
from gcx.store.blobs import BlobStore, FileBlobStore


class ComplianceService:
    """Central's Code of Connection use cases, for the API, the web pages and the CLI."""

    def __init__(
        self,
        central: CentralParts,
        blobs: BlobStore | None = None,
        settings: ComplianceSettings | None = None,
    ) -> None:
        self._home = central.config.home
        self._settings = settings
        db, clock = central.db, central.clock
        self.db = db
        self.clock = clock
        self.blobs = blobs or FileBlobStore(self._home / "evidence")
        self.catalogues = Catalogues(db, clock)
        self.steps = StatementSteps(db, clock, self.catalogues, central)
        self.accounts = Accounts(db, clock, central)
        self.statements = Statements(db, clock, self.catalogues, self.steps)
        self.answers = Answers(db, clock, self.catalogues, self.blobs, self._current_settings)
        self.assessments = Assessments(db, clock, self.catalogues, self.steps)
        self.decisions = Decisions(db, clock, self.steps, central, self._current_settings)
        self.reports = Reports(db, clock, central, self._current_settings)
        self.selfchecks = SelfChecks(db, clock, self.catalogues, self.blobs)

        # The use cases by the names callers know.
        self.authenticate = self.accounts.authenticate
        self.add_account = self.accounts.add_account
        self.revoke_account = self.accounts.revoke_account
        self.list_accounts = self.accounts.list_accounts

        self.current_catalogue = self.catalogues.current_catalogue
        self.catalogue = self.catalogues.catalogue
        self.list_catalogues = self.catalogues.list_catalogues
        self.publish_catalogue = self.catalogues.publish_catalogue

        self.create_statement = self.statements.create_statement
        self.statement = self.statements.statement
        self.list_statements = self.statements.list_statements
        self.export_statement = self.statements.export_statement
        self.request_sign_off = self.statements.request_sign_off
        self.decline_sign_off = self.statements.decline_sign_off
        self.sign_off = self.statements.sign_off
        self.abandon = self.statements.abandon

        self.answer = self.answers.answer
        self.reconfirm_unchanged = self.answers.reconfirm_unchanged
        self.add_evidence = self.answers.add_evidence
        self.evidence_content = self.answers.evidence_content

        self.start_assessment = self.assessments.start_assessment
        self.start_second_assessment = self.assessments.start_second_assessment
        self.assessment = self.assessments.assessment
        self.record_result = self.assessments.record_result
        self.return_for_changes = self.assessments.return_for_changes
        self.complete_assessment = self.assessments.complete_assessment

        self.approve = self.decisions.approve
        self.reject = self.decisions.reject
        self.withdraw = self.decisions.withdraw
        self.certificate = self.decisions.certificate
        self.standing_of = self.decisions.standing_of
        self.request_extension = self.decisions.request_extension
        self.decide_extension = self.decisions.decide_extension
        self.extension = self.decisions.extension
        self.register = self.decisions.register

        self.sweep = self.reports.sweep
        self.notifications = self.reports.notifications
        self.network_report = self.reports.network_report
        self.dashboard = self.reports.dashboard
        self.consistency = self.reports.consistency
        self.export_network = self.reports.export_network

        self.submit_selfcheck = self.selfchecks.submit_selfcheck

    @property
    def settings(self) -> ComplianceSettings:
        """The settings given, or ``compliance.toml`` as it reads now (edits apply at once)."""
        return self._current_settings()

    def _current_settings(self) -> ComplianceSettings:
        return self._settings or ComplianceSettings.load(self._home)
