"""Each proposal's figures for results (R39), kept on its own row by the writes that
move them, so that results for any number of proposals are one scan of one index.

* The book (``services.book``) adds what each entry naming a proposal takes or gives
  back (``domain.results.entry_figures``), summed per proposal and written by
  :func:`add` when the book flushes: one statement for a whole group-commit batch.
* Recording an outcome (``services.boosts.record_outcome``) marks what the client did
  with :func:`mark` (R38).
* :func:`drift` works every proposal's figures out afresh from the ledger (entries,
  their allocations' cents, holds, outcomes) and lists those whose row disagrees:
  ``connects verify`` reports them. Migration 0018 filled in the proposals it found
  with the same sums.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, case, func, or_, select, update

from connects.db.schema import allocations, entries, holds, proposal_outcomes, proposals
from connects.db.sql import Prepared
from connects.domain.results import OUTCOME_MARKS
from connects.domain.vocabulary import EntryKind, OutcomeKind

FIGURES = (
    "price_net",
    "boost_net",
    "cost_net_cents",
    "boosted",
    "viewed",
    "interviewed",
    "hired",
)

_ADD = Prepared(
    update(proposals)
    .where(proposals.c.account_id == bindparam("b_account_id"), proposals.c.id == bindparam("b_id"))
    .values(
        price_net=proposals.c.price_net + bindparam("d_price", type_=Integer),
        boost_net=proposals.c.boost_net + bindparam("d_boost", type_=Integer),
        cost_net_cents=proposals.c.cost_net_cents + bindparam("d_cents", type_=Integer),
        boosted=proposals.c.boosted.op("|")(bindparam("d_boosted", type_=Integer)),
    )
)


def add(conn: Connection, account_id: str, deltas: dict[str, list[int]]) -> None:
    """Add ``[price, boost, cents, boosted]`` to each named proposal of the account."""
    rows = [
        {
            "b_account_id": account_id,
            "b_id": pid,
            "d_price": d[0],
            "d_boost": d[1],
            "d_cents": d[2],
            "d_boosted": d[3],
        }
        for pid, d in deltas.items()
    ]
    if rows:
        _ADD.execute(conn, rows[0] if len(rows) == 1 else rows)


def mark(conn: Connection, account_id: str, proposal_id: str, kind: OutcomeKind) -> None:
    """A new outcome of the proposal: set what it marks (viewed, interviewed, hired)."""
    marks = OUTCOME_MARKS.get(kind)
    if marks:
        conn.execute(
            update(proposals)
            .where(proposals.c.account_id == account_id, proposals.c.id == proposal_id)
            .values({name: 1 for name in marks})
        )


def _drifted() -> Any:
    """The proposals whose figures are not what the ledger says, with both."""
    usage = and_(
        entries.c.kind.in_([k.value for k in EntryKind.usage()]),
        entries.c.proposal_id.is_not(None),
    )
    key = (entries.c.account_id, entries.c.proposal_id)
    money = (
        select(
            *key,
            func.sum(case((entries.c.hold_id.is_(None), -entries.c.amount), else_=0)).label(
                "price"
            ),
            func.sum(case((entries.c.hold_id.is_not(None), -entries.c.amount), else_=0)).label(
                "boost"
            ),
        )
        .where(usage)
        .group_by(*key)
        .subquery()
    )
    cost = (
        select(
            *key,
            func.sum(
                case(
                    (entries.c.amount < 0, allocations.c.cost_cents),
                    else_=-allocations.c.cost_cents,
                )
            ).label("cents"),
        )
        .join(
            allocations,
            (allocations.c.account_id == entries.c.account_id)
            & (allocations.c.entry_id == entries.c.id),
        )
        .where(usage)
        .group_by(*key)
        .subquery()
    )

    def had(name: str) -> Any:
        kinds = [k.value for k, marks in OUTCOME_MARKS.items() if name in marks]
        return func.max(case((proposal_outcomes.c.kind.in_(kinds), 1), else_=0)).label(name)

    outs = (
        select(
            proposal_outcomes.c.account_id,
            proposal_outcomes.c.proposal_id,
            had("viewed"),
            had("interviewed"),
            had("hired"),
        )
        .group_by(proposal_outcomes.c.account_id, proposal_outcomes.c.proposal_id)
        .subquery()
    )
    boosted = (
        select(holds.c.account_id, holds.c.proposal_id)
        .where(holds.c.proposal_id.is_not(None))
        .distinct()
        .subquery()
    )

    def on(sub: Any) -> Any:
        return and_(sub.c.account_id == proposals.c.account_id, sub.c.proposal_id == proposals.c.id)

    found = (
        func.coalesce(money.c.price, 0),
        func.coalesce(money.c.boost, 0),
        func.coalesce(cost.c.cents, 0),
        case((boosted.c.proposal_id.is_not(None), 1), else_=0),
        func.coalesce(outs.c.viewed, 0),
        func.coalesce(outs.c.interviewed, 0),
        func.coalesce(outs.c.hired, 0),
    )
    return (
        select(
            proposals.c.account_id,
            proposals.c.id,
            *(proposals.c[name] for name in FIGURES),
            *(value.label(f"found_{name}") for name, value in zip(FIGURES, found, strict=True)),
        )
        .outerjoin(money, on(money))
        .outerjoin(cost, on(cost))
        .outerjoin(outs, on(outs))
        .outerjoin(boosted, on(boosted))
        .where(
            or_(*(proposals.c[name] != value for name, value in zip(FIGURES, found, strict=True)))
        )
        .execution_options(all_accounts=True)  # every proposal: verify runs across shards
    )


def drift(conn: Connection) -> list[tuple[str, str, dict[str, int], dict[str, int]]]:
    """``(account, proposal, kept, from the ledger)`` for each proposal whose row's
    figures are not what its entries, holds and outcomes add up to."""
    return [
        (
            row.account_id,
            row.id,
            {name: int(row._mapping[name]) for name in FIGURES},
            {name: int(row._mapping[f"found_{name}"]) for name in FIGURES},
        )
        for row in conn.execute(_drifted())
    ]
