"""The availability badge (R37): a freelancer's weekly spend in daily instalments.

The operator sets the weekly price (``market_settings``; a new price applies from the
next charge). The owner switches the badge on with a weekly maximum. Each day's
instalment (:func:`connects.domain.boosts.instalments`) is spent by the due work, the
first one at once when the badge is switched on. A charge finds the price above the
maximum, or too few Connects after a just-in-time top-up: the badge switches off with
a ``badge_stopped`` event naming the reason. Badge Connects never come back.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from connects.db.schema import badges, market_settings
from connects.domain import boosts as rules
from connects.domain.commands import SetBadge, SetBadgePrice
from connects.domain.errors import (
    ConnectsError,
    Forbidden,
    FreelancerOnly,
    InsufficientConnects,
    InvalidRequest,
)
from connects.domain.policy import SYSTEM, Action, Actor, Role
from connects.domain.vocabulary import AccountKind, BadgeStopReason, EntryKind, EventType
from connects.services import topup_runner
from connects.services.access import authorize
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.uow import UnitOfWork

PRICE = "badge_weekly_price"
DAY = timedelta(days=1)
MAX_WEEKLY = 10_000


def weekly_price(conn: Connection) -> int:
    """The badge's weekly price in Connects, as the operator last set it (R37)."""
    value = conn.execute(select(market_settings.c.value).where(market_settings.c.name == PRICE))
    found = value.scalar()
    return rules.DEFAULT_BADGE_PRICE if found is None else int(found)


def _row(conn: Connection, account_id: str) -> Any:
    return conn.execute(select(badges).where(badges.c.account_id == account_id)).one_or_none()


def _shown(row: Any, price: int) -> dict[str, Any]:
    return {
        "enabled": bool(row.enabled) if row else False,
        "weekly_max": row.weekly_max if row else None,
        "weekly_price": price,
        "stopped_reason": row.stopped_reason if row else None,
        "next_charge_at": row.next_charge_at if row and row.enabled else None,
        "instalments": rules.instalments(price),
    }


def get_badge(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """The badge as the account's members see it (R37)."""
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, ctx.now())
        return _shown(_row(conn, account_id), weekly_price(conn))


def set_price(cmd: SetBadgePrice, uow: UnitOfWork) -> dict[str, Any]:
    """The operator sets the weekly price; it applies from the next charge (R37)."""
    weekly = cmd.weekly
    if isinstance(weekly, bool) or not isinstance(weekly, int) or not 0 <= weekly <= MAX_WEEKLY:
        raise InvalidRequest(
            f"weekly must be a whole number from 0 to {MAX_WEEKLY}", field="weekly"
        )
    with uow.begin() as tx:
        done = tx.conn.execute(
            update(market_settings)
            .where(market_settings.c.name == PRICE)
            .values(value=weekly, updated_at=tx.now)
        ).rowcount
        if not done:
            tx.conn.execute(
                insert(market_settings), {"name": PRICE, "value": weekly, "updated_at": tx.now}
            )
    return {"weekly": weekly, "instalments": rules.instalments(weekly)}


def set_badge(cmd: SetBadge, uow: UnitOfWork) -> dict[str, Any]:
    """The owner switches the badge and sets its weekly maximum (R37). Switching it on
    charges the first instalment at once (a just-in-time top-up may cover it, R22);
    a price above the maximum is refused, naming ``weekly_max``."""
    if cmd.weekly_max is not None and (
        isinstance(cmd.weekly_max, bool) or not 0 <= cmd.weekly_max <= MAX_WEEKLY
    ):
        raise InvalidRequest(f"weekly_max must be 0 to {MAX_WEEKLY}", field="weekly_max")
    try:
        return _set(cmd, uow)
    except InsufficientConnects as short:
        need = int(short.details.get("required", 0))
        if topup_runner.just_in_time(uow, cmd.account_id, need=need, attempt="badge") is None:
            raise
    return _set(cmd, uow)


