"""Each proposal's figures for results (R39), kept on its own row by the writes that
move them, and their sums per month (the account's zone), member and boosted or not in
``results_months``, so results for any number of proposals read a few month rows and
the part-months at a period's ends.

* Sending proposals counts them in their months with what their spends took
  (:func:`sent`, one upsert a batch): the spends are made first and their figures
  taken from the book into the rows inserted (``AccountBook.take_figures``); boosted
  or not is fixed then (a boost comes with the proposal or never, R35).
* The book (``services.book``) adds what each later entry naming a proposal takes or
  gives back (``domain.results.entry_figures``), summed per proposal and written by
  :func:`add` when the book flushes: two statements for a whole group-commit batch.
* Recording an outcome (``services.boosts.record``) sets what it marks with
  :func:`mark` (R38); a change of the account's zone re-keys every proposal's month
  and sums the months again (:func:`rezone`).
* :func:`drift` works every proposal's figures out afresh from the ledger (entries,
  their allocations' cents, holds, outcomes), :func:`month_drift` every month row and
  every proposal's month; ``connects verify`` reports what disagrees. Migration 0018
  filled in existing proposals with the same sums.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.schema import (
    accounts,
    allocations,
    entries,
    holds,
    proposal_outcomes,
    proposals,
    results_months,
)
from connects.db.sql import Prepared
from connects.domain.calendar import month_key, month_starts, zone
from connects.domain.results import OUTCOME_MARKS
from connects.domain.vocabulary import EntryKind, OutcomeKind

FIGURES = ("price_net", "boost_net", "cost_net_cents", "boosted", "viewed", "interviewed", "hired")
MARKS = ("viewed", "interviewed", "hired")

SUMMED = ("price_net", "boost_net", "cost_net_cents")
_MONTH_OF = {  # the results_months row a proposal counts in, found from the proposal
    column: select(source)
    .where(proposals.c.account_id == bindparam("b_account_id"), proposals.c.id == bindparam("b_id"))
    .scalar_subquery()
    for column, source in (
        (results_months.c.month, proposals.c.sent_month),
        (results_months.c.member_id, proposals.c.freelancer_id),
        (results_months.c.boosted, proposals.c.boosted),
    )
}
_ADD = [
    Prepared(
        update(table)
        .where(*where)
        .values({name: table.c[name] + bindparam(f"d_{name}", type_=Integer) for name in SUMMED})
    )
    for table, where in (
        (
            proposals,
            (
                proposals.c.account_id == bindparam("b_account_id"),
                proposals.c.id == bindparam("b_id"),
            ),
        ),
        (
            results_months,
            (
                results_months.c.account_id == bindparam("b_account_id"),
                *(column == month_of for column, month_of in _MONTH_OF.items()),
            ),
        ),
    )
]


def sent(conn: Connection, account_id: str, rows: list[dict[str, Any]]) -> None:
    """Count newly sent proposals (their rows as inserted, with the figures their spends
    gave them) in their months' rows."""
    months: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["sent_month"], r["freelancer_id"], r["boosted"])
        month = months.get(key)
        if month is None:
            month = months[key] = {
                "account_id": account_id,
                "month": key[0],
                "member_id": key[1],
                "boosted": key[2],
                "proposals": 0,
                **dict.fromkeys((*SUMMED, *MARKS), 0),
            }
        month["proposals"] += 1
        for name in SUMMED:
            month[name] += r[name]
    _upsert(conn, list(months.values()))


def _upsert_statement(dialect_insert: Any) -> Prepared:
    adding = dialect_insert(results_months)
    summed = ("proposals", *SUMMED, *MARKS)
    return Prepared(
        adding.on_conflict_do_update(
            index_elements=["account_id", "month", "member_id", "boosted"],
            set_={n: results_months.c[n] + adding.excluded[n] for n in summed},
        )
    )


_UPSERT = {"postgresql": _upsert_statement(pg_insert), "sqlite": _upsert_statement(sqlite_insert)}


def _upsert(conn: Connection, values: list[dict[str, Any]]) -> None:
    """Add rows of sums to results_months, making the rows that are missing."""
    if values:
        _UPSERT[conn.dialect.name].execute(conn, values[0] if len(values) == 1 else values)


