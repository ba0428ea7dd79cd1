"""The Code of Connection service: every group of use cases, combined into one class."""

from __future__ import annotations

from gcx.central.compliance._accounts import AccountUseCases
from gcx.central.compliance._answers import AnswerUseCases
from gcx.central.compliance._assessment import AssessmentUseCases
from gcx.central.compliance._catalogues import CatalogueUseCases
from gcx.central.compliance._decisions import DecisionUseCases
from gcx.central.compliance._reports import ReportUseCases
from gcx.central.compliance._selfcheck import SelfCheckUseCases
from gcx.central.compliance._statements import StatementUseCases


class ComplianceService(
    AccountUseCases,
    CatalogueUseCases,
    StatementUseCases,
    AnswerUseCases,
    AssessmentUseCases,
    DecisionUseCases,
    ReportUseCases,
    SelfCheckUseCases,
):
    """Central's Code of Connection use cases, for the API and the CLI.

    Each base holds one group of use cases and builds only on
    :class:`~gcx.central.compliance._core.ComplianceCore`, which they share.
    """
