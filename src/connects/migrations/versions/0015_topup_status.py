"""auto top-up's status: declines, pauses, retries; cards made default and removed

* ``auto_topup_settings`` gains auto top-up's own state (R40-R42): ``declines`` (in a
  row since the last success, default 0), ``retry_at`` (when a declined card is tried
  again), ``paused_at`` (paused after 3 declines until an owner or admin resumes it)
  and ``retry_topup_id`` (the failed or skipped top-up that waits to be tried again
  once its cause is gone, R41), with a partial index on the accounts that wait.
* ``billing_methods`` gains ``removed_at`` (a removed card stays for the purchases
  that name it, R44) and a partial unique index: at most one default card per
  account. Should an account hold two defaults already, the older stays the default.
* ``events.kind`` takes ``topup_paused`` (R42): the CHECK is widened (PostgreSQL: added
  ``NOT VALID`` and validated; SQLite: the table is rebuilt).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connects.db.types import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
EVENT_KINDS = (
    "balance_low",
    "balance_empty",
    "topup_succeeded",
    "topup_failed",
    "monthly_limit_reached",
    "connects_refunded",
    "connects_purchased",
    "connects_expiring",
)
NEW_EVENT_KINDS = (*EVENT_KINDS, "topup_paused")
EVENTS_CHECK = "ck_events_kind_known"

_ONE_DEFAULT = sa.text(
    """
    UPDATE billing_methods SET is_default = false
    WHERE is_default AND EXISTS (
        SELECT 1 FROM billing_methods older
        WHERE older.account_id = billing_methods.account_id AND older.is_default
          AND (older.created_at, older.id) < (billing_methods.created_at, billing_methods.id)
    )
    """
)


def _condition(words: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{w}'" for w in words) + ")"


def _events_check(words: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute(
                f"ALTER TABLE events DROP CONSTRAINT IF EXISTS {EVENTS_CHECK}, "
                f"ADD CONSTRAINT {EVENTS_CHECK} CHECK ({_condition(words)}) NOT VALID"
            )
            op.execute(f"ALTER TABLE events VALIDATE CONSTRAINT {EVENTS_CHECK}")
        return
    with op.batch_alter_table("events", recreate="always") as batch_op:
        batch_op.drop_constraint(op.f(EVENTS_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(EVENTS_CHECK), _condition(words))


def upgrade() -> None:
    with op.batch_alter_table("auto_topup_settings") as batch_op:
        batch_op.add_column(sa.Column("declines", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("retry_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("paused_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("retry_topup_id", ID, nullable=True))
    op.create_index(
        "ix_auto_topup_settings_waiting",
        "auto_topup_settings",
        ["account_id"],
        sqlite_where=sa.text("retry_topup_id IS NOT NULL"),
        postgresql_where=sa.text("retry_topup_id IS NOT NULL"),
    )
    with op.batch_alter_table("billing_methods") as batch_op:
        batch_op.add_column(sa.Column("removed_at", UTCDateTime(), nullable=True))
    op.execute(_ONE_DEFAULT)
    op.create_index(
        "uq_billing_methods_default",
        "billing_methods",
        ["account_id"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    _events_check(NEW_EVENT_KINDS)


def downgrade() -> None:
    # The older code knows no topup_paused: its events go, with their deliveries.
    paused = "SELECT id FROM events WHERE kind = 'topup_paused'"
    deliveries = f"SELECT id FROM deliveries WHERE event_id IN ({paused})"
    op.execute(f"DELETE FROM delivery_attempts WHERE delivery_id IN ({deliveries})")
    op.execute(f"DELETE FROM deliveries WHERE event_id IN ({paused})")
    op.execute("DELETE FROM events WHERE kind = 'topup_paused'")
    _events_check(EVENT_KINDS)
    op.drop_index("uq_billing_methods_default", table_name="billing_methods")
    with op.batch_alter_table("billing_methods") as batch_op:
        batch_op.drop_column("removed_at")
    op.drop_index("ix_auto_topup_settings_waiting", table_name="auto_topup_settings")
    with op.batch_alter_table("auto_topup_settings") as batch_op:
        batch_op.drop_column("retry_topup_id")
        batch_op.drop_column("paused_at")
        batch_op.drop_column("retry_at")
        batch_op.drop_column("declines")
