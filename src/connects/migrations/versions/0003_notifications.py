"""notifications: channels, settings, deliveries and their attempts (R27-R29)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connects.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fanned_out_at", connects.db.types.UTCDateTime(), nullable=True)
        )
    # Events written before notifications existed are not sent now, months late.
    op.execute("UPDATE events SET fanned_out_at = created_at")
    op.create_index(
        "ix_events_unfanned",
        "events",
        ["created_at"],
        unique=False,
        sqlite_where=sa.text("fanned_out_at IS NULL"),
        postgresql_where=sa.text("fanned_out_at IS NULL"),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_encrypted", sa.Text(), nullable=True),
        sa.Column("target_hint", sa.String(length=300), nullable=False),
        sa.Column("events", sa.String(length=400), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", connects.db.types.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", connects.db.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('telegram', 'slack', 'discord', 'email', 'webhook')",
            name=op.f("ck_channels_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_channels_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
    )
    op.create_index(
        "ix_channels_account_created", "channels", ["account_id", "created_at"], unique=False
    )
    op.create_table(
        "notification_settings",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("low_balance", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("low_balance_threshold", sa.Integer(), server_default="0", nullable=False),
        sa.Column("topups", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("monthly_limit", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("refunds", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("purchases", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("expiring", sa.Boolean(), server_default="1", nullable=False),
        sa.Column("expiring_every", sa.String(length=8), server_default="week", nullable=False),
        sa.Column("updated_at", connects.db.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "low_balance_threshold >= 0",
            name=op.f("ck_notification_settings_threshold_nonnegative"),
        ),
        sa.CheckConstraint(
            "expiring_every IN ('day', 'week')",
            name=op.f("ck_notification_settings_expiring_every_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notification_settings_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_notification_settings")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("event_kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", connects.db.types.UTCDateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_until", connects.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", connects.db.types.UTCDateTime(), nullable=False),
        sa.Column("sent_at", connects.db.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'dead')",
            name=op.f("ck_deliveries_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_deliveries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_deliveries_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_deliveries_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "event_id", "channel_id", name=op.f("uq_deliveries_event_id_channel_id")
        ),
    )
    op.create_index("ix_deliveries_account_id", "deliveries", ["account_id", "id"], unique=False)
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        unique=False,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["claimed_until"],
        unique=False,
        sqlite_where=sa.text("status = 'sending'"),
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("at", connects.db.types.UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_deliveries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(
        "ix_delivery_attempts_delivery",
        "delivery_attempts",
        ["delivery_id", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_delivery", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_index("ix_deliveries_leased", table_name="deliveries")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_index("ix_deliveries_account_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("notification_settings")
    op.drop_index("ix_channels_account_created", table_name="channels")
    op.drop_table("channels")
    op.drop_index("ix_events_unfanned", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("fanned_out_at")
