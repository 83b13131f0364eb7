"""The decision half of auto top-up, taken inside the account's transaction (R20-R23).

When a transaction takes the balance down to the threshold, the decision to buy is a
``topups`` row written in that same transaction, under the account's lock: concurrent
spends are serialised, so each sees the top-ups decided before it and the monthly
limit holds. The row's ``(account_id, trigger_key)`` is unique and the key names the
ledger sequence number that crossed the line, so one crossing is one row. No money
moves here: :mod:`connects.services.topups` executes pending rows after the commit.

It sees the locked account through :class:`LockedAccount` (what
:class:`connects.services.book.AccountBook` offers), so the book can call it without
either module importing the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, select

from connects.db import measures
from connects.db.schema import auto_topup_settings, topups
from connects.db.sql import insert_ignore
from connects.domain.calendar import month_key, month_start, next_month_start, zone
from connects.domain.events import Event, TopUpDecided
from connects.domain.ids import new_id
from connects.domain.topup import LIMIT_REACHED, Decision, TopUpSettings, crossed, decide
from connects.domain.vocabulary import EventType, TopUpStatus, TopUpTrigger
from connects.metrics import TOPUPS
from connects.services import topup_state


class LockedAccount(Protocol):
    """An account locked in the current transaction (an ``AccountBook``)."""

    conn: Connection
    id: str
    now: datetime
    timezone: str
    balance: int
    held: int
    seq: int
    events: list[Event]
    topup_loaded: bool
    topup_row: dict[str, Any] | None

    def available(self) -> int: ...

    def emit(self, kind: str, payload: dict[str, Any], dedupe_key: str | None = None) -> None: ...


_SETTINGS = select(auto_topup_settings).where(
    auto_topup_settings.c.account_id == bindparam("account_id")
)


def load_settings(conn: Connection, account_id: str) -> TopUpSettings:
    """The account's settings; the defaults, switched off, until someone saves them."""
    row = conn.execute(_SETTINGS, {"account_id": account_id}).one_or_none()
    return settings_from(dict(row._mapping) if row is not None else None)


def settings_from(row: Mapping[str, Any] | None) -> TopUpSettings:
    """Settings from a stored row (None: never saved, so the defaults, switched off)."""
    if row is None:
        return TopUpSettings()
    return TopUpSettings(
        enabled=bool(row["enabled"]),
        per_topup=row["per_topup"],
        per_month=row["per_month"],
        threshold=row["threshold"],
        just_in_time=bool(row["just_in_time"]),
        mode=row["mode"],
        target=row["target"],
    )


def bought_this_month(
    conn: Connection, account_id: str, now: datetime, timezone: str
) -> tuple[str, int]:
    """``(month, bought)``: the month of ``now`` in the account's time zone
    (``YYYY-MM``) and what auto top-up and the business manager bought or are buying
    in it, the one count both the trigger and the manager's purchases check (R21, R48)."""
    tz = zone(timezone)
    month = month_key(now, tz)
    bought = conn.execute(
        select(
            measures.bought_in_limits(
                account_id, month, month_start(now, tz), next_month_start(now, tz)
            )
        )
    ).scalar_one()
    return month, int(bought)


def settings_of(book: LockedAccount) -> TopUpSettings:
    """The locked account's auto top-up settings."""
    if book.topup_loaded:
        return settings_from(book.topup_row)  # loaded with the account's lock
    return load_settings(book.conn, book.id)


def on_balance_drop(book: LockedAccount, before: int) -> str | None:
    """Decide a top-up if the balance less what holds keep (R34) fell from ``before``
    to the threshold (R20)."""
    settings = settings_of(book)
    free = book.balance - book.held
    if not settings.enabled or not crossed(before, free, settings.threshold):
        return None
    return decide_in(book, settings, trigger=settings.trigger, key=f"{settings.trigger}:{book.seq}")


def decide_in(
    book: LockedAccount,
    settings: TopUpSettings,
    *,
    trigger: str,
    key: str,
    need: int | None = None,
) -> str | None:
    """Record the decision for one trigger; the top-up's id, or None when nothing is due.

    A pending decision raises :class:`TopUpDecided`, executed after the commit. With
    the month's limit used up the row is ``skipped`` and one ``monthly_limit_reached``
    event per account and month is sent (R21). While auto top-up is paused or waits
    after a declined card (R42) the row is ``skipped`` with that reason, and a balance
    top-up skipped or failed for a cause that can go away waits to be tried again
    (R41, :mod:`connects.services.topup_state`).
    """
    month, bought = bought_this_month(book.conn, book.id, book.now, book.timezone)
    decision = decide(settings, balance=book.available(), bought_this_month=bought, need=need)
    if decision.buys:
        hold = topup_state.load_state(book.conn, book.id).holding(book.now)
        if hold is not None:
            decision = Decision(0, hold.value)
    if not decision.buys and decision.skipped is None:
        return None
    if not decision.buys and trigger == TopUpTrigger.JUST_IN_TIME:
        # A proposal the top-up cannot cover is refused; its retries, and every other
        # proposal refused for the same reason this month, share one history row, so a
        # member cannot fill the top-up history by submitting (R25).
        key = f"{trigger}:skipped:{month}:{decision.skipped}"
        earlier = book.conn.execute(
            select(topups.c.id).where(topups.c.account_id == book.id, topups.c.trigger_key == key)
        ).scalar()
        if earlier is not None:
            return str(earlier)
    topup_id = new_id("tup")
    inserted = insert_ignore(
        book.conn,
        topups,
        {
            "id": topup_id,
            "account_id": book.id,
            "trigger": trigger,
            "trigger_key": key,
            "month": month,
            "quantity": decision.quantity,
            # The price is set when the purchase is attempted (the catalog lives in
            # the context, not in the book); a skipped top-up costs nothing.
            "amount_cents": 0,
            "currency": "USD",
            "status": (TopUpStatus.PENDING if decision.buys else TopUpStatus.SKIPPED).value,
            "reason": decision.skipped,
            "purchase_id": None,
            "created_at": book.now,
            "completed_at": None if decision.buys else book.now,
        },
    )
    if not inserted:  # this trigger was decided before: one trigger, one row (R23)
        return None
    _after_decision(book, decision, topup_id, month, settings, bought, trigger)
    return topup_id


def _after_decision(
    book: LockedAccount,
    decision: Decision,
    topup_id: str,
    month: str,
    settings: TopUpSettings,
    bought: int,
    trigger: str,
) -> None:
    if decision.buys:
        book.events.append(TopUpDecided(book.id, topup_id))
        return
    TOPUPS.labels(TopUpStatus.SKIPPED.value).inc()
    topup_state.after_outcome(
        book.conn,
        book.id,
        topup_id,
        trigger=trigger,
        status=TopUpStatus.SKIPPED,
        reason=decision.skipped,
        now=book.now,
    )
    if decision.skipped == LIMIT_REACHED:
        book.emit(
            EventType.MONTHLY_LIMIT_REACHED,
            {
                "month": month,
                "per_month": settings.per_month,
                "bought_this_month": bought,
                "topup_id": topup_id,
                "trigger": trigger,
            },
            dedupe_key=f"monthly_limit_reached:{month}",
        )
