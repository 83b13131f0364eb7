"""The ledger's invariants, checked for every account at once (R30).

For each account: the stored balance equals the sum of its entries, equals what is
left in its lots; its entries are numbered 1..seq with no gap and the last one's
``balance_after`` is the balance; every debit or credit entry moved exactly its
amount through its lots (allocations), and every allocation names an entry and a lot
of its own account (the database holds no foreign key for this: see migration 0006).
Holds (R34): the account's ``held`` is the sum of its open holds and at most its
balance, and every hold ended at most once: an open hold has no ending entry, an
ended one exactly one (a capture, or a release), and a capture spent what it took.
Cost (R39): every lot's cost is what its credit carried in, and the cost left in it is
that less what its debits carried out plus what refunds carried back, to the cent.
Results (R39): every proposal's kept figures are what its entries, their cents, its
holds and its outcomes add up to (``services.proposal_figures``), each counts in the
month it was sent in (the account's zone), and results_months holds their sums.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, case, func, or_, select

from connects.db import measures
from connects.db.schema import accounts, allocations, entries, holds, lots
from connects.domain.vocabulary import EntryKind, HoldStatus
from connects.services import proposal_figures
from connects.services.context import Context


@dataclass(frozen=True)
class Breach:
    account_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.account_id}: {self.what}"


def verify(ctx: Context) -> list[Breach]:
    """Every broken invariant (an empty list when the ledger is sound)."""
    e = (
        select(
            entries.c.account_id,
            func.sum(entries.c.amount).label("total"),
            func.count().label("n"),
            func.max(entries.c.seq).label("top"),
        )
        .group_by(entries.c.account_id)
        .subquery()
    )
    last = (
        select(entries.c.account_id, entries.c.balance_after)
        .join(accounts, (accounts.c.id == entries.c.account_id) & (accounts.c.seq == entries.c.seq))
        .subquery()
    )
    lot_sum = (
        select(lots.c.account_id, func.sum(lots.c.remaining).label("left"))
        .group_by(lots.c.account_id)
        .subquery()
    )
    moved = (
        select(
            allocations.c.account_id,
            allocations.c.entry_id,
            func.sum(allocations.c.amount).label("moved"),
        )
        .group_by(allocations.c.account_id, allocations.c.entry_id)
        .subquery()
    )
    breaches: list[Breach] = []
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(
                accounts.c.id,
                accounts.c.balance,
                accounts.c.seq,
                func.coalesce(e.c.total, 0),
                func.coalesce(e.c.n, 0),
                func.coalesce(e.c.top, 0),
                last.c.balance_after,
                func.coalesce(lot_sum.c.left, 0),
            )
            .outerjoin(e, e.c.account_id == accounts.c.id)
            .outerjoin(last, last.c.account_id == accounts.c.id)
            .outerjoin(lot_sum, lot_sum.c.account_id == accounts.c.id)
            .execution_options(all_accounts=True)  # every account: verify runs across shards
        ).all()
        for acct, balance, seq, total, n, top, last_after, left in rows:
            if balance != total:
                breaches.append(Breach(acct, f"balance {balance} != sum of entries {total}"))
            if balance != left:
                breaches.append(Breach(acct, f"balance {balance} != left in lots {left}"))
            if not (n == top == seq):
                breaches.append(
                    Breach(
                        acct,
                        f"entries numbered badly: {n} entries, highest {top}, account seq {seq}",
                    )
                )
            if seq and last_after != balance:
                breaches.append(Breach(acct, f"last balance_after {last_after} != {balance}"))
        bad_moves = conn.execute(
            select(entries.c.account_id, entries.c.id, entries.c.amount, moved.c.moved)
            .outerjoin(
                moved,
                and_(moved.c.account_id == entries.c.account_id, moved.c.entry_id == entries.c.id),
            )
            .where(func.abs(entries.c.amount) != func.coalesce(moved.c.moved, 0))
            .execution_options(all_accounts=True)
        ).all()
        for acct, entry_id, amount, got in bad_moves:
            breaches.append(
                Breach(acct, f"entry {entry_id} of {amount} moved {got or 0} through lots")
            )
        strays = conn.execute(
            select(allocations.c.account_id, allocations.c.entry_id, allocations.c.lot_id)
            .outerjoin(
                entries,
                and_(
                    entries.c.id == allocations.c.entry_id,
                    entries.c.account_id == allocations.c.account_id,
                ),
            )
            .outerjoin(
                lots,
                and_(
                    lots.c.id == allocations.c.lot_id,
                    lots.c.account_id == allocations.c.account_id,
                ),
            )
            .where(or_(entries.c.id.is_(None), lots.c.id.is_(None)))
            .execution_options(all_accounts=True)
        ).all()
        for acct, entry_id, lot_id in strays:
            breaches.append(
                Breach(
                    acct,
                    f"allocation of entry {entry_id} to lot {lot_id}"
                    " names an entry or lot the account does not have",
                )
            )
        breaches += _holds(conn)
        breaches += _costs(conn)
        for acct, pid, kept, found in proposal_figures.drift(conn):
            diff = ", ".join(f"{k} {kept[k]} != {found[k]}" for k in kept if kept[k] != found[k])
            breaches.append(Breach(acct, f"proposal {pid} keeps figures unlike its ledger: {diff}"))
        breaches += [Breach(acct, what) for acct, what in proposal_figures.month_drift(conn)]
    return breaches


def _costs(conn: Connection) -> list[Breach]:
    """R39: no lot's cost is lost or made up: cost = what its credit brought, cost
    left = the signed sum of the cost its allocations moved."""
    credit = entries.c.kind.in_(
        [EntryKind.PURCHASE.value, EntryKind.GRANT.value, EntryKind.REWARD.value]
    )
    signed = case((entries.c.amount > 0, allocations.c.cost_cents), else_=-allocations.c.cost_cents)
    moved = (
        select(
            allocations.c.account_id,
            allocations.c.lot_id,
            func.sum(case((credit, allocations.c.cost_cents), else_=0)).label("brought"),
            func.sum(signed).label("left"),
        )
        .join(
            entries,
            and_(
                entries.c.account_id == allocations.c.account_id,
                entries.c.id == allocations.c.entry_id,
            ),
        )
        .group_by(allocations.c.account_id, allocations.c.lot_id)
        .subquery()
    )
    found: list[Breach] = []
    for acct, lot_id, cost, left, brought, moved_left in conn.execute(
        select(
            lots.c.account_id,
            lots.c.id,
            lots.c.cost_cents,
            lots.c.cost_left_cents,
            func.coalesce(moved.c.brought, 0),
            func.coalesce(moved.c.left, 0),
        )
        .outerjoin(
            moved, and_(moved.c.account_id == lots.c.account_id, moved.c.lot_id == lots.c.id)
        )
        .where(
            or_(
                lots.c.cost_cents != func.coalesce(moved.c.brought, 0),
                lots.c.cost_left_cents != func.coalesce(moved.c.left, 0),
            )
        )
        .execution_options(all_accounts=True)  # every account's lots: across shards
    ):
        found.append(
            Breach(
                acct,
                f"lot {lot_id} cost {cost} (credited {brought}), {left} left"
                f" != {moved_left} by its allocations",
            )
        )
    return found


def _holds(conn: Connection) -> list[Breach]:
    """R34: held is the open holds' sum, at most the balance; each hold ended once."""
    found: list[Breach] = []
    for acct, held, balance, open_sum in conn.execute(
        select(
            accounts.c.id, accounts.c.held, accounts.c.balance, measures.held(accounts.c.id)
        ).execution_options(all_accounts=True)  # every account: across shards
    ):
        if held != open_sum:
            found.append(Breach(acct, f"held {held} != sum of open holds {open_sum}"))
        if held > balance:
            found.append(Breach(acct, f"held {held} > balance {balance}"))
    ending = or_(
        entries.c.kind == EntryKind.CAPTURE.value, entries.c.kind == EntryKind.RELEASE.value
    )
    ends = (
        select(
            entries.c.account_id,
            entries.c.hold_id,
            func.count().label("n"),
            func.coalesce(
                -func.sum(case((entries.c.kind == EntryKind.CAPTURE.value, entries.c.amount))), 0
            ).label("spent"),
        )
        .where(entries.c.hold_id.is_not(None), ending)
        .group_by(entries.c.account_id, entries.c.hold_id)
        .subquery()
    )
    for acct, hold_id, status, captured, n, spent in conn.execute(
        select(
            holds.c.account_id,
            holds.c.id,
            holds.c.status,
            holds.c.captured,
            func.coalesce(ends.c.n, 0),
            func.coalesce(ends.c.spent, 0),
        )
        .outerjoin(
            ends, and_(ends.c.account_id == holds.c.account_id, ends.c.hold_id == holds.c.id)
        )
        .execution_options(all_accounts=True)  # every account's holds: across shards
    ):
        want = 0 if status == HoldStatus.HELD else 1
        if n != want:
            found.append(Breach(acct, f"hold {hold_id} ({status}) ended {n} times"))
        if spent != captured:
            found.append(Breach(acct, f"hold {hold_id} captured {captured}, spent {spent}"))
    return found
