"""each proposal keeps its figures for results (R39)

* ``proposals`` gain ``price_net`` and ``boost_net`` (its price and its captured boost,
  net of returns), ``cost_net_cents`` (their cost), and the flags ``boosted``,
  ``viewed``, ``interviewed``, ``hired`` (0 or 1), with CHECKs: the figures are never
  below zero, a flag is 0 or 1.
* Existing proposals get their figures from the ledger, as ``connects verify`` works
  them out (``services.proposal_figures``): the spends, captures and refunds naming
  them (on a hold: the boost), the cents their allocations carried, whether a hold was
  ever placed on them, and their outcomes (any client interaction is a view).
* ``proposals.sent_month``: the month (``YYYY-MM``, the account's zone) it was sent in;
  ``results_months`` sums the figures by account, month, member and boosted or not, so
  a results read over whole months never touches the proposals.
* ``ix_proposals_account_created`` carries those columns on PostgreSQL (``INCLUDE``),
  so a results read never visits the table.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-24 10:00:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PRICE_BOOST = ("price_net", "boost_net")
FLAGS = ("boosted", "viewed", "interviewed", "hired")
INDEX = "ix_proposals_account_created"
ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
USAGE = "('spend', 'refund', 'capture')"

# Each proposal's sums, one row per (account, proposal) that has any; proposals with
# none keep the columns' default 0. UPDATE ... FROM: SQLite 3.33+ and PostgreSQL.
FIGURES = {
    "price_net, boost_net": f"""
        SELECT account_id, proposal_id,
               SUM(CASE WHEN hold_id IS NULL THEN -amount ELSE 0 END) AS a,
               SUM(CASE WHEN hold_id IS NOT NULL THEN -amount ELSE 0 END) AS b
        FROM entries WHERE proposal_id IS NOT NULL AND kind IN {USAGE}
        GROUP BY account_id, proposal_id""",
    "cost_net_cents": f"""
        SELECT e.account_id, e.proposal_id,
               SUM(CASE WHEN e.amount < 0 THEN al.cost_cents ELSE -al.cost_cents END) AS a
        FROM entries e JOIN allocations al
             ON al.account_id = e.account_id AND al.entry_id = e.id
        WHERE e.proposal_id IS NOT NULL AND e.kind IN {USAGE}
        GROUP BY e.account_id, e.proposal_id""",
    "boosted": """
        SELECT DISTINCT account_id, proposal_id, 1 AS a
        FROM holds WHERE proposal_id IS NOT NULL""",
    "viewed, interviewed, hired": """
        SELECT account_id, proposal_id,
               MAX(CASE WHEN kind IN ('viewed', 'interviewed', 'declined', 'hired')
                   THEN 1 ELSE 0 END) AS a,
               MAX(CASE WHEN kind = 'interviewed' THEN 1 ELSE 0 END) AS b,
               MAX(CASE WHEN kind = 'hired' THEN 1 ELSE 0 END) AS c
        FROM proposal_outcomes GROUP BY account_id, proposal_id""",
}


def _month_starts(first: datetime, last: datetime, tz: str) -> list[tuple[str, datetime]]:
    """domain.calendar.month_starts, copied: a migration never imports code that may
    change. ``(YYYY-MM, its first instant in UTC)`` from ``first``'s month to ``last``'s."""
    local = ZoneInfo(tz)
    at, end = first.astimezone(local), last.astimezone(local)
    y, m = at.year, at.month
    out = []
    while (y, m) <= (end.year, end.month):
        out.append((f"{y:04d}-{m:02d}", datetime(y, m, 1, tzinfo=local).astimezone(UTC)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _naive_utc(moment: Any) -> datetime:
    """A stored time (SQLite keeps times as text) as an aware UTC datetime."""
    at: datetime = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def backfill(conn: Any) -> None:
    """Every proposal's figures from the ledger, the month it was sent in (its account's
    zone), and results_months summed from them (bench/results.py seeds with this too)."""
    for columns, sums in FIGURES.items():
        names = [c.strip() for c in columns.split(",")]
        sets = ", ".join(f"{n} = s.{v}" for n, v in zip(names, "abc", strict=False))
        conn.execute(
            sa.text(
                f"UPDATE proposals SET {sets} FROM ({sums}) AS s"
                " WHERE s.account_id = proposals.account_id AND s.proposal_id = proposals.id"
            )
        )
    spans = conn.execute(
        sa.text(
            "SELECT a.id, a.timezone, MIN(p.created_at), MAX(p.created_at) FROM accounts a"
            " JOIN proposals p ON p.account_id = a.id GROUP BY a.id, a.timezone"
        )
    ).all()
    for account_id, tz, first, last in spans:
        months = _month_starts(_naive_utc(first), _naive_utc(last), tz)
        params: dict[str, Any] = {"a": account_id, "m0": months[0][0]}
        whens = []
        for i, (name, start) in reversed(list(enumerate(months))[1:]):
            whens.append(f"WHEN created_at >= :s{i} THEN :m{i}")
            params.update({f"s{i}": start.replace(tzinfo=None), f"m{i}": name})
        key = f"CASE {' '.join(whens)} ELSE :m0 END" if whens else ":m0"
        conn.execute(
            sa.text(f"UPDATE proposals SET sent_month = {key} WHERE account_id = :a"), params
        )
    summed = ", ".join(f"SUM({n})" for n in (*PRICE_BOOST, "cost_net_cents", *FLAGS[1:]))
    conn.execute(
        sa.text(
            "INSERT INTO results_months (account_id, month, member_id, boosted, proposals,"
            f" {', '.join((*PRICE_BOOST, 'cost_net_cents', *FLAGS[1:]))})"
            f" SELECT account_id, sent_month, freelancer_id, boosted, COUNT(*), {summed}"
            " FROM proposals GROUP BY account_id, sent_month, freelancer_id, boosted"
        )
    )


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch_op:
        for name in PRICE_BOOST:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("cost_net_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        for name in FLAGS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("sent_month", sa.String(7), server_default="", nullable=False)
        )
    op.create_table(
        "results_months",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("boosted", sa.Integer(), nullable=False),
        sa.Column("proposals", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in PRICE_BOOST),
        sa.Column("cost_net_cents", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in FLAGS[1:]),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_results_months_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "month", "member_id", "boosted", name=op.f("pk_results_months")
        ),
    )
    backfill(op.get_bind())
    with op.batch_alter_table("proposals") as batch_op:
        batch_op.alter_column("sent_month", server_default=None)  # each insert names it
        batch_op.create_check_constraint(
            op.f("ck_proposals_figures_nonnegative"),
            "price_net >= 0 AND boost_net >= 0 AND cost_net_cents >= 0",
        )
        for name in FLAGS:
            batch_op.create_check_constraint(op.f(f"ck_proposals_{name}_flag"), f"{name} IN (0, 1)")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="proposals")
        op.create_index(
            INDEX,
            "proposals",
            ["account_id", "created_at"],
            postgresql_include=["freelancer_id", *PRICE_BOOST, "cost_net_cents", *FLAGS],
        )


def downgrade() -> None:
    op.drop_table("results_months")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="proposals")
        op.create_index(INDEX, "proposals", ["account_id", "created_at"])
    with op.batch_alter_table("proposals") as batch_op:
        for name in reversed(FLAGS):
            batch_op.drop_constraint(op.f(f"ck_proposals_{name}_flag"), type_="check")
        batch_op.drop_constraint(op.f("ck_proposals_figures_nonnegative"), type_="check")
        for name in ("sent_month", *reversed(FLAGS), "cost_net_cents", *PRICE_BOOST):
            batch_op.drop_column(name)
