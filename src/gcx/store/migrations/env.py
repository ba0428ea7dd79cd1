"""Alembic environment: always run with a connection handed in by gcx.store.db."""

from alembic import context

import gcx.store.schema_compliance  # noqa: F401 - registers the Code of Connection tables
from gcx.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
