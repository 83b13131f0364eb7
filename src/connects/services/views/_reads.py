"""What the account reads share: prebuilt statements bound per call, and the caller's
access resolved in the same round trip as the account's row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select

from connects.db import measures
from connects.db.schema import accounts, memberships
from connects.db.types import UTCDateTime
from connects.domain.calendar import EXPIRING_WINDOW
from connects.domain.errors import NotFound
from connects.domain.policy import Action, Actor, require
from connects.services.access import as_member, authorize

# The account reads are built once, with bind parameters, and only executed per call:
# building a statement costs more Python time than the database takes to answer it.
ACCOUNT_ID = bindparam("account_id", type_=accounts.c.id.type)
NOW = bindparam("now", type_=UTCDateTime())
HORIZON = bindparam("horizon", type_=UTCDateTime())  # now + the expiring window

# Spendable now (R12) and what expires in (now, now+30d], correlated to the account row.
SPENDABLE = measures.available(accounts.c.id, accounts.c.balance, NOW).label("spendable")
EXPIRING = measures.expiring(accounts.c.id, NOW, HORIZON).label("expiring")
HELD = measures.held(accounts.c.id).label("held")  # R34


def params(account_id: str, now: datetime) -> dict[str, Any]:
    """The bind parameters every account read takes."""
    return {"account_id": account_id, "now": now, "horizon": now + EXPIRING_WINDOW}


class AccountRead:
    """``columns`` of one account (bind parameter ``account_id``), prebuilt twice: for a
    person, with their role in the account joined in (one round trip); for anyone
    else, as is (their access is resolved first)."""

    def __init__(
        self, columns: list[Any], source: Any = accounts, order_by: tuple[Any, ...] = ()
    ) -> None:
        member = and_(
            memberships.c.account_id == accounts.c.id,
            memberships.c.user_id == bindparam("user_id", type_=memberships.c.user_id.type),
        )
        self.as_person = (
            select(*columns, memberships.c.role)
            .select_from(source.outerjoin(memberships, member))
            .where(accounts.c.id == ACCOUNT_ID)
            .order_by(*order_by)
        )
        self.as_is = (
            select(*columns)
            .select_from(source)
            .where(accounts.c.id == ACCOUNT_ID)
            .order_by(*order_by)
        )


def authorized_row(
    conn: Connection,
    read: AccountRead,
    who: Actor,
    action: Action,
    params: dict[str, Any],
    *,
    all_rows: bool = False,
) -> tuple[Actor, Any]:
    """The caller resolved on the account and its row (``all_rows``: the read's rows, one
    or more), refused as :func:`authorize` refuses. ``params`` has ``account_id`` and
    ``now``, and whatever else the read binds."""
    account_id = params["account_id"]
    if who.kind != "user":  # a business manager's grants, or the operator
        actor = authorize(conn, account_id, who, action, params["now"])
        rows = conn.execute(read.as_is, params).all()
        if not rows:
            raise NotFound("no such account", account_id=account_id)  # the operator asked
    else:
        assert who.id is not None
        rows = conn.execute(read.as_person, {**params, "user_id": who.id}).all()
        actor = as_member(account_id, who.id, rows[0].role if rows else None)
        require(actor, action)
    return actor, rows if all_rows else rows[0]
