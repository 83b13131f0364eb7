"""Notification channels, settings and history, for the API and the dashboard (R27-R29).

Everything here is for the account's owner and admins (``Action.MANAGE``, R3). Channel
secrets are encrypted before they are stored and never returned whole: answers carry
the masked ``target`` hint (R28). A webhook's signing secret is shown once, in the
answer that created the channel, when the caller did not choose it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import Connection, insert, select, update

from connects.db.schema import (
    accounts,
    channels,
    deliveries,
    delivery_attempts,
    events,
    notification_settings,
)
from connects.domain.cursors import id_cursor
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.ids import new_id
from connects.domain.policy import Action, Actor
from connects.notify import crypto
from connects.notify.channels import (
    CHANNEL_KINDS,
    Channel,
    DeliveryFailed,
    Event,
    LiveNotifier,
    Notifier,
    mask,
    normalize_target,
)
from connects.notify.messages import EVENT_KINDS
from connects.notify.outbox import SWITCHES, redact
from connects.services.access import authorize
from connects.services.book import AccountBook
from connects.services.context import Context

MAX_CHANNELS = 20
MAX_PAGE = 200
SETTING_FIELDS = ("low_balance", "low_balance_threshold", *SWITCHES[1:], "expiring_every")

__all__ = [
    "CHANNEL_KINDS",
    "EVENT_KINDS",
    "add_channel",
    "delete_channel",
    "get_settings",
    "list_channels",
    "list_notifications",
    "put_settings",
    "test_send",
]


def _channel_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "target": row.target_hint,
        "events": row.events.split() if row.events else None,
        "signed": row.secret_encrypted is not None,
        "created_at": row.created_at,
    }


def _events_filter(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest("events is a list of event kinds", field="events")
    unknown = sorted(set(value) - set(EVENT_KINDS))
    if unknown:
        raise InvalidRequest(
            f"unknown event kinds: {', '.join(unknown)}", field="events", known=list(EVENT_KINDS)
        )
    if not value:
        raise InvalidRequest("events, when given, names at least one kind", field="events")
    return " ".join(sorted(set(value)))


def add_channel(
    ctx: Context,
    who: Actor,
    account_id: str,
    kind: str,
    target: str,
    events: list[str] | None = None,
    secret: str | None = None,
) -> dict[str, Any]:
    """Add a channel (owner/admin). Answers with the masked target; for a webhook, the
    signing secret when one was generated (shown this once)."""
    if kind not in CHANNEL_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(CHANNEL_KINDS)}", field="kind")
    target = normalize_target(kind, target)
    wanted = _events_filter(events)
    shown_secret: str | None = None
    if kind == "webhook":
        if secret is None:
            secret = shown_secret = "whsec_" + secrets.token_urlsafe(32)
        elif not isinstance(secret, str) or not 16 <= len(secret) <= 200:
            raise InvalidRequest("secret is 16 to 200 characters", field="secret")
    elif secret is not None:
        raise InvalidRequest("only webhook channels take a signing secret", field="secret")
    now = ctx.now()
    row = {
        "id": new_id("chn"),
        "account_id": account_id,
        "kind": kind,
        "target_encrypted": crypto.encrypt(ctx.secret_key, target),
        "target_hint": mask(kind, target),
        "events": wanted,
        "secret_encrypted": crypto.encrypt(ctx.secret_key, secret) if secret else None,
        "created_at": now,
        "deleted_at": None,
    }
    with ctx.db.begin() as conn:
        AccountBook.lock(conn, account_id, now)
        authorize(conn, account_id, who, Action.MANAGE, now)
        count = len(
            conn.execute(
                select(channels.c.id).where(
                    channels.c.account_id == account_id, channels.c.deleted_at.is_(None)
                )
            ).all()
        )
        if count >= MAX_CHANNELS:
            raise InvalidRequest(f"an account has at most {MAX_CHANNELS} channels", field="kind")
        conn.execute(insert(channels), row)
    view = {
        "id": row["id"],
        "kind": kind,
        "target": row["target_hint"],
        "events": wanted.split() if wanted else None,
        "signed": secret is not None,
        "created_at": now,
    }
    if shown_secret is not None:
        view["secret"] = shown_secret
    return view


def _page_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"limit is 1 to {MAX_PAGE}", field="limit")
    return limit


def list_channels(
    ctx: Context, who: Actor, account_id: str, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The account's channels, oldest first, targets masked (owner/admin)."""
    limit = _page_limit(limit)
    cursor = id_cursor(cursor, "chn")  # the id of the last channel shown
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        query = select(channels).where(
            channels.c.account_id == account_id, channels.c.deleted_at.is_(None)
        )
        if cursor:
            query = query.where(channels.c.id > cursor)
        rows = conn.execute(query.order_by(channels.c.id).limit(limit + 1)).all()
    items = [_channel_view(r) for r in rows[:limit]]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}


