"""Holds on Connects (R34), the boosts they carry (R35), what happened to proposals
(R38) and the availability badge (R37).

A hold reserves Connects that stay in their lots; the account's ``held`` column is
their sum while open, kept by the book under the account's lock and checked by
``connects verify``. A hold ends once: the update that ends it names ``held``.
"""

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
)

from connects.db.schema.base import ID, metadata, one_of
from connects.db.types import UTCDateTime
from connects.domain.vocabulary import BadgeStopReason, HoldStatus, OutcomeKind

holds = Table(
    "holds",
    metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("amount", Integer, nullable=False),  # held; a boost's bid (R35)
    Column("captured", Integer, nullable=False, server_default="0"),
    Column("status", String(16), nullable=False),
    Column("reason", String(200), nullable=False),  # what it holds for
    Column("ended_reason", String(200)),
    Column("proposal_id", ID),
    Column("job_id", ID),  # a boost: the job whose auction it bids in (R35)
    Column("member_id", ID),
    Column("entry_id", ID),  # the capture's entry: a return restores its lots (R36)
    Column("deadline", UTCDateTime),  # released then if still held (R34)
    Column("bid_at", UTCDateTime, nullable=False),  # when it reached its amount
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("captured >= 0 AND captured <= amount", name="captured_in_range"),
    one_of("status", HoldStatus, "status_known"),
)
Index("ix_holds_account_created", holds.c.account_id, holds.c.created_at)
# A job's auction: its boosts by bid (R35).
Index(
    "ix_holds_job_bid",
    holds.c.job_id,
    holds.c.amount,
    sqlite_where=holds.c.job_id.is_not(None),
    postgresql_where=holds.c.job_id.is_not(None),
)
Index("uq_holds_proposal", holds.c.proposal_id, unique=True)
# Holds with a deadline (boosts have none, so their inserts skip this index).
Index(
    "ix_holds_deadline",
    holds.c.deadline,
    sqlite_where=holds.c.deadline.is_not(None),
    postgresql_where=holds.c.deadline.is_not(None),
)

proposal_outcomes = Table(
    "proposal_outcomes",
    metadata,
    Column("proposal_id", ID, ForeignKey("proposals.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("account_id", ID, ForeignKey("accounts.id"), nullable=False),
    Column("actor_id", String(64)),
    Column("at", UTCDateTime, nullable=False),
    one_of("kind", OutcomeKind, "kind_known"),
)
Index("ix_proposal_outcomes_account_at", proposal_outcomes.c.account_id, proposal_outcomes.c.at)

badges = Table(
    "badges",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("weekly_max", Integer, nullable=False),
    Column("stopped_reason", String(32)),
    Column("day", Integer, nullable=False, server_default="0"),  # next instalment, 0..6
    Column("next_charge_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("weekly_max >= 0", name="weekly_max_nonnegative"),
    CheckConstraint("day BETWEEN 0 AND 6", name="day_range"),
    CheckConstraint(
        "stopped_reason IS NULL OR stopped_reason IN ("
        + ", ".join(f"'{r.value}'" for r in BadgeStopReason)
        + ")",
        name="stopped_reason_known",
    ),
)
Index(
    "ix_badges_due",
    badges.c.next_charge_at,
    sqlite_where=badges.c.enabled,
    postgresql_where=badges.c.enabled,
)

# What the operator sets for the whole marketplace (the badge's weekly price, R37).
market_settings = Table(
    "market_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
