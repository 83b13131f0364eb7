"""holds, boosted proposals, proposal outcomes, the availability badge (R34-R38)

* ``holds``: Connects reserved without being spent (R34), a boost's bid among them
  (R35); ``accounts.held`` their open sum; ``entries.hold_id`` names the hold an entry
  placed, raised, captured or released.
* ``jobs`` gain ``auction_closes_at`` (open jobs: 7 days after posting) and
  ``auction_closed_at`` (ended jobs: their last update).
* ``proposal_outcomes``: what happened to a proposal and when (R38).
* ``badges`` and ``market_settings`` (the badge's weekly price, R37).
* The CHECKs widen, keeping every word they had: ``entries.kind`` takes ``hold``,
  ``release``, ``capture``, ``badge``; ``events.kind`` takes ``badge_stopped``;
  ``proposals.status`` takes ``declined`` (PostgreSQL: ``NOT VALID`` then validated;
  SQLite: the tables are rebuilt).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-22 10:00:00
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from connects.db.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
AUCTION_DAYS = 7

ENTRY_KINDS = ("grant", "purchase", "spend", "refund", "reward", "expire", "rollover_forfeit")
EVENT_KINDS = (
    "balance_low",
    "balance_empty",
    "topup_succeeded",
    "topup_failed",
    "monthly_limit_reached",
    "connects_refunded",
    "connects_purchased",
    "connects_expiring",
    "topup_paused",
)
PROPOSAL_STATUSES = ("active", "interviewing", "withdrawn", "refunded", "hired")
# table -> (check name, column, words before, words after)
CHECKS = {
    "entries": (
        "ck_entries_kind_known",
        "kind",
        ENTRY_KINDS,
        (*ENTRY_KINDS, "hold", "release", "capture", "badge"),
    ),
    "events": ("ck_events_kind_known", "kind", EVENT_KINDS, (*EVENT_KINDS, "badge_stopped")),
    "proposals": (
        "ck_proposals_status_known",
        "status",
        PROPOSAL_STATUSES,
        (*PROPOSAL_STATUSES, "declined"),
    ),
}
HOLD_STATUSES = ("held", "captured", "released")
OUTCOMES = ("viewed", "interviewed", "declined", "hired", "withdrawn", "returned")
STOP_REASONS = ("price_above_maximum", "insufficient_connects")


def _in(column: str, words: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{w}'" for w in words) + ")"


def _checks(after: bool) -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for table, (name, column, before, later) in CHECKS.items():
        words = later if after else before
        if pg:
            with op.get_context().autocommit_block():
                op.execute(
                    f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}, "
                    f"ADD CONSTRAINT {name} CHECK ({_in(column, words)}) NOT VALID"
                )
                op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
            continue
        with op.batch_alter_table(table, recreate="always") as batch_op:
            batch_op.drop_constraint(op.f(name), type_="check")
            batch_op.create_check_constraint(op.f(name), _in(column, words))


def _create_tables() -> None:
    op.create_table(
        "holds",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("captured", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("ended_reason", sa.String(200), nullable=True),
        sa.Column("proposal_id", ID, nullable=True),
        sa.Column("job_id", ID, nullable=True),
        sa.Column("member_id", ID, nullable=True),
        sa.Column("entry_id", ID, nullable=True),
        sa.Column("deadline", UTCDateTime(), nullable=True),
        sa.Column("bid_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_amount_positive")),
        sa.CheckConstraint(
            "captured >= 0 AND captured <= amount", name=op.f("ck_holds_captured_in_range")
        ),
        sa.CheckConstraint(_in("status", HOLD_STATUSES), name=op.f("ck_holds_status_known")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_holds_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index("ix_holds_account_created", "holds", ["account_id", "created_at"])
    op.create_index(
        "ix_holds_job_bid",
        "holds",
        ["job_id", "amount"],
        sqlite_where=sa.text("job_id IS NOT NULL"),
        postgresql_where=sa.text("job_id IS NOT NULL"),
    )
    op.create_index("uq_holds_proposal", "holds", ["proposal_id"], unique=True)
    op.create_index(
        "ix_holds_deadline",
        "holds",
        ["deadline"],
        sqlite_where=sa.text("deadline IS NOT NULL"),
        postgresql_where=sa.text("deadline IS NOT NULL"),
    )
    op.create_table(
        "proposal_outcomes",
        sa.Column("proposal_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(_in("kind", OUTCOMES), name=op.f("ck_proposal_outcomes_kind_known")),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name=op.f("fk_proposal_outcomes_proposal_id_proposals"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_proposal_outcomes_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("proposal_id", "kind", name=op.f("pk_proposal_outcomes")),
    )
    op.create_index("ix_proposal_outcomes_account_at", "proposal_outcomes", ["account_id", "at"])
    op.create_table(
        "badges",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("weekly_max", sa.Integer(), nullable=False),
        sa.Column("stopped_reason", sa.String(32), nullable=True),
        sa.Column("day", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_charge_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("weekly_max >= 0", name=op.f("ck_badges_weekly_max_nonnegative")),
        sa.CheckConstraint("day BETWEEN 0 AND 6", name=op.f("ck_badges_day_range")),
        sa.CheckConstraint(
            "stopped_reason IS NULL OR " + _in("stopped_reason", STOP_REASONS),
            name=op.f("ck_badges_stopped_reason_known"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_badges_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_badges")),
    )
    op.create_index(
        "ix_badges_due",
        "badges",
        ["next_charge_at"],
        sqlite_where=sa.text("enabled"),
        postgresql_where=sa.text("enabled"),
    )
    op.create_table(
        "market_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_market_settings")),
    )


def _auction_times() -> None:
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("id", ID),
        sa.column("status", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
        sa.column("auction_closes_at", UTCDateTime()),
        sa.column("auction_closed_at", UTCDateTime()),
    )
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.status, jobs.c.created_at, jobs.c.updated_at))
    for row in rows.all():
        closes = row.created_at + timedelta(days=AUCTION_DAYS)
        closed = None if row.status == "open" else row.updated_at
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == row.id)
            .values(auction_closes_at=closes, auction_closed_at=closed)
        )


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("held", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("entries") as batch_op:
        batch_op.add_column(sa.Column("hold_id", ID, nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("auction_closes_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("auction_closed_at", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_jobs_auction_due",
        "jobs",
        ["auction_closes_at"],
        sqlite_where=sa.text("auction_closed_at IS NULL"),
        postgresql_where=sa.text("auction_closed_at IS NULL"),
    )
    _auction_times()
    _create_tables()
    _checks(after=True)


def downgrade() -> None:
    # The older code knows none of these words: their rows go.
    op.execute(
        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries "
        "WHERE event_id IN (SELECT id FROM events WHERE kind = 'badge_stopped'))"
    )
    op.execute(
        "DELETE FROM deliveries WHERE event_id IN "
        "(SELECT id FROM events WHERE kind = 'badge_stopped')"
    )
    op.execute("DELETE FROM events WHERE kind = 'badge_stopped'")
    op.execute("UPDATE proposals SET status = 'withdrawn' WHERE status = 'declined'")
    _checks(after=False)  # entries of the new kinds make this fail: a ledger is not cut
    for table in ("market_settings", "badges", "proposal_outcomes", "holds"):
        op.drop_table(table)
    op.drop_index("ix_jobs_auction_due", table_name="jobs")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("auction_closed_at")
        batch_op.drop_column("auction_closes_at")
    with op.batch_alter_table("entries") as batch_op:
        batch_op.drop_column("hold_id")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("held")