def _live_channel(conn: Connection, account_id: str, channel_id: str) -> Any:
    row = conn.execute(
        select(channels).where(
            channels.c.id == channel_id,
            channels.c.account_id == account_id,
            channels.c.deleted_at.is_(None),
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such channel", channel_id=channel_id)
    return row


def delete_channel(ctx: Context, who: Actor, account_id: str, channel_id: str) -> None:
    """Remove a channel (owner/admin): its secrets are wiped; what it had not sent yet
    is marked ``dead`` with the reason, so the history stays whole (R29)."""
    now = ctx.now()
    with ctx.db.begin() as conn:
        AccountBook.lock(conn, account_id, now)
        authorize(conn, account_id, who, Action.MANAGE, now)
        _live_channel(conn, account_id, channel_id)
        conn.execute(
            update(channels)
            .where(channels.c.id == channel_id)
            .values(deleted_at=now, target_encrypted=None, secret_encrypted=None)
        )
        conn.execute(
            update(deliveries)
            .where(deliveries.c.channel_id == channel_id, deliveries.c.status == "pending")
            .values(status="dead", last_error="the channel was removed")
        )


def test_send(
    ctx: Context,
    who: Actor,
    account_id: str,
    channel_id: str,
    notifier: Notifier | None = None,
) -> dict[str, Any]:
    """Send a test message now (owner/admin); answers whether the channel took it."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        row = _live_channel(conn, account_id, channel_id)
        account = conn.execute(
            select(accounts.c.name, accounts.c.balance).where(accounts.c.id == account_id)
        ).one()
    channel = Channel(
        id=row.id,
        account_id=account_id,
        kind=row.kind,
        target=crypto.decrypt(ctx.secret_key, row.target_encrypted),
        secret=crypto.decrypt(ctx.secret_key, row.secret_encrypted)
        if row.secret_encrypted
        else None,
    )
    event = Event(
        id=new_id("evt"),
        account_id=account_id,
        kind="channel_test",
        payload={"account_id": account_id, "balance": account.balance, "test": True},
        created_at=now,
        account_name=account.name,
    )
    started = time.monotonic()
    error: str | None = None
    try:
        (notifier or default_notifier(ctx)).send(channel, event)
    except DeliveryFailed as exc:
        error = redact(str(exc), channel)
    duration_ms = int((time.monotonic() - started) * 1000)
    return {
        "ok": error is None,
        "error": error,
        "duration_ms": duration_ms,
        "event_id": event.id,
        "channel_id": channel_id,
    }


def default_notifier(ctx: Context) -> Notifier:
    """The notifier wired into the context (``ctx.hooks``), else the live one."""
    for hook in ctx.hooks:
        if isinstance(hook, Notifier):
            return hook
    return LiveNotifier()


# -- settings -------------------------------------------------------------------------


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


def put_settings(ctx: Context, who: Actor, account_id: str, **fields: Any) -> dict[str, Any]:
    """Change the toggles and the low-balance threshold (owner/admin); fields left out
    keep their value. The threshold is written to the account too, in one transaction."""
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
    now = ctx.now()
    with ctx.db.begin() as conn:
        book = AccountBook.lock(conn, account_id, now)
        authorize(conn, account_id, who, Action.MANAGE, now)
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


# -- history ----------------------------------------------------------------------------


def list_notifications(
    ctx: Context,
    who: Actor,
    account_id: str,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Sent, pending and dead notifications, newest first, each with every attempt (R29)."""
    limit = _page_limit(limit)
    cursor = id_cursor(cursor, "dlv")  # the id of the last delivery shown
    if status is not None and status not in ("pending", "sending", "sent", "dead"):
        raise InvalidRequest("status is pending, sending, sent or dead", field="status")
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        query = (
            select(
                deliveries,
                events.c.payload,
                events.c.created_at.label("event_at"),
                channels.c.kind.label("channel_kind"),
                channels.c.target_hint,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(channels, channels.c.id == deliveries.c.channel_id)
            .where(deliveries.c.account_id == account_id)
        )
        if status:
            query = query.where(deliveries.c.status == status)
        if cursor:
            query = query.where(deliveries.c.id < cursor)
        rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit + 1)).all()
        shown = rows[:limit]
        attempts: dict[str, list[dict[str, Any]]] = {r.id: [] for r in shown}
        if shown:
            for a in conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id.in_(list(attempts)))
                .order_by(delivery_attempts.c.at, delivery_attempts.c.id)
            ):
                attempts[a.delivery_id].append(
                    {
                        "at": a.at,
                        "ok": a.ok,
                        "error": a.error,
                        "duration_ms": a.duration_ms,
                    }
                )
    items = [
        {
            "id": r.id,
            "event_id": r.event_id,
            "kind": r.event_kind,
            "event_at": r.event_at,
            "channel": {"id": r.channel_id, "kind": r.channel_kind, "target": r.target_hint},
            "status": r.status,
            "attempts_count": r.attempts,
            "next_attempt_at": r.next_attempt_at if r.status == "pending" else None,
            "last_error": r.last_error,
            "sent_at": r.sent_at,
            "created_at": r.created_at,
            "attempts": attempts[r.id],
        }
        for r in shown
    ]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}
