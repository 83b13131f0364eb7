"""the cost basis of Connects (R39)

* ``lots`` gain ``cost_cents`` (what the lot cost in all: a purchase's amount, else 0)
  and ``cost_left_cents`` (the cents its remaining Connects still carry), with CHECKs:
  ``0 <= cost_left_cents <= cost_cents``, and no cost left in an empty lot.
* ``allocations`` gain ``cost_cents``: the cents the entry's Connects carried out of
  (or back into) the lot.
* Existing rows get their cost: purchase lots the amount of the purchase whose entry
  credited them; each purchase lot's history is then replayed in entry order with the
  rule the code keeps (``domain.lots.cost_share``: a draw takes the floor of its share,
  the draw that empties the lot all that is left; a refund gives back exactly what the
  spend or capture it undoes took). Grant and reward lots, and their allocations, cost 0.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-23 10:00:00
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
CREDITS = ("purchase", "grant", "reward")

lots = sa.table(
    "lots",
    sa.column("id", ID),
    sa.column("source", sa.String()),
    sa.column("amount", sa.Integer()),
    sa.column("cost_cents", sa.BigInteger()),
    sa.column("cost_left_cents", sa.BigInteger()),
)
entries = sa.table(
    "entries",
    sa.column("id", ID),
    sa.column("seq", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("amount", sa.Integer()),
    sa.column("proposal_id", ID),
    sa.column("purchase_id", ID),
    sa.column("hold_id", ID),
)
allocations = sa.table(
    "allocations",
    sa.column("entry_id", ID),
    sa.column("lot_id", ID),
    sa.column("amount", sa.Integer()),
    sa.column("cost_cents", sa.BigInteger()),
)
purchases = sa.table("purchases", sa.column("id", ID), sa.column("amount_cents", sa.BigInteger()))


def _share(cost_left: int, remaining: int, take: int) -> int:
    """domain.lots.cost_share, copied: a migration never imports code that may change."""
    if take <= 0 or remaining <= 0:
        return 0
    if take >= remaining:
        return cost_left
    return cost_left * take // remaining


def _backfill() -> None:
    conn = op.get_bind()
    paid = conn.execute(
        sa.select(allocations.c.lot_id, purchases.c.amount_cents)
        .select_from(
            allocations.join(entries, entries.c.id == allocations.c.entry_id).join(
                purchases, purchases.c.id == entries.c.purchase_id
            )
        )
        .where(entries.c.kind == "purchase")
    ).all()
    costs = {lot_id: int(cents) for lot_id, cents in paid if cents}
    if not costs:
        return
    history = conn.execute(
        sa.select(
            allocations.c.lot_id,
            allocations.c.entry_id,
            allocations.c.amount,
            entries.c.kind,
            entries.c.amount.label("entry_amount"),
            entries.c.proposal_id,
            entries.c.hold_id,
        )
        .join(entries, entries.c.id == allocations.c.entry_id)
        .where(allocations.c.lot_id.in_(list(costs)))
        .order_by(allocations.c.lot_id, entries.c.seq)
    ).all()
    by_lot: dict[str, list[Any]] = defaultdict(list)
    for row in history:
        by_lot[row.lot_id].append(row)
    for lot_id, rows in by_lot.items():
        remaining, cost_left = 0, 0
        # what each spend or capture took from this lot, by what a refund names
        taken: dict[tuple[str, str], int] = {}
        for r in rows:
            n = int(r.amount)
            if r.kind in CREDITS:
                cost = costs[lot_id]
                remaining, cost_left = remaining + n, cost_left + cost
            elif r.entry_amount > 0:  # a refund: back what the undone draw took
                key = ("hold", r.hold_id) if r.hold_id else ("proposal", r.proposal_id)
                cost = min(taken.pop(key, 0), costs[lot_id] - cost_left)
                remaining, cost_left = remaining + n, cost_left + cost
            else:
                cost = _share(cost_left, remaining, n)
                remaining, cost_left = remaining - n, cost_left - cost
                if r.kind == "capture" and r.hold_id:
                    taken[("hold", r.hold_id)] = cost
                elif r.kind == "spend" and r.proposal_id:
                    taken[("proposal", r.proposal_id)] = cost
            if cost:
                conn.execute(
                    sa.update(allocations)
                    .where(allocations.c.entry_id == r.entry_id, allocations.c.lot_id == lot_id)
                    .values(cost_cents=cost)
                )
        conn.execute(
            sa.update(lots)
            .where(lots.c.id == lot_id)
            .values(cost_cents=costs[lot_id], cost_left_cents=cost_left if remaining else 0)
        )


def upgrade() -> None:
    with op.batch_alter_table("lots") as batch_op:
        batch_op.add_column(
            sa.Column("cost_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("cost_left_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("allocations") as batch_op:
        batch_op.add_column(
            sa.Column("cost_cents", sa.BigInteger(), server_default="0", nullable=False)
        )
    _backfill()
    with op.batch_alter_table("lots") as batch_op:
        batch_op.create_check_constraint(
            op.f("ck_lots_cost_left_in_range"),
            "cost_left_cents >= 0 AND cost_left_cents <= cost_cents",
        )
        batch_op.create_check_constraint(
            op.f("ck_lots_cost_leaves_with_connects"), "remaining > 0 OR cost_left_cents = 0"
        )
    with op.batch_alter_table("allocations") as batch_op:
        batch_op.create_check_constraint(op.f("ck_allocations_cost_nonnegative"), "cost_cents >= 0")


def downgrade() -> None:
    with op.batch_alter_table("allocations") as batch_op:
        batch_op.drop_constraint(op.f("ck_allocations_cost_nonnegative"), type_="check")
        batch_op.drop_column("cost_cents")
    with op.batch_alter_table("lots") as batch_op:
        batch_op.drop_constraint(op.f("ck_lots_cost_leaves_with_connects"), type_="check")
        batch_op.drop_constraint(op.f("ck_lots_cost_left_in_range"), type_="check")
        batch_op.drop_column("cost_left_cents")
        batch_op.drop_column("cost_cents")
