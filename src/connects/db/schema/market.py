"""The marketplace: jobs and the proposals that spend Connects on them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
from connects.domain.vocabulary import JobStatus, ProposalStatus

PRICE_BOOST = ("price_net", "boost_net")
FLAGS = ("boosted", "viewed", "interviewed", "hired")

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
    # R35: the boost auction closes at the first hire or at this time, then is stamped.
    Column("auction_closes_at", UTCDateTime),
    Column("auction_closed_at", UTCDateTime),
    CheckConstraint("connects_required >= 0", name="price_nonnegative"),
    one_of("status", JobStatus, "status_known"),
)
Index("ix_jobs_status_created", jobs.c.status, jobs.c.created_at)
Index(
    "ix_jobs_auction_due",
    jobs.c.auction_closes_at,
    sqlite_where=jobs.c.auction_closed_at.is_(None),
    postgresql_where=jobs.c.auction_closed_at.is_(None),
)

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
    # R39: what the proposal came to so far, kept by the writes that move it
    # (services/proposal_figures.py): its price and its captured boost net of returns,
    # their cost in cents, whether it was ever boosted, and what the client did (R38).
    # Results sum these columns; `connects verify` checks them against the ledger.
    *(Column(name, Integer, nullable=False, server_default="0") for name in PRICE_BOOST),
    Column("cost_net_cents", BigInteger, nullable=False, server_default="0"),
    *(Column(name, Integer, nullable=False, server_default="0") for name in FLAGS),
    # YYYY-MM of created_at in the account's zone: the month of results_months it counts in
    Column("sent_month", String(7), nullable=False),
    UniqueConstraint("job_id", "freelancer_id"),
    one_of("status", ProposalStatus, "status_known"),
    CheckConstraint(
        "price_net >= 0 AND boost_net >= 0 AND cost_net_cents >= 0", name="figures_nonnegative"
    ),
    *(CheckConstraint(f"{name} IN (0, 1)", name=f"{name}_flag") for name in FLAGS),
)
# The results read (R39) is one scan of this index: on PostgreSQL it carries every
# column the sums need, so the read never visits the table.
Index(
    "ix_proposals_account_created",
    proposals.c.account_id,
    proposals.c.created_at,
    postgresql_include=["freelancer_id", *PRICE_BOOST, "cost_net_cents", *FLAGS],
)

# R39: the proposals' figures summed by the month they were sent in (the account's
# zone), member and boosted or not; kept with the proposals' own figures by the same
# writes (services/proposal_figures.py). A results read takes whole months from here
# and only the part-months at a period's ends from the proposals.
results_months = Table(
    "results_months",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("member_id", ID, primary_key=True),
    Column("boosted", Integer, primary_key=True),
    Column("proposals", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in PRICE_BOOST),
    Column("cost_net_cents", BigInteger, nullable=False),
    *(Column(name, Integer, nullable=False) for name in FLAGS[1:]),
)
