"""An account's ledger inside one write transaction.

:meth:`AccountBook.lock` takes the account row's lock (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so everything
done through the book is serialised per account: no two spenders see the same balance.
Every change to Connects is an immutable entry with the actor, the reason and the
balance after (R30), and every credit is a lot (R10). The book keeps the account's
balance and entry sequence in memory and writes them back in :meth:`save`.

A book opened with ``buffered=True`` also keeps its lot changes, entries, allocations
and events in memory and writes each kind in one statement at :meth:`flush` (which
:meth:`save` calls): a batch of proposals (group commit) costs a handful of round
trips, however many it holds. Anything that reads those tables back flushes first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from connects.db.schema import allocations, entries, events, lots
from connects.domain import lots as lotrules
from connects.domain.calendar import lot_expiry
from connects.domain.errors import NotFound
from connects.domain.events import Event
from connects.domain.ids import new_id
from connects.domain.lots import Lot, Take
from connects.domain.policy import SYSTEM, Actor
from connects.domain.results import entry_figures
from connects.domain.vocabulary import EntryKind
from connects.services import balance_alerts, holds, proposal_figures, topup_trigger
from connects.services import book_sql as sql


class AccountBook:
    """One account, locked for the length of the transaction."""

    def __init__(
        self,
        conn: Connection,
        row: Any,
        now: datetime,
        *,
        buffered: bool = False,
        events: list[Event] | None = None,
    ) -> None:
        self.conn = conn
        self.now = now
        self.buffered = buffered
        self.id: str = row.id
        self.kind: str = row.kind
        self.name: str = row.name
        self.owner_id: str = row.owner_id
        self.plan_id: str = row.plan
        self.timezone: str = row.timezone
        self.anchor_day: int = row.anchor_day
        self.next_cycle_at: datetime = row.next_cycle_at
        self.balance: int = row.balance
        self.earnings_cents: int = row.earnings_cents
        self.seq: int = row.seq
        # R34: Connects kept by open holds (their sum, under this lock; services.holds).
        self.held: int = row.held
        self._start = self._state()
        self._lots: dict[str, Lot] | None = None
        # What happened, for the message bus after commit (a decided top-up, R23);
        # shared with the transaction that locked the account (services.uow).
        self.events: list[Event] = events if events is not None else []
        # The auto top-up settings as loaded with the lock: a dict, None when the
        # account never saved any, or ``loaded`` False when the row came from elsewhere.
        self.topup_loaded = "topup_enabled" in row._mapping
        self.topup_row: dict[str, Any] | None = None
        if self.topup_loaded and row.topup_enabled is not None:
            self.topup_row = {c: getattr(row, f"topup_{c}") for c in sql.TOPUP_COLUMNS}
        # Writes held back until flush() (buffered books only).
        self._lot_deltas: dict[str, tuple[int, int]] = {}  # lot -> (Connects, cents)
        self._entry_rows: list[dict[str, Any]] = []
        self._allocation_rows: list[dict[str, Any]] = []
        self._event_rows: list[dict[str, Any]] = []
        # R39: what this transaction's entries add to each proposal's figures, written
        # at flush (buffered or not): [price, boost, cost cents].
        self._figures: dict[str, list[int]] = {}

    @classmethod
    def lock(
        cls,
        conn: Connection,
        account_id: str,
        now: datetime,
        *,
        buffered: bool = False,
        events: list[Event] | None = None,
    ) -> AccountBook:
        """Lock the account row and load it; ``not_found`` if there is none."""
        row = conn.execute(sql.LOCK, {"account_id": account_id}).one_or_none()
        if row is None:
            raise NotFound("no such account", account_id=account_id)
        return cls(conn, row, now, buffered=buffered, events=events)

    def flush(self) -> None:
        """Write the held-back lot changes, entries, allocations and events, and what
        the entries add to their proposals' figures (R39)."""
        deltas = [
            {"b_account_id": self.id, "lot_id": k, "delta": d, "cost_delta": c}
            for k, (d, c) in self._lot_deltas.items()
            if d or c
        ]
        proposal_figures.add(self.conn, self.id, self._figures)
        self._figures = {}
        for statement, rows in (
            (sql.LOT_ADD, deltas),
            (sql.INSERT_ENTRY, self._entry_rows),
            (sql.INSERT_ALLOCATIONS, self._allocation_rows),
            (sql.INSERT_EVENTS, self._event_rows),
        ):
            if rows:  # one row: a plain execute, cheaper than the executemany path
                statement.execute(self.conn, rows[0] if len(rows) == 1 else rows)
        self._lot_deltas = {}
        self._entry_rows = []
        self._allocation_rows = []
        self._event_rows = []

    # -- lots -----------------------------------------------------------------------

    def open_lots(self) -> list[Lot]:
        """Lots with Connects left (expired ones included until swept)."""
        if self._lots is None:
            self.flush()  # a reload must see this transaction's own lot changes
            rows = self.conn.execute(sql.OPEN_LOTS, {"account_id": self.id}).all()
            self._lots = {
                r.id: Lot(r.id, r.source, r.issued_at, r.expires_at, r.remaining, r.cost_left_cents)
                for r in rows
            }
        return list(self._lots.values())

    def available(self) -> int:
        """Spendable now: the balance less what open holds keep (R34) and what sits in
        expired, unswept lots (R12)."""
        return lotrules.available(self.open_lots(), self.now, self.held)

    def free(self) -> int:
        """The balance less what open holds keep: what auto top-up watches (R20, R34)."""
        return self.balance - self.held

    def _adjust_lots(self, takes: Sequence[Take], costs: Sequence[int], sign: int) -> None:
        if not takes:
            return
        if self.buffered:
            for (lot_id, take), cost in zip(takes, costs, strict=True):
                d, c = self._lot_deltas.get(lot_id, (0, 0))
                self._lot_deltas[lot_id] = (d + sign * take, c + sign * cost)
        else:
            sql.LOT_ADD.execute(
                self.conn,
                [
                    {
                        "b_account_id": self.id,
                        "lot_id": lot_id,
                        "delta": sign * take,
                        "cost_delta": sign * cost,
                    }
                    for (lot_id, take), cost in zip(takes, costs, strict=True)
                ],
            )
        if self._lots is not None:
            self._lots = lotrules.moved(self._lots, takes, costs, sign)

    # -- entries --------------------------------------------------------------------

    def _append(
        self,
        kind: str,
        amount: int,
        actor: Actor,
        takes: Sequence[Take],
        costs: Sequence[int],
        **refs: Any,
    ) -> str:
        self.seq += 1
        self.balance += amount
        if self.balance < 0:  # the allocation rules make this unreachable
            raise AssertionError(f"account {self.id} would go below zero")
        entry_id = refs.get("entry_id") or new_id("ent")
        row = {
            "id": entry_id,
            "account_id": self.id,
            "seq": self.seq,
            "at": self.now,
            "kind": kind,
            "amount": amount,
            "balance_after": self.balance,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "member_id": refs.get("member_id"),
            "proposal_id": refs.get("proposal_id"),
            "purchase_id": refs.get("purchase_id"),
            "topup_id": refs.get("topup_id"),
            "note": refs.get("note"),
            "dedupe_key": refs.get("dedupe_key"),
            "hold_id": refs.get("hold_id"),
        }
        shares = [
            {
                "account_id": self.id,
                "entry_id": entry_id,
                "lot_id": lot_id,
                "amount": t,
                "cost_cents": cost,
            }
            for (lot_id, t), cost in zip(takes, costs, strict=True)
        ]
        proposal_id: str | None = refs.get("proposal_id")
        if proposal_id is not None:
            adds = entry_figures(kind, amount, row["hold_id"] is not None, sum(costs))
            if adds is not None:
                had = self._figures.setdefault(proposal_id, [0, 0, 0])
                for i, v in enumerate(adds):
                    had[i] += v
        if self.buffered:
            self._entry_rows.append(row)
            self._allocation_rows.extend(shares)
            return entry_id
        sql.INSERT_ENTRY.execute(self.conn, row)
        if shares:
            sql.INSERT_ALLOCATIONS.execute(self.conn, shares)
        return entry_id

    def take_figures(self, proposal_id: str) -> list[int]:
        """What this book's entries add to the proposal's figures (R39), taken out of
        what :meth:`flush` writes: for a proposal not inserted yet, whose row carries it."""
        return self._figures.pop(proposal_id, [0, 0, 0])

    def has_entry(self, dedupe_key: str) -> bool:
        """Whether an entry with this dedupe key was already written (under the lock)."""
        self.flush()
        return (
            self.conn.execute(
                select(entries.c.id).where(
                    entries.c.account_id == self.id, entries.c.dedupe_key == dedupe_key
                )
            ).first()
            is not None
        )

    def credit(
        self,
        *,
        kind: str,
        source: str,
        amount: int,
        actor: Actor,
        issued_at: datetime | None = None,
        cost_cents: int = 0,
        **refs: Any,
    ) -> str:
        """A new lot of ``amount`` Connects expiring a year after issue (R10), costing
        ``cost_cents`` in all (R39: what a purchase paid; 0 for grants and rewards)."""
        if amount <= 0:
            raise ValueError("a credit is at least 1 Connect")
        if cost_cents < 0:
            raise ValueError("a lot's cost is never below zero")
        issued = issued_at or self.now
        lot = Lot(new_id("lot"), source, issued, lot_expiry(issued), amount, cost_cents)
        self.conn.execute(
            insert(lots),
            {
                "id": lot.id,
                "account_id": self.id,
                "source": source,
                "issued_at": issued,
                "expires_at": lot.expires_at,
                "amount": amount,
                "remaining": amount,
                "cost_cents": cost_cents,
                "cost_left_cents": cost_cents,
            },
        )
        if self._lots is not None:
            self._lots[lot.id] = lot
        return self._append(kind, amount, actor, [(lot.id, amount)], [cost_cents], **refs)

    def debit(self, *, kind: str, takes: Sequence[Take], actor: Actor, **refs: Any) -> str:
        """Take Connects out of the named lots, as the domain rules decided, with
        their share of each lot's cost (R39)."""
        total = sum(t for _, t in takes)
        costs = lotrules.draw_costs(self.open_lots(), takes)
        self._adjust_lots(takes, costs, -1)
        return self._append(kind, -total, actor, takes, costs, **refs)

    def give_back(self, entry_id: str, *, kind: str, actor: Actor, **refs: Any) -> str:
        """Put what entry ``entry_id`` took back into the lots it came from, keeping
        their expiry (R15, R36), and exactly the cents of cost it took (R39)."""
        self.flush()  # the entry's allocations may still be held back
        rows = self.conn.execute(
            select(allocations.c.lot_id, allocations.c.amount, allocations.c.cost_cents)
            .where(allocations.c.account_id == self.id, allocations.c.entry_id == entry_id)
            .order_by(allocations.c.lot_id)
        ).all()
        takes = [(r.lot_id, int(r.amount)) for r in rows]
        costs = [int(r.cost_cents) for r in rows]
        total = sum(t for _, t in takes)
        self._adjust_lots(takes, costs, +1)
        return self._append(kind, total, actor, takes, costs, **refs)

    def spend(self, amount: int, *, kind: str, actor: Actor, **refs: Any) -> str:
        """Spend ``amount`` from live lots, soonest-expiring first (R11, R14), never
        what open holds keep (R34)."""
        takes = lotrules.allocate(self.open_lots(), amount, self.now, self.held)
        return self.debit(kind=kind, takes=takes, actor=actor, **refs)

    def note(self, kind: str, *, actor: Actor, **refs: Any) -> str:
        """An entry that moves no Connects: a hold placed, raised or released (R34)."""
        return self._append(kind, 0, actor, [], [], **refs)

    def sweep_expired(self, actor: Actor = SYSTEM) -> int:
        """Write ``expire`` entries for lots past their expiry; returns Connects removed."""
        by_lot = {lot.id: lot for lot in self.open_lots()}
        removed = 0
        for lot_id, take in sorted(lotrules.expired(by_lot.values(), self.now)):
            lot = by_lot[lot_id]
            self.debit(
                kind=EntryKind.EXPIRE,
                takes=[(lot_id, take)],
                actor=actor,
                note=f"lot issued {lot.issued_at.date()} expired {lot.expires_at.date()}",
            )
            removed += take
        if removed:
            holds.cut_to_balance(self)  # held never above the balance (R34)
        return removed

    # -- events ---------------------------------------------------------------------

    def emit(self, kind: str, payload: dict[str, Any], dedupe_key: str | None = None) -> None:
        """Record an event in the outbox, in this transaction (R29)."""
        body = {"account_id": self.id, "balance": self.balance, **payload}
        if dedupe_key is not None:
            self.flush()
            exists = self.conn.execute(
                select(events.c.id).where(
                    events.c.account_id == self.id, events.c.dedupe_key == dedupe_key
                )
            ).first()
            if exists:
                return
        row = {
            "id": new_id("evt"),
            "account_id": self.id,
            "kind": kind,
            "payload": json.dumps(body, default=str, sort_keys=True),
            "created_at": self.now,
            "dedupe_key": dedupe_key,
        }
        if self.buffered:
            self._event_rows.append(row)
        else:
            sql.INSERT_EVENTS.execute(self.conn, row)

    # -- writing back ---------------------------------------------------------------

    def _state(self) -> tuple[int, int, int, datetime, int]:
        return (self.balance, self.seq, self.earnings_cents, self.next_cycle_at, self.held)

    def save(self) -> None:
        """Write the balance, sequence, earnings and cycle date back to the row.

        A transaction that took the balance down to the auto top-up threshold records
        the decision to top up here, before it commits (R20, R23), and one that crossed
        a low-balance level its alert, once (R45). Deciding on the transaction's final
        balance means a sweep followed by a credit buys and alerts nothing.
        """
        free_before = self._start[0] - self._start[4]
        if self.free() < free_before:
            topup_trigger.on_balance_drop(self, free_before)
        balance_alerts.on_save(self, self._start[0])
        self.flush()
        now = self._state()
        if now == self._start:
            return
        changed = {c: v for c, was, v in zip(sql.SAVED, self._start, now, strict=True) if was != v}
        values = {sql.SAVED[c]: v for c, v in changed.items()}
        sql.save_statement(tuple(changed)).execute(self.conn, {"account_id_": self.id, **values})
        self._start = now
