"""Notifications (R27-R29): channels, an account's settings, and the deliveries of
events to channels with every attempt."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from connects.db.schema.base import ID, metadata, one_of
from connects.db.types import UTCDateTime
from connects.domain.vocabulary import ChannelKind, DeliveryStatus

# Where an account's notifications go. The target (bot token, webhook URL, e-mail
# address, or the SMTP URL of an e-mail channel made before R47) and the webhook
# signing secret are stored encrypted; ``target_hint`` is the masked form shown back
# (R28).
channels = Table(
    "channels",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target_encrypted", Text),  # wiped when the channel is removed
    Column("target_hint", String(300), nullable=False),
    Column("events", String(400)),  # space-separated kinds; NULL means every kind
    Column("secret_encrypted", Text),  # webhook signing secret, whsec_<base64> (R46)
    # The secret is its own HMAC key, not whsec_<base64>: channels made before R46
    # (migration 0014; connects.notify.webhooks.open_secret).
    Column("secret_raw", Boolean, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    one_of("kind", ChannelKind, "kind_known"),
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

# The balance levels an account is alerted at (R45): ``balance_low`` once per downward
# crossing of each. ``accounts.low_balance_threshold`` and the settings row's mirror
# hold the highest of them, for the API's older ``low_balance_threshold`` field.
low_balance_levels = Table(
    "low_balance_levels",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("level", Integer, primary_key=True),
    CheckConstraint("level > 0", name="level_positive"),
)

# An alert sent and not re-armed yet (R45): a row per level the balance fell to or
# below (level 0: ``balance_empty``), deleted when the balance rises above the level.
# The primary key makes "once per crossing" exact across transactions and processes.
balance_alerts = Table(
    "balance_alerts",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("sent_at", UTCDateTime, nullable=False),
    CheckConstraint("level >= 0", name="level_nonnegative"),
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
    one_of("status", DeliveryStatus, "status_known"),
)
Index("ix_deliveries_account_id", deliveries.c.account_id, deliveries.c.id)
Index(
    "ix_deliveries_due",
    deliveries.c.next_attempt_at,
    sqlite_where=deliveries.c.status == DeliveryStatus.PENDING.value,
    postgresql_where=deliveries.c.status == DeliveryStatus.PENDING.value,
)
Index(
    "ix_deliveries_leased",
    deliveries.c.claimed_until,
    sqlite_where=deliveries.c.status == DeliveryStatus.SENDING.value,
    postgresql_where=deliveries.c.status == DeliveryStatus.SENDING.value,
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
