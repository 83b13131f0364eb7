"""The web's own tables: idempotency keys, dashboard sign-in, rate limits, and the
process-shared runtime settings."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text

from connects.db.schema.base import ID, metadata
from connects.db.types import UTCDateTime

# -- idempotency keys (R31) ---------------------------------------------------------

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(80), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("status_code", Integer),  # always written with the answer (migration 0011)
    Column("response_body", Text),
    Column("content_type", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- dashboard sign-in (connects.web.auth) -------------------------------------------

# One-time sign-in links printed by ``connects login-link``: stored as SHA-256 only,
# single use (``used_at``), short-lived.
login_links = Table(
    "login_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime),
)

# Browser sessions: the cookie holds a random id, the table only its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("account_id", ID),  # the account (pool) the dashboard shows
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
Index("ix_web_sessions_user", web_sessions.c.user_id)

# -- rate limits (connects.services.ratelimit) ---------------------------------------

# Fixed-window counters of sign-in and sign-up attempts, shared by every process: one
# row per (scope, SHA-256 of the e-mail or address, window start).
rate_limit_hits = Table(
    "rate_limit_hits",
    metadata,
    Column("scope", String(32), primary_key=True),
    Column("key_hash", String(64), primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("hits", Integer, nullable=False),
)
Index("ix_rate_limit_hits_window_start", rate_limit_hits.c.window_start)

# Process-shared settings, such as the simulated clock's time (R33).
runtime = Table(
    "runtime",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
