"""Storage: one SQL schema on SQLite or PostgreSQL, opened through :mod:`gcx.store.db`."""

from gcx.store.db import Database, iso, open_database, parse_iso, sqlite_url

__all__ = ["Database", "iso", "open_database", "parse_iso", "sqlite_url"]
