"""Each measure of an account's Connects, written once as SQL (the read side's rules).

Every reader (the API, the dashboard, the CLI, the worker's digest, the bulk cycle on
PostgreSQL) builds its query from these, so a rule changes in one place. Each measure
takes the account it is about as an expression: a bind parameter for one account, or
a column (``accounts.c.id``) to correlate a subquery for many. Times are expressions
too (bind parameters or values).

The same rules over lots already in memory are in :mod:`connects.domain.lots`
(:func:`~connects.domain.lots.available`, :func:`~connects.domain.lots.expiring`),
which the locked write path uses; a property test checks that both agree.

==========================  ===========================================================
measure                     rule
==========================  ===========================================================
:func:`expired_unswept`     Connects left in lots whose expiry has passed (R12)
:func:`held`                Connects kept by open holds (R34)
:func:`held_by_member`      those of one member's boosted proposals (R4, R35)
:func:`available`           balance less held less expired-unswept (R12, R34)
:func:`expiring`            Connects left in lots expiring in (now, horizon] (R12, R26)
:func:`usage`               a proposal's Connects, net of their refunds, counted in the
                            calendar month the proposal was submitted (R4, R26)
:func:`burn`                net Connects spent on proposals since a moment (forecast)
:func:`bought_by_topups`    Connects auto top-up bought or is buying in a month (R21)
:func:`bought_in_limits`    those and the business manager's own purchases of the month:
                            what uses up the monthly limit (R21, R48)
==========================  ===========================================================
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from connects.db.schema import entries, holds, lots, proposals, purchases, topups
from connects.domain.vocabulary import (
    ActorKind,
    EntryKind,
    HoldStatus,
    PurchaseStatus,
    TopUpStatus,
)

Expr = Any  # a value, a bind parameter or a column


def _is_usage() -> ColumnElement[bool]:
    # An OR, not IN: IN of literals is expanded again on every execution.
    return or_(*(entries.c.kind == kind.value for kind in EntryKind.usage()))


def lots_expired(account_id: Expr, now: Expr) -> list[ColumnElement[bool]]:
    """Open lots of ``account_id`` whose expiry has passed: never spendable (R12)."""
    return [lots.c.account_id == account_id, lots.c.remaining > 0, lots.c.expires_at <= now]


def lots_expiring(account_id: Expr, now: Expr, horizon: Expr) -> list[ColumnElement[bool]]:
    """Open lots of ``account_id`` expiring in (now, horizon] (R12)."""
    return [
        lots.c.account_id == account_id,
        lots.c.remaining > 0,
        lots.c.expires_at > now,
        lots.c.expires_at <= horizon,
    ]


def _lot_sum(conditions: list[ColumnElement[bool]]) -> Any:
    return select(func.coalesce(func.sum(lots.c.remaining), 0)).where(*conditions).scalar_subquery()


def expired_unswept(account_id: Expr, now: Expr) -> Any:
    """Connects in lots past their expiry that the sweep has not written off yet."""
    return _lot_sum(lots_expired(account_id, now))


def held(account_id: Expr) -> Any:
    """Connects kept by the account's open holds (R34)."""
    return (
        select(func.coalesce(func.sum(holds.c.amount), 0))
        .where(holds.c.account_id == account_id, holds.c.status == HoldStatus.HELD.value)
        .scalar_subquery()
    )


def held_by_member(account_id: Expr, member_id: Expr) -> Any:
    """Connects the open holds of one member's proposals keep (R4, R35)."""
    return (
        select(func.coalesce(func.sum(holds.c.amount), 0))
        .where(
            holds.c.account_id == account_id,
            holds.c.member_id == member_id,
            holds.c.status == HoldStatus.HELD.value,
        )
        .scalar_subquery()
    )


def available(account_id: Expr, balance: Expr, now: Expr) -> Any:
    """Spendable now: ``balance`` less what open holds keep (R34) and what sits in
    expired, unswept lots (R12)."""
    return balance - held(account_id) - expired_unswept(account_id, now)


