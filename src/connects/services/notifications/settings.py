"""An account's notification settings: the toggles and the low-balance threshold (R27).

Every toggle is on by default. The threshold is the account's own
(``accounts.low_balance_threshold``, the one the ledger alerts on); the settings row
mirrors it, and both are written in one transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from connects.db.schema import accounts, notification_settings
from connects.domain.commands import SetNotificationSettings
from connects.domain.errors import InvalidRequest
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import NotificationSwitch
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.uow import UnitOfWork

SWITCHES = tuple(s.value for s in NotificationSwitch)
# The answer's order: Low Connects Balance with its threshold, then the other toggles.
SETTING_FIELDS = (SWITCHES[0], "low_balance_threshold", *SWITCHES[1:], "expiring_every")


def _settings_view(row: Any, threshold: int) -> dict[str, Any]:
    view: dict[str, Any] = {name: True for name in SWITCHES}
    view["expiring_every"] = "week"
    if row is not None:
        view.update({name: bool(getattr(row, name)) for name in SWITCHES})
        view["expiring_every"] = row.expiring_every
    view["low_balance_threshold"] = threshold
    return {k: view[k] for k in SETTING_FIELDS}


def get_settings(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """``{low_balance, low_balance_threshold, topups, ...}`` (owner/admin); all on by
    default. The threshold is the account's, the one the ledger alerts on."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        threshold = conn.execute(
            select(accounts.c.low_balance_threshold).where(accounts.c.id == account_id)
        ).scalar_one()
        row = conn.execute(
            select(notification_settings).where(notification_settings.c.account_id == account_id)
        ).one_or_none()
    return _settings_view(row, int(threshold))


def put_settings(cmd: SetNotificationSettings, uow: UnitOfWork) -> dict[str, Any]:
    """Change the toggles and the low-balance threshold (owner/admin); fields left out
    keep their value. The threshold is written to the account too, in one transaction."""
    account_id, fields = cmd.account_id, dict(cmd.fields)
    unknown = sorted(set(fields) - set(SETTING_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}", field=unknown[0])
    for name in SWITCHES:
        if name in fields and fields[name] is not None and not isinstance(fields[name], bool):
            raise InvalidRequest(f"{name} is true or false", field=name)
    threshold = fields.get("low_balance_threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold < 2**31
    ):
        raise InvalidRequest(
            "low_balance_threshold is a whole number >= 0", field="low_balance_threshold"
        )
    every = fields.get("expiring_every")
    if every is not None and every not in ("day", "week"):
        raise InvalidRequest("expiring_every is 'day' or 'week'", field="expiring_every")
    with uow.begin() as tx:
        conn, now, book = tx.conn, tx.now, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        row = conn.execute(
            select(notification_settings).where(notification_settings.c.account_id == account_id)
        ).one_or_none()
        current = _settings_view(row, book.low_balance_threshold)
        new = {k: (v if fields.get(k) is None else fields[k]) for k, v in current.items()}
        values = {**new, "updated_at": now}
        if row is None:
            conn.execute(insert(notification_settings), {"account_id": account_id, **values})
        else:
            conn.execute(
                update(notification_settings)
                .where(notification_settings.c.account_id == account_id)
                .values(**values)
            )
        if new["low_balance_threshold"] != book.low_balance_threshold:
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(low_balance_threshold=new["low_balance_threshold"])
            )
    return new
