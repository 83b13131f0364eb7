"""Money: billing methods, purchases, the simulated gateway's book, business-manager
grants, and auto top-up (its settings and one row per trigger)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from connects.db.schema.base import ID, metadata, one_of
from connects.db.types import UTCDateTime
from connects.domain.topup import MODES
from connects.domain.vocabulary import ActorKind, PurchaseStatus, TopUpStatus, TopUpTrigger

billing_methods = Table(
    "billing_methods",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("gateway_ref", String(120), nullable=False),
    Column("brand", String(32), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Removed cards stay for the purchases that name them (a pending charge is still
    # finished with its gateway reference), but are never listed or charged (R44).
    Column("removed_at", UTCDateTime),
)
Index("ix_billing_methods_account", billing_methods.c.account_id)
# At most one default card per account (R44): the database holds it too.
Index(
    "uq_billing_methods_default",
    billing_methods.c.account_id,
    unique=True,
    sqlite_where=billing_methods.c.is_default,
    postgresql_where=billing_methods.c.is_default,
)

purchases = Table(
    "purchases",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("pay_with", String(16), nullable=False),  # "earnings" | "card"
    Column("billing_method_id", ID),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("charge_id", String(120)),
    Column("actor_kind", String(24), nullable=False),
    Column("actor_id", String(64)),
    Column("topup_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    CheckConstraint("quantity >= 1", name="quantity_positive"),
    CheckConstraint("amount_cents >= 0", name="amount_nonnegative"),
    one_of("status", PurchaseStatus, "status_known"),
    one_of("actor_kind", ActorKind, "actor_kind_known"),
)
Index("ix_purchases_account_created", purchases.c.account_id, purchases.c.created_at)
Index("ix_purchases_status", purchases.c.status, purchases.c.created_at)

# The simulated payment gateway's own book (an outside system in production):
# one charge per idempotency key, so a retried charge is never taken twice.
gateway_charges = Table(
    "gateway_charges",
    metadata,
    Column("idempotency_key", String(120), primary_key=True),
    Column("charge_id", String(120), nullable=False),
    Column("method_ref", String(120), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

grants = Table(
    "grants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("grantee", String(64), nullable=False),
    Column("permissions", String(400), nullable=False),  # space-separated
    Column("created_at", UTCDateTime, nullable=False),
    Column("active_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("created_by", ID),
)
Index("ix_grants_account", grants.c.account_id)

# -- auto top-up (R19-R25) ---------------------------------------------------------

auto_topup_settings = Table(
    "auto_topup_settings",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("per_topup", Integer, nullable=False),
    Column("per_month", Integer, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("just_in_time", Boolean, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("target", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
    # Auto top-up's own state (R40-R42), written by the runner, never by the owner:
    # declines in a row since the last success, when a declined card is tried again,
    # since when it is paused, and the failed or skipped top-up that waits to be tried
    # again once its cause is gone (connects.services.topup_recovery).
    Column("declines", Integer, nullable=False, server_default="0"),
    Column("retry_at", UTCDateTime),
    Column("paused_at", UTCDateTime),
    Column("retry_topup_id", ID),
    CheckConstraint("per_topup >= 1 AND per_month >= 0 AND threshold >= 0", name="limits_in_range"),
    one_of("mode", MODES, "mode_known"),
)
# The accounts whose auto top-up waits to try again (R41): few, found without a scan.
Index(
    "ix_auto_topup_settings_waiting",
    auto_topup_settings.c.account_id,
    sqlite_where=auto_topup_settings.c.retry_topup_id.isnot(None),
    postgresql_where=auto_topup_settings.c.retry_topup_id.isnot(None),
)

# One row per trigger: the decision to top up, recorded before any money moves. The
# unique (account_id, trigger_key) makes "one trigger, at most one purchase" (R23) a
# property of the database.
topups = Table(
    "topups",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("trigger", String(24), nullable=False),
    Column("trigger_key", String(120), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM in the account's time zone
    Column("quantity", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(200)),
    Column("purchase_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    # The executor running a pending top-up, until when (connects.services.topup_runner).
    Column("claimed_by", String(40)),
    Column("claimed_until", UTCDateTime),
    UniqueConstraint("account_id", "trigger_key"),
    CheckConstraint("quantity >= 0", name="quantity_nonnegative"),
    one_of("status", TopUpStatus, "status_known"),
    one_of("trigger", TopUpTrigger, "trigger_known"),
)
Index("ix_topups_account_created", topups.c.account_id, topups.c.created_at)
Index("ix_topups_account_month", topups.c.account_id, topups.c.month)
Index("ix_topups_status", topups.c.status, topups.c.created_at)
