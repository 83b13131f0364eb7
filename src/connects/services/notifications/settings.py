"""An account's notification settings: the toggles and the low-balance levels (R27, R45).

Every toggle is on by default. The levels are the account's own
(``low_balance_levels``, the ones the ledger alerts on, :mod:`connects.services.balance_alerts`);
``low_balance_threshold`` is the older single level, shown as the highest of them, and
setting it sets the levels to that one. ``accounts.low_balance_threshold`` and the
settings row mirror it, written in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from connects.db.schema import notification_settings
from connects.domain import alerts
from connects.domain.commands import SetNotificationSettings
from connects.domain.errors import InvalidRequest
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import NotificationSwitch
from connects.services import balance_alerts
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.uow import UnitOfWork

SWITCHES = tuple(s.value for s in NotificationSwitch)
THRESHOLD = alerts.THRESHOLD_FIELD
LEVELS = alerts.FIELD
# The answer's order: Low Connects Balance with its levels, then the other toggles.
SETTING_FIELDS = (SWITCHES[0], THRESHOLD, LEVELS, *SWITCHES[1:], "expiring_every")


def _settings_view(row: Any, levels: tuple[int, ...]) -> dict[str, Any]:
    view: dict[str, Any] = {name: True for name in SWITCHES}
    view["expiring_every"] = "week"
    if row is not None:
        view.update({name: bool(getattr(row, name)) for name in SWITCHES})
        view["expiring_every"] = row.expiring_every
    view[THRESHOLD] = alerts.threshold_of(levels)
    view[LEVELS] = list(levels)
    return {k: view[k] for k in SETTING_FIELDS}


def get_settings(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """``{low_balance, low_balance_threshold, low_balance_levels, topups, ...}``
    (owner/admin); all on by default. The levels are the ones the ledger alerts on."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        levels = balance_alerts.levels_of(conn, account_id)
        row = conn.execute(
            select(notification_settings).where(notification_settings.c.account_id == account_id)
        ).one_or_none()
    return _settings_view(row, levels)


def put_settings(cmd: SetNotificationSettings, uow: UnitOfWork) -> dict[str, Any]:
    """Change the toggles and the low-balance levels (owner/admin); fields left out
    keep their value. The levels are written with the account's lock held."""
    account_id, fields = cmd.account_id, dict(cmd.fields)
    unknown = sorted(set(fields) - set(SETTING_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}", field=unknown[0])
    for name in SWITCHES:
        if name in fields and fields[name] is not None and not isinstance(fields[name], bool):
            raise InvalidRequest(f"{name} is true or false", field=name)
    levels = alerts.wanted_levels(fields)
    every = fields.get("expiring_every")
    if every is not None and every not in ("day", "week"):
        raise InvalidRequest("expiring_every is 'day' or 'week'", field="expiring_every")
    with uow.begin() as tx:
        conn, now, book = tx.conn, tx.now, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        row = conn.execute(
            select(notification_settings).where(notification_settings.c.account_id == account_id)
        ).one_or_none()
        current = _settings_view(row, balance_alerts.levels_of(conn, account_id))
        if levels is not None and list(levels) != current[LEVELS]:
            balance_alerts.set_levels(conn, account_id, book.balance, levels, now)
            current[LEVELS] = list(levels)
            current[THRESHOLD] = alerts.threshold_of(levels)
        derived = {THRESHOLD, LEVELS}  # set above, from the levels
        new = {
            k: (v if k in derived or fields.get(k) is None else fields[k])
            for k, v in current.items()
        }
        values = {k: v for k, v in new.items() if k != LEVELS} | {"updated_at": now}
        if row is None:
            conn.execute(insert(notification_settings), {"account_id": account_id, **values})
        else:
            conn.execute(
                update(notification_settings)
                .where(notification_settings.c.account_id == account_id)
                .values(**values)
            )
    return new
