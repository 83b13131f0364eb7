"""The statements of :mod:`connects.services.book`, built once: the account row's lock
with its auto top-up settings, lot changes (Connects and cost, R39), the inserts of
entries, allocations and events, and the write-back of the account row."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from connects.db.schema import accounts, allocations, auto_topup_settings, entries, events, lots
from connects.db.sql import Prepared

TOPUP_COLUMNS = (
    "enabled",
    "per_topup",
    "per_month",
    "threshold",
    "just_in_time",
    "mode",
    "target",
)
# The account row, locked, with its auto top-up settings (read at save) in one round trip.
LOCK = (
    select(accounts, *(auto_topup_settings.c[c].label(f"topup_{c}") for c in TOPUP_COLUMNS))
    .select_from(accounts.outerjoin(auto_topup_settings))
    .where(accounts.c.id == bindparam("account_id"))
    .with_for_update(of=accounts)
)
LOT_ADD = Prepared(
    update(lots)
    .where(lots.c.account_id == bindparam("b_account_id"), lots.c.id == bindparam("lot_id"))
    .values(
        remaining=lots.c.remaining + bindparam("delta"),
        cost_left_cents=lots.c.cost_left_cents + bindparam("cost_delta"),
    )
)
INSERT_EVENTS = Prepared(insert(events))
OPEN_LOTS = select(
    lots.c.id,
    lots.c.source,
    lots.c.issued_at,
    lots.c.expires_at,
    lots.c.remaining,
    lots.c.cost_left_cents,
).where(lots.c.account_id == bindparam("account_id"), lots.c.remaining > 0)
INSERT_ENTRY = Prepared(insert(entries))
INSERT_ALLOCATIONS = Prepared(insert(allocations))
# The account row's columns a book writes back, by their bind names in save_statement().
SAVED = {
    "balance": "balance_",
    "seq": "seq_",
    "earnings_cents": "earnings_",
    "next_cycle_at": "next_cycle_at_",
    "held": "held_",
}
_SAVES_BUILT: dict[tuple[str, ...], Prepared] = {}


def save_statement(changed: tuple[str, ...]) -> Prepared:
    """``UPDATE accounts`` of just the ``changed`` columns, built once per combination.
    A spend changes balance and seq; leaving the cycle date out spares SQLite a delete
    and an insert in its index (SQLite rewrites every index on a column that is SET)."""
    statement = _SAVES_BUILT.get(changed)
    if statement is None:
        statement = _SAVES_BUILT[changed] = Prepared(
            update(accounts)
            .where(accounts.c.id == bindparam("account_id_"))
            .values({c: bindparam(SAVED[c]) for c in changed})
        )
    return statement
