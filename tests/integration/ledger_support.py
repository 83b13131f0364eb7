"""Helpers for the ledger tests: reading balances, lots and entries, snapshots, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from connects.db.schema import accounts, entries, events, lots, proposals
from connects.domain.errors import ConnectsError
from connects.services import views
from connects.services.context import Context
from tests.world import World

FEB_15 = datetime(2026, 2, 15, tzinfo=UTC)
MAR_15 = datetime(2026, 3, 15, tzinfo=UTC)
APR_15 = datetime(2026, 4, 15, tzinfo=UTC)


@pytest.fixture(name="world")
def world_fixture(any_ctx: Context) -> World:
    return World(any_ctx)


def available(ctx: Context, account_id: str) -> int:
    """Spendable Connects now, as every reader sees them (R12)."""
    with ctx.db.read() as conn:
        return views.available(conn, account_id, ctx.now())


def stored_balance(ctx: Context, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id)).scalar_one()
        )


def earnings(ctx: Context, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(
                select(accounts.c.earnings_cents).where(accounts.c.id == account_id)
            ).scalar_one()
        )


def lots_of(ctx: Context, account_id: str) -> list[Any]:
    """Every lot of the account, oldest first."""
    with ctx.db.read() as conn:
        return list(
            conn.execute(
                select(lots)
                .where(lots.c.account_id == account_id)
                .order_by(lots.c.issued_at, lots.c.id)
            ).all()
        )


def entries_of(ctx: Context, account_id: str, kind: str | None = None) -> list[Any]:
    """The account's entries in sequence order."""
    query = select(entries).where(entries.c.account_id == account_id)
    if kind is not None:
        query = query.where(entries.c.kind == kind)
    with ctx.db.read() as conn:
        return list(conn.execute(query.order_by(entries.c.seq)).all())


def events_of(ctx: Context, account_id: str, kind: str) -> list[Any]:
    with ctx.db.read() as conn:
        return list(
            conn.execute(
                select(events)
                .where(events.c.account_id == account_id, events.c.kind == kind)
                .order_by(events.c.created_at, events.c.id)
            ).all()
        )


def proposal(ctx: Context, proposal_id: str) -> Any:
    with ctx.db.read() as conn:
        return conn.execute(select(proposals).where(proposals.c.id == proposal_id)).one()


def snapshot(ctx: Context) -> tuple[Any, ...]:
    """Balances, entries, lots and proposals of every account (R32: refusals change none)."""
    with ctx.db.read() as conn:
        accts = conn.execute(
            select(
                accounts.c.id,
                accounts.c.balance,
                accounts.c.seq,
                accounts.c.earnings_cents,
                accounts.c.next_cycle_at,
                accounts.c.plan,
            ).order_by(accounts.c.id)
        ).all()
        ents = conn.execute(
            select(entries.c.id, entries.c.amount, entries.c.kind).order_by(entries.c.id)
        ).all()
        lts = conn.execute(select(lots.c.id, lots.c.remaining).order_by(lots.c.id)).all()
        props = conn.execute(
            select(proposals.c.id, proposals.c.status).order_by(proposals.c.id)
        ).all()
        n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
    return (
        [tuple(r) for r in accts],
        [tuple(r) for r in ents],
        [tuple(r) for r in lts],
        [tuple(r) for r in props],
        n_events,
    )


def refused(fn: Callable[[], Any], ctx: Context, exc: type[ConnectsError]) -> ConnectsError:
    """Run ``fn``, expect ``exc``, and prove nothing changed (R32)."""
    before = snapshot(ctx)
    with pytest.raises(exc) as info:
        fn()
    assert snapshot(ctx) == before  # R32
    return info.value
