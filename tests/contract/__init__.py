"""Contract tests: one suite run on every storage adapter (SQLite and PostgreSQL)."""
