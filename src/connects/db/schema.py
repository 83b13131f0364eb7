"""The tables, as SQLAlchemy Core metadata (the migrations create the same).

Every account-owned table carries ``account_id`` and leads its keys and indexes with
it, so the data could be sharded by account. Invariants are held by the database too:
balances, earnings and lots can never go below zero; one ledger entry per sequence
number per account (a lost update would collide); one entry per dedupe key (a cycle
grant or a refund applied twice would collide).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from connects.db.types import UTCDateTime
from connects.domain.vocabulary import ChannelKind, DeliveryStatus

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Ids compare byte by byte on both databases: SQLite's default (BINARY), and "C" on
# PostgreSQL, whose default collation follows the server's locale. The order of ids is
# then the same in SQL as in Python, and every key comparison is a memcmp, not a
# locale-aware strcoll (the monthly cycle spent a tenth of its time there).
ID = String(40).with_variant(String(40, collation="C"), "postgresql")

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("token_hash", String(128), unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("owner_id", ID, ForeignKey("users.id"), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("anchor_day", Integer, nullable=False),
    Column("next_cycle_at", UTCDateTime, nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("earnings_cents", BigInteger, nullable=False, server_default="0"),
    Column("low_balance_threshold", Integer, nullable=False, server_default="0"),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("balance >= 0", name="balance_nonnegative"),
    CheckConstraint("earnings_cents >= 0", name="earnings_nonnegative"),
    CheckConstraint("kind IN ('freelancer', 'agency')", name="kind_known"),
    CheckConstraint("anchor_day BETWEEN 1 AND 31", name="anchor_day_range"),
    # R2: at most one freelancer account and one owned agency per person.
    UniqueConstraint("owner_id", "kind"),
)
Index("ix_accounts_next_cycle_at", accounts.c.next_cycle_at)

memberships = Table(
    "memberships",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("monthly_budget", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("role IN ('owner', 'admin', 'manager', 'member')", name="role_known"),
    CheckConstraint("monthly_budget IS NULL OR monthly_budget >= 0", name="budget_nonnegative"),
)
Index("ix_memberships_user_id", memberships.c.user_id)

lots = Table(
    "lots",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("source", String(16), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("amount", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    CheckConstraint("amount > 0", name="amount_positive"),
)
# Open lots of an account, by expiry: the spend path and the expiry sweep read these.
Index(
    "ix_lots_open",
    lots.c.account_id,
    lots.c.expires_at,
    sqlite_where=lots.c.remaining > 0,
    postgresql_where=lots.c.remaining > 0,
)
Index(
    "ix_lots_open_expiry",
    lots.c.expires_at,
    sqlite_where=lots.c.remaining > 0,
    postgresql_where=lots.c.remaining > 0,
)

entries = Table(
    "entries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("balance_after", BigInteger, nullable=False),
    Column("actor_kind", String(24), nullable=False),
    Column("actor_id", String(64)),
    Column("member_id", ID),
    Column("proposal_id", ID),
    Column("purchase_id", ID),
    Column("topup_id", ID),
    Column("note", Text),
    Column("dedupe_key", String(120)),
    CheckConstraint("balance_after >= 0", name="balance_after_nonnegative"),
    UniqueConstraint("account_id", "seq"),
)
# One entry per dedupe key; entries without one (spends, expiry) stay out of the index.
Index(
    "uq_entries_account_id_dedupe_key",
    entries.c.account_id,
    entries.c.dedupe_key,
    unique=True,
    sqlite_where=entries.c.dedupe_key.is_not(None),
    postgresql_where=entries.c.dedupe_key.is_not(None),
)
Index("ix_entries_account_at", entries.c.account_id, entries.c.at)
# Entries made by a member (usage by member); system entries have no member_id.
Index(
    "ix_entries_account_member_at",
    entries.c.account_id,
    entries.c.member_id,
    entries.c.at,
    sqlite_where=entries.c.member_id.is_not(None),
    postgresql_where=entries.c.member_id.is_not(None),
)
# An account's refunds: every rollover asks for them (R9, R15).
Index(
    "ix_entries_account_refunds",
    entries.c.account_id,
    sqlite_where=entries.c.kind == "refund",
    postgresql_where=entries.c.kind == "refund",
)

allocations = Table(
    "allocations",
    metadata,
    Column("account_id", ID, nullable=False),
    # No foreign keys: keyed by entry or lot id alone, they could not hold across
    # shards of a database split by account. ``connects verify`` checks that every
    # allocation names an entry and a lot of its own account.
    Column("entry_id", ID, primary_key=True),
    Column("lot_id", ID, primary_key=True),
    Column("amount", Integer, nullable=False),
    CheckConstraint("amount > 0", name="amount_positive"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("client_id", ID, ForeignKey("users.id"), nullable=False),
    Column("title", String(300), nullable=False),
    Column("connects_required", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("hired_proposal_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("connects_required >= 0", name="price_nonnegative"),
)
Index("ix_jobs_status_created", jobs.c.status, jobs.c.created_at)

proposals = Table(
    "proposals",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("job_id", ID, ForeignKey("jobs.id"), nullable=False),
    Column("freelancer_id", ID, ForeignKey("users.id"), nullable=False),
    Column("submitted_by", ID, ForeignKey("users.id"), nullable=False),
    Column("connects_spent", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("entry_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("job_id", "freelancer_id"),
)
Index("ix_proposals_account_created", proposals.c.account_id, proposals.c.created_at)

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
)
Index("ix_billing_methods_account", billing_methods.c.account_id)

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
    Column("status", String(16), nullable=False),  # pending | succeeded | failed
    Column("failure_code", String(64)),
    Column("charge_id", String(120)),
    Column("actor_kind", String(24), nullable=False),
    Column("actor_id", String(64)),
    Column("topup_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    CheckConstraint("quantity >= 1", name="quantity_positive"),
    CheckConstraint("amount_cents >= 0", name="amount_nonnegative"),
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

# The outbox: events written in the same transaction as the change that caused them.
events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("dedupe_key", String(120)),
    # Set once the event became deliveries for the account's channels (R29).
    Column("fanned_out_at", UTCDateTime),
    UniqueConstraint("account_id", "dedupe_key"),
)
Index("ix_events_account_created", events.c.account_id, events.c.created_at)
Index(
    "ix_events_unfanned",
    events.c.created_at,
    sqlite_where=events.c.fanned_out_at.is_(None),
    postgresql_where=events.c.fanned_out_at.is_(None),
)

# Process-shared settings, such as the simulated clock's time (R33).
runtime = Table(
    "runtime",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

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
    Column("mode", String(16), nullable=False),  # fixed | target
    Column("target", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("per_topup >= 1 AND per_month >= 0 AND threshold >= 0", name="limits_in_range"),
    CheckConstraint("mode IN ('fixed', 'target')", name="mode_known"),
)

# One row per trigger: the decision to top up, recorded before any money moves. The
# unique (account_id, trigger_key) makes "one trigger, at most one purchase" (R23) a
# property of the database.
topups = Table(
    "topups",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("trigger", String(24), nullable=False),  # balance_zero | threshold | just_in_time
    Column("trigger_key", String(120), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM in the account's time zone
    Column("quantity", Integer, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed | skipped
    Column("reason", String(200)),
    Column("purchase_id", ID),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
    UniqueConstraint("account_id", "trigger_key"),
    CheckConstraint("quantity >= 0", name="quantity_nonnegative"),
)
Index("ix_topups_account_created", topups.c.account_id, topups.c.created_at)
Index("ix_topups_account_month", topups.c.account_id, topups.c.month)
Index("ix_topups_status", topups.c.status, topups.c.created_at)

# -- idempotency keys (R31) ---------------------------------------------------------

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(80), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("status_code", Integer),  # null while the first request is in flight
    Column("response_body", Text),
    Column("content_type", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
)

# -- notifications (R27-R29) ---------------------------------------------------------

CHANNEL_KINDS = tuple(ChannelKind)
DELIVERY_STATUSES = tuple(DeliveryStatus)

# Where an account's notifications go. The target (bot token, webhook URL, SMTP
# credentials) and the webhook signing secret are stored encrypted; ``target_hint``
# is the masked form shown back (R28).
channels = Table(
    "channels",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target_encrypted", Text),  # wiped when the channel is removed
    Column("target_hint", String(300), nullable=False),
    Column("events", String(400)),  # space-separated kinds; NULL means every kind
    Column("secret_encrypted", Text),  # webhook signing secret
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    CheckConstraint(
        "kind IN ('telegram', 'slack', 'discord', 'email', 'webhook')", name="kind_known"
    ),
)
Index("ix_channels_account_created", channels.c.account_id, channels.c.created_at)

# The two toggles of seed 000 plus a switch for each other event, all on by default.
# ``low_balance_threshold`` mirrors ``accounts.low_balance_threshold`` (the one the
# ledger reads); both are written in one transaction.
notification_settings = Table(
    "notification_settings",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("low_balance", Boolean, nullable=False, server_default="1"),
    Column("low_balance_threshold", Integer, nullable=False, server_default="0"),
    Column("topups", Boolean, nullable=False, server_default="1"),
    Column("monthly_limit", Boolean, nullable=False, server_default="1"),
    Column("refunds", Boolean, nullable=False, server_default="1"),
    Column("purchases", Boolean, nullable=False, server_default="1"),
    Column("expiring", Boolean, nullable=False, server_default="1"),
    Column("expiring_every", String(8), nullable=False, server_default="week"),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("low_balance_threshold >= 0", name="threshold_nonnegative"),
    CheckConstraint("expiring_every IN ('day', 'week')", name="expiring_every_known"),
)

# One row per event x channel: the unit of at-least-once delivery (R29).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("event_id", ID, ForeignKey("events.id"), nullable=False),
    Column("channel_id", ID, ForeignKey("channels.id"), nullable=False),
    Column("event_kind", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(80)),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("event_id", "channel_id"),
    CheckConstraint("status IN ('pending', 'sending', 'sent', 'dead')", name="status_known"),
)
Index("ix_deliveries_account_id", deliveries.c.account_id, deliveries.c.id)
Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    sqlite_where=deliveries.c.status == "pending",
    postgresql_where=deliveries.c.status == "pending",
)
Index(
    "ix_deliveries_leased",
    deliveries.c.claimed_until,
    sqlite_where=deliveries.c.status == "sending",
    postgresql_where=deliveries.c.status == "sending",
)

# Every attempt, successful or not, for the notifications page (R29).
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("delivery_id", ID, ForeignKey("deliveries.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    Column("worker", String(80)),
)
Index("ix_delivery_attempts_delivery", delivery_attempts.c.delivery_id, delivery_attempts.c.at)

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
