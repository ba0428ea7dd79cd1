"""Service access tables (migration 0006), on the one shared ``metadata``.

Central keeps what providers published and granted (and every signed change
they sent); a gateway keeps its private backend settings and the call log.
Instants are ISO 8601 text in UTC, as everywhere in gcx.
"""

from __future__ import annotations

import sqlalchemy as sa

from gcx.store.schema import metadata

# -- central ---------------------------------------------------------------------

service_definitions = sa.Table(
    "service_definitions",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    # The public description as the directory carries it (gcx.protocol.services.ServiceEntry).
    sa.Column("entry", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("withdrawn_at", sa.String(40)),
)

service_rights = sa.Table(
    "service_rights",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(16), nullable=False, index=True),
    sa.Column("service", sa.String(63), nullable=False),
    sa.Column("entry", sa.JSON, nullable=False),
    sa.Column("granted_at", sa.String(40), nullable=False),
    sa.Column("revoked_at", sa.String(40)),
)

service_groups = sa.Table(
    "service_groups",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("entry", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

service_changes = sa.Table(
    "service_changes",
    metadata,
    # Every signed change a provider sent, kept as sent: the operator's record
    # of who published and granted what, and the replay guard (the id is unique).
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(16), nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("document", sa.LargeBinary, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
)

# -- gateway ---------------------------------------------------------------------

service_backends = sa.Table(
    "service_backends",
    metadata,
    # A hosted provider's services: the backend URL never leaves this gateway.
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("backend_url", sa.String(2000), nullable=False),
    sa.Column("entry", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
)

service_calls = sa.Table(
    "service_calls",
    metadata,
    # One row per call per side ("consumer" or "provider"); written in the same
    # transaction as the call's audit entry.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("side", sa.String(8), primary_key=True),
    sa.Column("at", sa.String(40), nullable=False, index=True),
    sa.Column("consumer", sa.String(16), nullable=False, index=True),
    sa.Column("consumer_user", sa.String(200)),
    # The consumer's system account that stated consumer_user on a person's behalf;
    # empty when a person called with their own token (migration 0012).
    sa.Column("consumer_system", sa.String(64)),
    sa.Column("purpose", sa.String(500)),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("service", sa.String(63), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(2000), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("request_size", sa.Integer, nullable=False),
    sa.Column("response_size", sa.Integer, nullable=False),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("response_sha256", sa.String(64)),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("directory_version", sa.Integer),
    sa.Column("request_document", sa.LargeBinary),
    sa.Column("response_document", sa.LargeBinary),
    # Request and response bodies, sealed to this gateway's own organisation
    # (a gcx.envelope/1 frame), only when the service's policy is "full".
    sa.Column("sealed_bodies", sa.LargeBinary),
)
