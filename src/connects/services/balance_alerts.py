"""Balance alerts in the database (R27, R45): the levels, and each crossing sent once.

:func:`on_save` runs when a locked account's transaction writes its balance back
(``AccountBook.save``), on the transaction's final balance, as the auto top-up trigger
does: a sweep followed by a grant that ends above every level alerts nobody.

* The balance went **down**: every level at or above the new balance that has no
  ``balance_alerts`` row gets one (``INSERT ... SELECT ... ON CONFLICT DO NOTHING
  RETURNING``), and the levels that went in are this crossing's; reaching zero is
  level 0. :func:`connects.domain.alerts.alert_for` turns them into the one message.
* The balance went **up**: the rows of the levels it is now above are deleted, so
  those levels alert again on their next crossing (re-armed).

The primary key ``(account_id, level)`` makes each alert once per crossing, whatever
the number of processes and restarts; no state is kept in Python. The bulk monthly
cycle on PostgreSQL does the same set-based (``db/postgres_cycle/statements.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Integer,
    bindparam,
    delete,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.schema import ID, accounts, balance_alerts, low_balance_levels
from connects.db.sql import Prepared
from connects.db.types import UTCDateTime
from connects.domain.alerts import EMPTY, alert_for, threshold_of


class LockedAccount(Protocol):
    """An account locked in the current transaction (an ``AccountBook``)."""

    conn: Connection
    id: str
    now: datetime
    balance: int

    def emit(self, kind: str, payload: dict[str, Any], dedupe_key: str | None = None) -> None: ...


_ACCOUNT = bindparam("account_id", type_=ID)
_BALANCE = bindparam("balance", type_=Integer)
_NOW = bindparam("now", type_=UTCDateTime)
_LEVELS = select(low_balance_levels.c.account_id, low_balance_levels.c.level, _NOW).where(
    low_balance_levels.c.account_id == _ACCOUNT, low_balance_levels.c.level >= _BALANCE
)
_WITH_EMPTY = union_all(_LEVELS, select(_ACCOUNT, literal(EMPTY, Integer), _NOW).where(true()))
_REARM = delete(balance_alerts).where(
    balance_alerts.c.account_id == _ACCOUNT, balance_alerts.c.level < _BALANCE
)
_STATEMENTS: dict[tuple[str, bool], Prepared] = {}


def _reach(dialect: str, empty: bool) -> Prepared:
    """``INSERT`` the alerts of the levels at or above the balance (and level 0 at
    zero) that are not sent yet, returning the levels that went in. Every spend runs
    it (``AccountBook.save``): driver SQL, compiled once."""
    statement = _STATEMENTS.get((dialect, empty))
    if statement is None:
        maker = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = Prepared(
            maker(balance_alerts)
            .from_select(["account_id", "level", "sent_at"], _WITH_EMPTY if empty else _LEVELS)
            .on_conflict_do_nothing()
            .returning(balance_alerts.c.level)
        )
        _STATEMENTS[(dialect, empty)] = statement
    return statement


def on_save(book: LockedAccount, before: int) -> None:
    """Send the alert of a drop from ``before`` once, or re-arm after a rise (R45)."""
    after = book.balance
    params = {"account_id": book.id, "balance": after, "now": book.now}
    if after > before:
        book.conn.execute(_REARM, params)
        return
    if after == before:
        return
    reach = _reach(book.conn.dialect.name, after == 0)
    reached = reach.execute(book.conn, params).scalars()
    alert = alert_for(reached, before)
    if alert is not None:
        kind, payload = alert
        book.emit(kind, payload)


def levels_of(conn: Connection, account_id: str) -> tuple[int, ...]:
    """The account's low-balance levels, highest first."""
    rows = conn.execute(
        select(low_balance_levels.c.level)
        .where(low_balance_levels.c.account_id == account_id)
        .order_by(low_balance_levels.c.level.desc())
    ).scalars()
    return tuple(rows)


def set_levels(
    conn: Connection, account_id: str, balance: int, levels: Iterable[int], now: datetime
) -> None:
    """Replace the account's levels (checked by ``domain.alerts.check_levels``), under
    the account's lock. A new level the balance is already at or below counts as sent:
    only a crossing alerts. ``accounts.low_balance_threshold`` keeps the highest."""
    wanted = sorted(set(levels), reverse=True)
    conn.execute(delete(low_balance_levels).where(low_balance_levels.c.account_id == account_id))
    conn.execute(
        delete(balance_alerts).where(
            balance_alerts.c.account_id == account_id,
            balance_alerts.c.level != EMPTY,
            balance_alerts.c.level.not_in(wanted),
        )
    )
    if wanted:
        conn.execute(
            insert(low_balance_levels), [{"account_id": account_id, "level": v} for v in wanted]
        )
        _reach(conn.dialect.name, False).execute(
            conn, {"account_id": account_id, "balance": balance, "now": now}
        ).all()
    conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(low_balance_threshold=threshold_of(wanted))
    )
