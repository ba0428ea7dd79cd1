"""Central's Code of Connection tables (migration 0003), on the one shared ``metadata``.

Instants are ISO 8601 text in UTC, as everywhere in gcx. Evidence content is
kept in the blob store under its SHA-256; only its facts live here.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

compliance_catalogues = sa.Table(
    "compliance_catalogues",
    metadata,
    # Every catalogue version ever published; exactly one is current. Old
    # versions stay, because open statements keep the version they started on.
    sa.Column("version", sa.String(40), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("published_at", sa.String(40), nullable=False),
    sa.Column("published_by", sa.String(100), nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
)

compliance_accounts = sa.Table(
    "compliance_accounts",
    metadata,
    # People in the workflow: assessors (central staff, no organisation) and an
    # organisation's security officers and sign-off officers. Names share one
    # namespace with central's operators, so separation of duties can compare them.
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("organisation", sa.String(16)),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)

compliance_statements = sa.Table(
    "compliance_statements",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("catalogue_version", sa.String(40), nullable=False),
    sa.Column("state", sa.String(24), nullable=False, index=True),
    sa.Column("renewal_of", sa.String(32)),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    # Everyone who wrote an answer or attached evidence: none of them may sign off.
    sa.Column("contributors", sa.JSON, nullable=False),
    sa.Column("sign_off_requested_by", sa.String(64)),
    sa.Column("signed_off_by", sa.String(64)),
    sa.Column("signed_off_at", sa.String(40)),
    sa.Column("submitted_at", sa.String(40)),
    sa.Column("decided_at", sa.String(40)),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("history", sa.JSON, nullable=False),
)

compliance_answers = sa.Table(
    "compliance_answers",
    metadata,
    sa.Column("statement_id", sa.String(32), primary_key=True),
    sa.Column("control_id", sa.String(16), primary_key=True),
    sa.Column("choice", sa.String(40)),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("plan", sa.Text),
    sa.Column("plan_target", sa.String(10)),
    sa.Column("needs_reconfirmation", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("updated_by", sa.String(64), nullable=False),
)

compliance_evidence = sa.Table(
    "compliance_evidence",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("media_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("uploaded_at", sa.String(40), nullable=False),
    sa.Column("uploaded_by", sa.String(100), nullable=False),
)

compliance_evidence_links = sa.Table(
    "compliance_evidence_links",
    metadata,
    sa.Column("statement_id", sa.String(32), primary_key=True),
    sa.Column("control_id", sa.String(16), primary_key=True),
    sa.Column("evidence_id", sa.String(32), primary_key=True),
)

compliance_assessments = sa.Table(
    "compliance_assessments",
    metadata,
    # ordinal 1 is the assessment of record; 2 is a second, consistency-only one.
    # A statement sent back for changes keeps its returned assessments as history.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("statement_id", sa.String(32), nullable=False, index=True),
    sa.Column("ordinal", sa.Integer, nullable=False),
    sa.Column("assessor", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),
    sa.Column("completed_at", sa.String(40)),
    sa.Column("rule", sa.String(40)),
    sa.Column("computed_outcome", sa.String(24)),
    sa.Column("outcome", sa.String(24)),
    sa.Column("shortfalls", sa.JSON),
    sa.Column("override_justification", sa.Text),
    sa.Column("change_requests", sa.JSON, nullable=False),
)

compliance_results = sa.Table(
    "compliance_results",
    metadata,
    sa.Column("assessment_id", sa.String(32), primary_key=True),
    sa.Column("control_id", sa.String(16), primary_key=True),
    sa.Column("result", sa.String(24), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
)

compliance_certificates = sa.Table(
    "compliance_certificates",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("statement_id", sa.String(32), nullable=False),
    sa.Column("catalogue_version", sa.String(40), nullable=False),
    sa.Column("decided_at", sa.String(40), nullable=False),
    sa.Column("decided_by", sa.String(100), nullable=False),
    sa.Column("assessors", sa.JSON, nullable=False),
    sa.Column("expires_at", sa.String(40), nullable=False),
    sa.Column("withdrawn_at", sa.String(40)),
    sa.Column("withdrawn_by", sa.String(100)),
    sa.Column("withdrawal_reason", sa.Text),
)

compliance_extensions = sa.Table(
    "compliance_extensions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_until", sa.String(40), nullable=False),
    sa.Column("requested_at", sa.String(40), nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("decided_at", sa.String(40)),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("decision_reason", sa.Text),
    sa.Column("granted_until", sa.String(40)),
)

compliance_overrides = sa.Table(
    "compliance_overrides",
    metadata,
    # Enrolments approved without compliance on an operator's explicit say-so.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("enrolment_id", sa.String(32), nullable=False),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("operator", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

compliance_notifications = sa.Table(
    "compliance_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # What it is about (a certificate id) and, for reminders, the days before expiry.
    sa.Column("subject", sa.String(32), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("sent", sa.Boolean, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.UniqueConstraint("subject", "kind", "days", name="uq_notification_once"),
)

compliance_selfchecks = sa.Table(
    "compliance_selfchecks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("organisation", sa.String(16), nullable=False, index=True),
    sa.Column("gateway", sa.String(63), nullable=False),
    sa.Column("generated_at", sa.String(40), nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("summary", sa.JSON, nullable=False),
    sa.Column("evidence_id", sa.String(32), nullable=False),
)