def expiring(account_id: Expr, now: Expr, horizon: Expr) -> Any:
    """Connects left in lots expiring in (now, horizon]: "expiring in 30 days" (R12)."""
    return _lot_sum(lots_expiring(account_id, now, horizon))


def usage(account_id: Expr, since: Expr, member_id: Expr | None = None) -> list[Any]:
    """The entries counted as used since ``since`` (a month's start, R4, R26).

    A proposal's Connects count in the month it was submitted, net of their refunds:
    refunding a proposal from an earlier month gives the Connects back to the pool but
    neither widens this month's budget nor makes this month's use negative. With
    ``member_id``, only that member's proposals.
    """
    submitted = select(proposals.c.id).where(
        proposals.c.account_id == account_id, proposals.c.created_at >= since
    )
    conditions: list[Any] = [entries.c.account_id == account_id, _is_usage()]
    if member_id is not None:
        submitted = submitted.where(proposals.c.freelancer_id == member_id)
        conditions.append(entries.c.member_id == member_id)
    # A refund is never older than its proposal, so ``at`` narrows by index only.
    conditions += [entries.c.at >= since, entries.c.proposal_id.in_(submitted)]
    return conditions


def used(account_id: Expr, since: Expr, member_id: Expr | None = None) -> Any:
    """Connects used since ``since`` (:func:`usage`), as a positive scalar subquery."""
    return -(
        select(func.coalesce(func.sum(entries.c.amount), 0))
        .where(*usage(account_id, since, member_id))
        .scalar_subquery()
    )


def used_by_member(account_id: Expr, since: Expr) -> Any:
    """:func:`usage` summed per member: a subquery of ``(member_id, used)``."""
    return (
        select(entries.c.member_id, (-func.sum(entries.c.amount)).label("used"))
        .where(*usage(account_id, since))
        .group_by(entries.c.member_id)
        .subquery("used_by_member")
    )


def burn(account_id: Expr, since: Expr) -> Any:
    """Net Connects spent on proposals after ``since`` (spends less refunds, by the time
    each entry was written): the run-out forecast's rate over its window."""
    return -(
        select(func.coalesce(func.sum(entries.c.amount), 0))
        .where(entries.c.account_id == account_id, _is_usage(), entries.c.at > since)
        .scalar_subquery()
    )


def bought_by_topups(account_id: Expr, month: Expr) -> Any:
    """Connects auto top-up bought or is buying in ``month`` (``YYYY-MM`` in the
    account's time zone): what uses up the monthly limit (R21)."""
    return (
        select(func.coalesce(func.sum(topups.c.quantity), 0))
        .where(
            topups.c.account_id == account_id,
            topups.c.month == month,
            or_(*(topups.c.status == s.value for s in TopUpStatus.counted())),
        )
        .scalar_subquery()
    )


def bought_in_limits(account_id: Expr, month: Expr, since: Expr, until: Expr) -> Any:
    """Connects bought or being bought in ``month`` within the owner's auto top-up
    limits: auto top-up's (:func:`bought_by_topups`) and the business manager's own
    purchases made in [since, until), the same month's bounds (R21, R48).

    Auto top-up buys as the business manager too, but through a top-up row, so its
    purchases (those with a ``topup_id``) are counted once, by their top-up."""
    by_manager = (
        select(func.coalesce(func.sum(purchases.c.quantity), 0))
        .where(
            purchases.c.account_id == account_id,
            purchases.c.created_at >= since,
            purchases.c.created_at < until,
            purchases.c.actor_kind == ActorKind.BUSINESS_MANAGER.value,
            purchases.c.topup_id.is_(None),
            or_(*(purchases.c.status == s.value for s in PurchaseStatus.counted())),
        )
        .scalar_subquery()
    )
    return bought_by_topups(account_id, month) + by_manager
