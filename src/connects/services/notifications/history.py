"""An account's notification history: every delivery with every attempt (R29)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connects.db.schema import channels, deliveries, delivery_attempts, events
from connects.domain.cursors import id_cursor, page_limit
from connects.domain.errors import InvalidRequest
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import DeliveryStatus
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.notifications.channels import MAX_PAGE

_STATUSES = tuple(s.value for s in DeliveryStatus)


def list_notifications(
    ctx: Context,
    who: Actor,
    account_id: str,
    limit: int = 50,
    cursor: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Sent, pending and dead notifications, newest first, each with every attempt (R29)."""
    limit = page_limit(limit, MAX_PAGE)
    cursor = id_cursor(cursor, "dlv")  # the id of the last delivery shown
    if status is not None and status not in _STATUSES:
        listed = f"{', '.join(_STATUSES[:-1])} or {_STATUSES[-1]}"
        raise InvalidRequest(f"status is {listed}", field="status")
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
            .join(
                events,
                (events.c.account_id == deliveries.c.account_id)
                & (events.c.id == deliveries.c.event_id),
            )
            .join(
                channels,
                (channels.c.account_id == deliveries.c.account_id)
                & (channels.c.id == deliveries.c.channel_id),
            )
            .where(deliveries.c.account_id == account_id)
        )
        if status:
            query = query.where(deliveries.c.status == DeliveryStatus(status).value)
        if cursor:
            query = query.where(deliveries.c.id < cursor)
        rows = conn.execute(query.order_by(deliveries.c.id.desc()).limit(limit + 1)).all()
        shown = rows[:limit]
        attempts: dict[str, list[dict[str, Any]]] = {r.id: [] for r in shown}
        if shown:
            for a in conn.execute(
                select(delivery_attempts)
                .where(
                    delivery_attempts.c.account_id == account_id,
                    delivery_attempts.c.delivery_id.in_(list(attempts)),
                )
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
            "next_attempt_at": r.next_attempt_at if r.status == DeliveryStatus.PENDING else None,
            "last_error": r.last_error,
            "sent_at": r.sent_at,
            "created_at": r.created_at,
            "attempts": attempts[r.id],
        }
        for r in shown
    ]
    return {"items": items, "next_cursor": items[-1]["id"] if len(rows) > limit else None}
