"""Alembic environment: always run with a connection handed in by gcx.store.db."""

from alembic import context

# Importing these modules registers their tables on the one metadata.
from gcx.store import (
    schema_alerts,
    schema_compliance,
    schema_lists,
    schema_mail,
    schema_services,
    schema_transfers,
    schema_web,
)
from gcx.store.schema import metadata

_FEATURE_SCHEMAS = (
    schema_alerts,
    schema_compliance,
    schema_lists,
    schema_mail,
    schema_services,
    schema_transfers,
    schema_web,
)

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
