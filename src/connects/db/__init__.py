"""Storage: the schema, the engine and the transaction helpers (SQLite and PostgreSQL)."""