def add(conn: Connection, account_id: str, deltas: dict[str, list[int]]) -> None:
    """Add ``[price, boost, cents]`` to each named proposal of the account, and to the
    results_months row it counts in."""
    rows = [
        {
            "b_account_id": account_id,
            "b_id": pid,
            **{f"d_{name}": v for name, v in zip(SUMMED, d, strict=True)},
        }
        for pid, d in deltas.items()
        if any(d)
    ]
    if rows:
        for statement in _ADD:
            statement.execute(conn, rows[0] if len(rows) == 1 else rows)


def mark(conn: Connection, account_id: str, proposal_id: str, kind: OutcomeKind) -> None:
    """A new outcome of the proposal: set what it marks (viewed, interviewed, hired)
    that was not set yet, and count each newly set in the proposal's month. Each flag
    is set by a conditional update, so two outcomes at once count it once."""
    p, m = proposals.c, results_months.c
    mine = (p.account_id == account_id, p.id == proposal_id)
    for name in OUTCOME_MARKS.get(kind, ()):
        if conn.execute(update(proposals).where(*mine, p[name] == 0).values({name: 1})).rowcount:
            key = select(p.sent_month, p.freelancer_id, p.boosted).where(*mine)
            month, member, boosted = conn.execute(key).one()
            conn.execute(
                update(results_months)
                .where(
                    m.account_id == account_id,
                    m.month == month,
                    m.member_id == member,
                    m.boosted == boosted,
                )
                .values({name: m[name] + 1})
            )


def rezone(conn: Connection, account_id: str, tz: str) -> None:
    """The account's zone changed: every proposal's month is taken anew in ``tz`` and
    the account's results_months rows are summed again from its proposals."""
    p = proposals.c
    first, last = conn.execute(
        select(func.min(p.created_at), func.max(p.created_at)).where(p.account_id == account_id)
    ).one()
    if first is None:
        return
    months = month_starts(first, last, tz)
    key: Any = literal(months[0][0])
    if len(months) > 1:
        later = ((p.created_at >= start, name) for name, start in reversed(months[1:]))
        key = case(*later, else_=months[0][0])
    conn.execute(update(proposals).where(p.account_id == account_id).values(sent_month=key))
    conn.execute(delete(results_months).where(results_months.c.account_id == account_id))
    conn.execute(insert(results_months).from_select(_ROLLED, _rolled(account_id)))


_ROLLED = ("account_id", "month", "member_id", "boosted", "proposals", *SUMMED, *MARKS)


def _rolled(account_id: str | None) -> Any:
    """results_months as the proposals sum up (one account's, or every account's)."""
    p = proposals.c
    query = select(
        p.account_id,
        p.sent_month,
        p.freelancer_id,
        p.boosted,
        func.count(),
        *(func.sum(p[name]) for name in (*SUMMED, *MARKS)),
    ).group_by(p.account_id, p.sent_month, p.freelancer_id, p.boosted)
    if account_id is None:
        return query.execution_options(all_accounts=True)
    return query.where(p.account_id == account_id)


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


def month_drift(conn: Connection) -> list[tuple[str, str]]:
    """``(account, what)`` for each results_months row unlike what its proposals sum to,
    and each proposal whose month is not the one it was sent in, in its account's zone."""
    out: list[tuple[str, str]] = []
    kept_rows = conn.execute(
        select(*(results_months.c[n] for n in _ROLLED)).execution_options(all_accounts=True)
    )
    kept = {tuple(r[:4]): tuple(int(v) for v in r[4:]) for r in kept_rows}
    found = {tuple(r[:4]): tuple(int(v) for v in r[4:]) for r in conn.execute(_rolled(None))}
    for key in sorted(kept.keys() | found.keys()):
        if kept.get(key) != found.get(key):
            acct, month, member, boosted = key
            out.append(
                (
                    acct,
                    f"results_months {month} of {member} (boosted {boosted}) keeps"
                    f" {kept.get(key)}, its proposals sum to {found.get(key)}",
                )
            )
    zones = {
        r.id: zone(r.timezone)
        for r in conn.execute(
            select(accounts.c.id, accounts.c.timezone).execution_options(all_accounts=True)
        )
    }
    p = proposals.c
    sent_rows = conn.execute(
        select(p.account_id, p.id, p.created_at, p.sent_month).execution_options(all_accounts=True)
    )
    for acct, pid, created, month in sent_rows:
        want = month_key(created, zones[acct])
        if month != want:
            out.append((acct, f"proposal {pid} counts in month {month!r}, it was sent in {want}"))
    return out
