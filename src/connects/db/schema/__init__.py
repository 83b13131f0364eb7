"""The tables, as SQLAlchemy Core metadata (the migrations create the same), one module
per concept: :mod:`.ledger`, :mod:`.market`, :mod:`.payments`, :mod:`.notify` and
:mod:`.web`, on the shared :mod:`.base`.

Every account-owned table carries ``account_id`` and leads its keys and indexes with
it, so the data could be sharded by account. Every kind and status column holds a word
of the product's vocabulary (:mod:`connects.domain.vocabulary`), checked by the database
(:func:`one_of`).
"""

from __future__ import annotations

from connects.db.schema.base import ID, metadata, one_of
from connects.db.schema.holds import badges, holds, market_settings, proposal_outcomes
from connects.db.schema.ledger import (
    accounts,
    allocations,
    entries,
    events,
    invitations,
    lots,
    memberships,
    users,
)
from connects.db.schema.market import jobs, proposals, results_months
from connects.db.schema.notify import (
    balance_alerts,
    channels,
    deliveries,
    delivery_attempts,
    low_balance_levels,
    notification_settings,
)
from connects.db.schema.payments import (
    auto_topup_settings,
    billing_methods,
    gateway_charges,
    grants,
    purchases,
    topups,
)
from connects.db.schema.web import (
    idempotency_keys,
    login_links,
    rate_limit_hits,
    runtime,
    web_sessions,
)

__all__ = [
    "ID",
    "accounts",
    "allocations",
    "auto_topup_settings",
    "badges",
    "balance_alerts",
    "billing_methods",
    "channels",
    "deliveries",
    "delivery_attempts",
    "entries",
    "events",
    "gateway_charges",
    "grants",
    "holds",
    "idempotency_keys",
    "invitations",
    "jobs",
    "login_links",
    "lots",
    "low_balance_levels",
    "market_settings",
    "memberships",
    "metadata",
    "notification_settings",
    "one_of",
    "proposal_outcomes",
    "proposals",
    "purchases",
    "rate_limit_hits",
    "results_months",
    "runtime",
    "topups",
    "users",
    "web_sessions",
]