def _set(cmd: SetBadge, uow: UnitOfWork) -> dict[str, Any]:
    with uow.begin() as tx:
        actor = tx.authorize(cmd.account_id, cmd.who, Action.MANAGE)
        if actor.kind == "user" and actor.role is not Role.OWNER:
            raise Forbidden("only the owner switches the badge")
        book = tx.book(cmd.account_id)
        if book.kind != AccountKind.FREELANCER:
            raise FreelancerOnly("the availability badge is for freelancer accounts")
        row = _row(tx.conn, book.id)
        price = weekly_price(tx.conn)
        enabled = bool(row.enabled) if row else False
        wanted = enabled if cmd.enabled is None else cmd.enabled
        weekly_max = (
            cmd.weekly_max if cmd.weekly_max is not None else (row.weekly_max if row else price)
        )
        values: dict[str, Any] = {"weekly_max": weekly_max, "updated_at": tx.now, "enabled": wanted}
        if wanted and not enabled:
            if price > weekly_max:
                raise InvalidRequest(
                    f"the badge costs {price} Connects a week, above the maximum {weekly_max}",
                    field="weekly_max",
                    weekly_price=price,
                )
            _charge(book, price, 0, actor)
            values.update(
                stopped_reason=None, day=1 % rules.BADGE_DAYS, next_charge_at=tx.now + DAY
            )
        elif not wanted:
            values.update(next_charge_at=None)
        if row is None:
            tx.conn.execute(insert(badges), {"account_id": book.id, "day": 0, **values})
        else:
            tx.conn.execute(update(badges).where(badges.c.account_id == book.id).values(**values))
        return _shown(_row(tx.conn, book.id), price)


def _charge(book: AccountBook, price: int, day: int, actor: Actor) -> int:
    """Spend day ``day``'s instalment of ``price``; ``insufficient_connects`` if short."""
    amount = rules.instalments(price)[day]
    if amount:
        book.sweep_expired()
        book.spend(
            amount,
            kind=EntryKind.BADGE,
            actor=actor,
            note=f"availability badge, day {day + 1} of 7 ({price} a week)",
        )
    return amount


def _stop(book: AccountBook, reason: BadgeStopReason, price: int, weekly_max: int) -> None:
    book.conn.execute(
        update(badges)
        .where(badges.c.account_id == book.id)
        .values(
            enabled=False, stopped_reason=reason.value, next_charge_at=None, updated_at=book.now
        )
    )
    book.emit(
        EventType.BADGE_STOPPED,
        {"reason": reason.value, "weekly_price": price, "weekly_max": weekly_max},
    )


_DUE = (
    select(badges.c.account_id)
    .where(badges.c.enabled, badges.c.next_charge_at.is_not(None))
    .execution_options(all_accounts=True)  # the due work's sweep across shards
)


def charge_due(ctx: Context, batch: int = 500) -> int:
    """The due work: every badge's instalments that fell due, one day at a time (R37).
    Instalments charged."""
    now = ctx.now()
    with ctx.db.read() as conn:
        due = list(conn.execute(_DUE.where(badges.c.next_charge_at <= now).limit(batch)).scalars())
    charged = 0
    uow = UnitOfWork(ctx)
    for account_id in due:
        charged += _charge_account(uow, account_id, now)
    if ctx.bus is not None:
        ctx.bus.publish(ctx, uow.collect())
    return charged


def _charge_account(uow: UnitOfWork, account_id: str, now: datetime) -> int:
    charged = 0
    topped = False
    while True:
        try:
            with uow.begin(now) as tx:
                book = tx.book(account_id)
                row = _row(tx.conn, account_id)
                if row is None or not row.enabled or row.next_charge_at is None:
                    return charged
                if row.next_charge_at > now:
                    return charged
                price = weekly_price(tx.conn)
                if price > row.weekly_max:
                    _stop(book, BadgeStopReason.PRICE_ABOVE_MAXIMUM, price, row.weekly_max)
                    return charged
                try:
                    _charge(book, price, row.day, SYSTEM)
                except InsufficientConnects:
                    if topped:
                        _stop(book, BadgeStopReason.INSUFFICIENT_CONNECTS, price, row.weekly_max)
                        return charged
                    raise
                tx.conn.execute(
                    update(badges)
                    .where(badges.c.account_id == account_id)
                    .values(
                        day=(row.day + 1) % rules.BADGE_DAYS,
                        next_charge_at=row.next_charge_at + DAY,
                        updated_at=now,
                    )
                )
                charged += 1
                topped = False
        except InsufficientConnects as short:
            topped = True  # the next try stops the badge if still short
            need = int(short.details.get("required", 0))
            with contextlib.suppress(ConnectsError):  # short still: the next try stops it
                topup_runner.just_in_time(uow, account_id, need=need, attempt="badge")
