"""Migration 0017 gives existing lots and allocations their cost (R39), on SQLite and
PostgreSQL: a purchase lot costs what its purchase paid, its history replayed in entry
order (floor shares, the emptying draw takes the rest, a refund gives back what its
spend took); grant lots cost 0; ``verify`` then finds nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select

from connects.bootstrap import build
from connects.config import Settings
from connects.db.migrate import alembic_config
from connects.db.schema import accounts, allocations, entries, lots, purchases, users
from connects.domain.clock import SimulatedClock
from connects.services.verify import verify

AT = datetime(2027, 3, 20, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("pg_url"))


def _entry(seq: int, kind: str, amount: int, after: int, **refs: Any) -> dict[str, Any]:
    return {
        "id": f"ent_{seq}",
        "account_id": "acc_1",
        "seq": seq,
        "at": AT + timedelta(minutes=seq),
        "kind": kind,
        "amount": amount,
        "balance_after": after,
        "actor_kind": "system",
        "proposal_id": refs.get("proposal_id"),
        "purchase_id": refs.get("purchase_id"),
    }


def _lot(lot_id: str, source: str, amount: int, remaining: int) -> dict[str, Any]:
    return {
        "id": lot_id,
        "account_id": "acc_1",
        "source": source,
        "issued_at": AT,
        "expires_at": AT + timedelta(days=365 if source == "grant" else 400),
        "amount": amount,
        "remaining": remaining,
    }


# (entry seq, lot, Connects): a grant of 10, 3 Connects bought for $1.00, a spend of
# 11 (10 grant, 1 bought), a spend of 1, the first spend refunded, the 2 bought expire.
MOVES = [(1, "lot_g", 10), (2, "lot_p", 3), (3, "lot_g", 10), (3, "lot_p", 1), (4, "lot_p", 1)]
MOVES += [(5, "lot_g", 10), (5, "lot_p", 1), (6, "lot_p", 2)]


def test_existing_lots_and_allocations_get_their_cost(url: str) -> None:
    cfg = alembic_config(url)
    command.upgrade(cfg, "0016")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(users), {"id": "usr_1", "name": "O", "email": "o@c.test", "created_at": AT}
            )
            conn.execute(
                insert(accounts),
                {
                    "id": "acc_1",
                    "kind": "freelancer",
                    "name": "O",
                    "owner_id": "usr_1",
                    "plan": "freelancer-basic",
                    "anchor_day": 1,
                    "next_cycle_at": AT + timedelta(days=30),
                    "balance": 10,
                    "seq": 6,
                    "created_at": AT,
                },
            )
            conn.execute(
                insert(purchases),
                {
                    "id": "pur_1",
                    "account_id": "acc_1",
                    "quantity": 3,
                    "amount_cents": 100,
                    "currency": "USD",
                    "pay_with": "card",
                    "status": "succeeded",
                    "actor_kind": "system",
                    "created_at": AT,
                },
            )
            conn.execute(
                insert(lots), [_lot("lot_g", "grant", 10, 10), _lot("lot_p", "purchase", 3, 0)]
            )
            conn.execute(
                insert(entries),
                [
                    _entry(1, "grant", 10, 10),
                    _entry(2, "purchase", 3, 13, purchase_id="pur_1"),
                    _entry(3, "spend", -11, 2, proposal_id="prp_1"),
                    _entry(4, "spend", -1, 1, proposal_id="prp_2"),
                    _entry(5, "refund", 11, 12, proposal_id="prp_1"),
                    _entry(6, "expire", -2, 10),
                ],
            )
            conn.execute(
                insert(allocations),
                [
                    {"account_id": "acc_1", "entry_id": f"ent_{s}", "lot_id": lot, "amount": n}
                    for s, lot, n in MOVES
                ],
            )
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got_lots = {
                r.id: (r.cost_cents, r.cost_left_cents)
                for r in conn.execute(select(lots.c.id, lots.c.cost_cents, lots.c.cost_left_cents))
            }
            got = {
                (r.entry_id, r.lot_id): r.cost_cents
                for r in conn.execute(
                    select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.cost_cents)
                )
            }
        assert got_lots == {"lot_g": (0, 0), "lot_p": (100, 0)}
        # 100 in; 33 (1 of 3), 33 (1 of 2 left, 67 of cost), 33 back, the last 2: 67
        assert {k: v for k, v in got.items() if k[1] == "lot_p"} == {
            ("ent_2", "lot_p"): 100,
            ("ent_3", "lot_p"): 33,
            ("ent_4", "lot_p"): 33,
            ("ent_5", "lot_p"): 33,
            ("ent_6", "lot_p"): 67,
        }
        assert all(v == 0 for k, v in got.items() if k[1] == "lot_g")
    finally:
        engine.dispose()
    ctx = build(
        Settings(database_url=url), clock=SimulatedClock(AT + timedelta(days=1)), migrate=False
    )
    try:
        assert verify(ctx) == []
    finally:
        ctx.db.dispose()
