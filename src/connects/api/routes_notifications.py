"""Notifications over HTTP: channels, settings and the delivery history (R27-R29).

Owner and admins only. Channel secrets are never returned whole: ``target`` is the
masked hint; a webhook's generated signing ``secret`` is in the creating answer only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import Field, Strict

from connects.api.answers import AnsweredRoute
from connects.api.common import API_PREFIX, READ_ERRORS, WRITE_ERRORS, AccountId, Cursor
from connects.api.deps import AccountActor, CtxDep, IdempotencyKey, secret_shown_once
from connects.api.schemas import INT32, Body, ChangeBody, Flag, Model, Page, Text, UtcTime
from connects.domain.commands import (
    AddChannel,
    RemoveChannel,
    SendTestNotification,
    SetNotificationSettings,
)
from connects.domain.vocabulary import ChannelKind, DeliveryStatus, EventType
from connects.services import notifications as notes

router = APIRouter(prefix=API_PREFIX, tags=["notifications"], route_class=AnsweredRoute)

ChannelId = Annotated[
    str,
    Path(
        description="A channel id (chn_...).",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=notes.MAX_PAGE, description="Items per page.")]


class NewChannel(Body):
    kind: ChannelKind
    target: Annotated[Text, Field(min_length=1, max_length=2000)] = Field(
        description=(
            "Bot token/chat, incoming-webhook URL, an e-mail address (R47) or webhook URL."
        )
    )
    events: list[EventType] | None = Field(
        default=None, min_length=1, description="Only these event kinds (default: all)."
    )
    secret: Annotated[Text, Field(min_length=16, max_length=200)] | None = Field(
        default=None,
        description=(
            "Webhook signing secret, whsec_ + the base64 of 24 to 64 bytes "
            "(default: generated, shown once; R46)."
        ),
    )


class ChannelOut(Model):
    id: str
    kind: str
    target: str = Field(description="Masked: the secret parts are never shown.")
    events: list[str] | None = None
    signed: bool
    created_at: UtcTime
    secret: str | None = Field(
        default=None,
        description="The generated whsec_ signing secret, in this answer only (R46).",
    )


class TestResult(Model):
    ok: bool
    error: str | None = None
    duration_ms: int
    event_id: str
    channel_id: str


class NotificationSettings(Model):
    low_balance: bool = Field(description="Low Connects Balance: balance_low, balance_empty.")
    low_balance_threshold: int = Field(description="The highest of low_balance_levels, or 0.")
    low_balance_levels: list[int] = Field(
        description="balance_low once per downward crossing of each, highest first (R45)."
    )
    topups: bool = Field(description="Auto Top-Up: topup_succeeded, topup_failed.")
    monthly_limit: bool
    refunds: bool
    purchases: bool
    expiring: bool
    expiring_every: Literal["day", "week"]


class SettingsPut(ChangeBody):
    low_balance: Flag | None = None
    low_balance_threshold: Annotated[int, Strict(), Field(ge=0, le=INT32)] | None = None
    low_balance_levels: (
        Annotated[list[Annotated[int, Strict(), Field(ge=1, le=INT32)]], Field(max_length=100)]
        | None
    ) = Field(
        default=None,
        description="Up to 5 distinct positive levels; [] for none (R45). Sets "
        "low_balance_threshold to the highest.",
    )
    topups: Flag | None = None
    monthly_limit: Flag | None = None
    refunds: Flag | None = None
    purchases: Flag | None = None
    expiring: Flag | None = None
    expiring_every: Literal["day", "week"] | None = None


class Attempt(Model):
    at: UtcTime
    ok: bool
    error: str | None = None
    duration_ms: int


class ChannelRef(Model):
    id: str
    kind: str
    target: str


class Notification(Model):
    id: str
    event_id: str = Field(description="Stable across retries: receivers dedupe on it (R29).")
    kind: str
    event_at: UtcTime
    channel: ChannelRef
    status: DeliveryStatus
    attempts_count: int
    next_attempt_at: UtcTime | None = None
    last_error: str | None = None
    sent_at: UtcTime | None = None
    created_at: UtcTime
    attempts: list[Attempt]


@router.get(
    "/accounts/{account_id}/channels", response_model=Page[ChannelOut], responses=READ_ERRORS
)
def list_channels(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: PageLimit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The account's notification channels, targets masked (owner/admin, R28)."""
    return notes.list_channels(ctx, who, account_id, limit=limit, cursor=cursor)


@router.post(
    "/accounts/{account_id}/channels",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    response_model_exclude_none=True,
    responses=WRITE_ERRORS,
)
def add_channel(
    account_id: AccountId,
    body: NewChannel,
    request: Request,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Add a Telegram, Slack, Discord, e-mail or signed-webhook channel (owner/admin, R28).

    An answer with a generated ``secret`` is not replayed: a replay with the same
    Idempotency-Key answers 409 ``secret_shown_once`` (R51).
    """
    made: dict[str, Any] = ctx.handle(
        AddChannel(
            who,
            account_id,
            body.kind,
            body.target,
            events=list(body.events) if body.events else None,
            secret=body.secret,
        )
    )
    if made.get("secret"):
        secret_shown_once(request)
    return made


@router.delete(
    "/accounts/{account_id}/channels/{channel_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
def delete_channel(
    account_id: AccountId,
    channel_id: ChannelId,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Response:
    """Remove a channel; its secrets are wiped and its unsent messages marked dead."""
    ctx.handle(RemoveChannel(who, account_id, channel_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/accounts/{account_id}/channels/{channel_id}/test",
    response_model=TestResult,
    responses=WRITE_ERRORS,
)
def test_channel(
    account_id: AccountId,
    channel_id: ChannelId,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Send a test message now; answers whether the channel took it (owner/admin)."""
    return ctx.handle(SendTestNotification(who, account_id, channel_id))


@router.get(
    "/accounts/{account_id}/notification-settings",
    response_model=NotificationSettings,
    responses=READ_ERRORS,
)
def get_notification_settings(
    account_id: AccountId, ctx: CtxDep, who: AccountActor
) -> dict[str, Any]:
    """The toggles (Low Connects Balance, Auto Top-Up, ...) and the low threshold (R27)."""
    return notes.get_settings(ctx, who, account_id)


@router.put(
    "/accounts/{account_id}/notification-settings",
    response_model=NotificationSettings,
    responses=WRITE_ERRORS,
)
def put_notification_settings(
    account_id: AccountId,
    body: SettingsPut,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Change the toggles and threshold; fields left out keep their values (owner/admin)."""
    return ctx.handle(SetNotificationSettings(who, account_id, body.model_dump(exclude_none=True)))


@router.get(
    "/accounts/{account_id}/notifications",
    response_model=Page[Notification],
    responses=READ_ERRORS,
)
def list_notifications(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: PageLimit = 50,
    cursor: Cursor = None,
    status: DeliveryStatus | None = None,
) -> dict[str, Any]:
    """Sent, pending and dead notifications with every delivery attempt, newest first (R29)."""
    return notes.list_notifications(ctx, who, account_id, limit=limit, cursor=cursor, status=status)
