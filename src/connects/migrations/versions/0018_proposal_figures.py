"""each proposal keeps its figures for results (R39)

* ``proposals`` gain ``price_net`` and ``boost_net`` (its price and its captured boost,
  net of returns), ``cost_net_cents`` (their cost), and the flags ``boosted``,
  ``viewed``, ``interviewed``, ``hired`` (0 or 1), with CHECKs: the figures are never
  below zero, a flag is 0 or 1.
* Existing proposals get their figures from the ledger, as ``connects verify`` works
  them out (``services.proposal_figures``): the spends, captures and refunds naming
  them (on a hold: the boost), the cents their allocations carried, whether a hold was
  ever placed on them, and their outcomes (any client interaction is a view).
* ``ix_proposals_account_created`` carries those columns on PostgreSQL (``INCLUDE``),
  so a results read never visits the table.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-24 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

PRICE_BOOST = ("price_net", "boost_net")
FLAGS = ("boosted", "viewed", "interviewed", "hired")
INDEX = "ix_proposals_account_created"
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


def backfill_statements() -> list[str]:
    """The UPDATEs that set every proposal's figures from the ledger (bench/results.py
    seeds its data set with them too)."""
    out = []
    for columns, sums in FIGURES.items():
        names = [c.strip() for c in columns.split(",")]
        sets = ", ".join(f"{n} = s.{v}" for n, v in zip(names, "abc", strict=False))
        out.append(
            f"UPDATE proposals SET {sets} FROM ({sums}) AS s"
            " WHERE s.account_id = proposals.account_id AND s.proposal_id = proposals.id"
        )
    return out


def _backfill() -> None:
    for statement in backfill_statements():
        op.execute(statement)


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch_op:
        for name in PRICE_BOOST:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("cost_net_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        for name in FLAGS:
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
    _backfill()
    with op.batch_alter_table("proposals") as batch_op:
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
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(INDEX, table_name="proposals")
        op.create_index(INDEX, "proposals", ["account_id", "created_at"])
    with op.batch_alter_table("proposals") as batch_op:
        for name in reversed(FLAGS):
            batch_op.drop_constraint(op.f(f"ck_proposals_{name}_flag"), type_="check")
        batch_op.drop_constraint(op.f("ck_proposals_figures_nonnegative"), type_="check")
        for name in ("hired", "interviewed", "viewed", "boosted", "cost_net_cents", *PRICE_BOOST):
            batch_op.drop_column(name)
