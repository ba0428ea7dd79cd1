"""Rows of the Code of Connection tables as the dictionaries the API and CLI show."""

from __future__ import annotations

from typing import Any


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
