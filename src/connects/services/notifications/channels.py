"""An account's notification channels: added, listed, removed and tested (R28).

Targets and webhook signing secrets are encrypted before they are stored and never
returned whole: answers carry the masked ``target`` hint. A webhook's ``whsec_``
signing secret (R46) is shown once, in the answer that created the channel, when the
caller did not choose it. An e-mail channel's target is an address, and needs the
operator's SMTP server (R47): without one, adding it answers ``email_not_configured``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, insert, select, update

from connects.db.schema import accounts, channels, deliveries
from connects.domain.commands import AddChannel, RemoveChannel, SendTestNotification
from connects.domain.cursors import id_cursor, page_limit
from connects.domain.errors import EmailNotConfigured, InvalidRequest, NotFound
from connects.domain.ids import new_id
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import ChannelKind, DeliveryStatus, EventType
from connects.notify import crypto, webhooks
from connects.notify.channels import (
    Channel,
    DeliveryFailed,
    Event,
    mask,
    normalize_target,
    redact,
)
from connects.notify.messages import CHANNEL_TEST
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.uow import UnitOfWork

MAX_CHANNELS = 20
MAX_PAGE = 200  # the channel list and the history alike


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
    unknown = sorted(set(value) - set(EventType))
    if unknown:
        raise InvalidRequest(
            f"unknown event kinds: {', '.join(unknown)}",
            field="events",
            known=[k.value for k in EventType],
        )
    if not value:
        raise InvalidRequest("events, when given, names at least one kind", field="events")
    return " ".join(sorted(set(value)))


def add_channel(cmd: AddChannel, uow: UnitOfWork) -> dict[str, Any]:
    """Add a channel (owner/admin). Answers with the masked target; for a webhook, the
    signing secret when one was generated (shown this once)."""
    ctx, account_id, kind, secret = uow.ctx, cmd.account_id, cmd.kind, cmd.secret
    if kind == ChannelKind.EMAIL and not ctx.notifier.can_send(kind):
        # Before the address: no address would help (R47).
        raise EmailNotConfigured(
            "e-mail is not set up on this server: the operator sets CONNECTS_SMTP_URL "
            "and CONNECTS_MAIL_FROM",
            kind=kind,
        )
    # Refuses an unknown kind first; a webhook only on a public address (R50).
    target = normalize_target(kind, cmd.target, allow_private=ctx.allow_private_webhooks)
    kind = ChannelKind(kind).value
    wanted = _events_filter(cmd.events)
    shown_secret: str | None = None
    if kind == ChannelKind.WEBHOOK:
        if secret is None:
            secret = shown_secret = webhooks.new_secret()
        else:
            secret = webhooks.check_secret(secret)
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
        "secret_raw": False,  # whsec_ (R46); True only for secrets from before it
        "created_at": now,
        "deleted_at": None,
    }
    with uow.begin(now) as tx:
        conn = tx.conn
        tx.authorize(account_id, cmd.who, Action.MANAGE)
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


def list_channels(
    ctx: Context, who: Actor, account_id: str, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The account's channels, oldest first, targets masked (owner/admin)."""
    limit = page_limit(limit, MAX_PAGE)
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


def delete_channel(cmd: RemoveChannel, uow: UnitOfWork) -> None:
    """Remove a channel (owner/admin): its secrets are wiped; what it had not sent yet
    is marked ``dead`` with the reason, so the history stays whole (R29)."""
    account_id, channel_id = cmd.account_id, cmd.channel_id
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        _live_channel(conn, account_id, channel_id)
        conn.execute(
            update(channels)
            .where(channels.c.account_id == account_id, channels.c.id == channel_id)
            .values(deleted_at=now, target_encrypted=None, secret_encrypted=None)
        )
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.account_id == account_id,
                deliveries.c.channel_id == channel_id,
                deliveries.c.status == DeliveryStatus.PENDING.value,
            )
            .values(status=DeliveryStatus.DEAD.value, last_error="the channel was removed")
        )


def test_send(cmd: SendTestNotification, uow: UnitOfWork) -> dict[str, Any]:
    """Send a test message now (owner/admin); answers whether the channel took it."""
    ctx, account_id, channel_id = uow.ctx, cmd.account_id, cmd.channel_id
    now = ctx.now()
    with uow.read() as conn:
        authorize(conn, account_id, cmd.who, Action.MANAGE, now)
        row = _live_channel(conn, account_id, channel_id)
        account = conn.execute(
            select(accounts.c.name, accounts.c.balance).where(accounts.c.id == account_id)
        ).one()
    channel = Channel(
        id=row.id,
        account_id=account_id,
        kind=row.kind,
        target=crypto.decrypt(ctx.secret_key, row.target_encrypted),
        secret=webhooks.open_secret(ctx.secret_key, row.secret_encrypted, row.secret_raw),
    )
    event = Event(
        id=new_id("evt"),
        account_id=account_id,
        kind=CHANNEL_TEST,
        payload={"account_id": account_id, "balance": account.balance, "test": True},
        created_at=now,
        account_name=account.name,
    )
    started = time.monotonic()
    error: str | None = None
    try:
        ctx.notifier.send(channel, event, at=now)
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
