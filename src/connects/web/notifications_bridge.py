"""The Notifications page's link to :mod:`connects.services.notifications` (R27-R29):
what the page shows, and its forms as commands."""

from __future__ import annotations

from typing import Any, NamedTuple

from connects.domain.commands import (
    AddChannel,
    RemoveChannel,
    SendTestNotification,
    SetNotificationSettings,
)
from connects.domain.errors import ConnectsError
from connects.domain.vocabulary import ChannelKind, NotificationSwitch
from connects.services import notifications as notes
from connects.services.context import Context
from connects.web.viewer import Viewer


class TargetField(NamedTuple):
    """What the form's target field asks for, for one kind."""

    label: str
    placeholder: str
    inputmode: str  # the keyboard a phone shows; the engine alone checks the text


# The order the page offers the kinds in (the form's list), and what each one's target
# field asks for: the one place it is kept.
CHANNEL_KINDS: dict[ChannelKind, TargetField] = {
    ChannelKind.WEBHOOK: TargetField("Webhook URL", "https://example.com/hook", "url"),
    ChannelKind.SLACK: TargetField(
        "Slack webhook URL", "https://hooks.slack.com/services/…", "url"
    ),
    ChannelKind.DISCORD: TargetField(
        "Discord webhook URL", "https://discord.com/api/webhooks/…", "url"
    ),
    ChannelKind.TELEGRAM: TargetField("Bot token/chat id", "123456:ABC…/987654", "text"),
    ChannelKind.EMAIL: TargetField("E-mail address", "you@example.com", "email"),  # R47
}
# The two toggles of seed 000 first, then the events that are on by default (R27).
MAIN_SWITCHES = {
    NotificationSwitch.LOW_BALANCE: (
        "Low Connects Balance",
        "when the balance falls to one of your levels, or runs out",
    ),
    NotificationSwitch.TOPUPS: (
        "Auto Top-Up",
        "each time Connects are bought automatically, or could not be",
    ),
}
MORE_SWITCHES = {
    NotificationSwitch.MONTHLY_LIMIT: "the monthly auto top-up limit is reached",
    NotificationSwitch.REFUNDS: "Connects are refunded",
    NotificationSwitch.PURCHASES: "Connects are bought",
    NotificationSwitch.EXPIRING: "a digest of what expires in 30 days",
}


class TestSendFailed(ConnectsError):
    """The channel did not take the test message (the receiver's answer is the message)."""

    code, status = "test_send_failed", 502


def page(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """Channels, toggles and recent deliveries (the owner and admins only)."""
    base: dict[str, Any] = {
        "channel_kinds": CHANNEL_KINDS,
        # Kinds this server cannot send (e-mail without an SMTP server, R47): offered
        # greyed out, with why.
        "unavailable_kinds": [k for k in CHANNEL_KINDS if not ctx.notifier.can_send(k)],
        "main_switches": MAIN_SWITCHES,
        "more_switches": MORE_SWITCHES,
    }
    if not viewer.can_manage:
        return base
    account_id = viewer.account_id
    sent = notes.list_notifications(ctx, viewer.actor, account_id, limit=10)["items"]
    return {
        **base,
        "channels": notes.list_channels(ctx, viewer.actor, account_id, limit=50)["items"],
        "settings": notes.get_settings(ctx, viewer.actor, account_id),
        "deliveries": [
            {
                "at": d["created_at"],
                "kind": d["kind"],
                "status": d["status"],
                "attempts": d["attempts_count"],
                "channel": d["channel"],
                "last_error": d["last_error"],
            }
            for d in sent
        ],
    }


def add_channel(ctx: Context, viewer: Viewer, kind: str, target: str) -> str:
    made = ctx.handle(AddChannel(viewer.actor, viewer.account_id, kind, target))
    text = f"{made['kind'].title()} channel added ({made['target']})."
    if made.get("secret"):  # R46
        text += (
            " Keep its signing secret where your receiver runs: it checks every delivery"
            f" with it (Standard Webhooks). The signing secret, shown this once: {made['secret']}"
        )
    return text


def test_channel(ctx: Context, viewer: Viewer, channel_id: str) -> str:
    result = ctx.handle(SendTestNotification(viewer.actor, viewer.account_id, channel_id))
    if not result["ok"]:
        raise TestSendFailed(f"the test message was not delivered: {result['error']}")
    return f"Test message delivered in {result['duration_ms']} ms."


def remove_channel(ctx: Context, viewer: Viewer, channel_id: str) -> str:
    ctx.handle(RemoveChannel(viewer.actor, viewer.account_id, channel_id))
    return "Channel removed."


def put_settings(ctx: Context, viewer: Viewer, **fields: Any) -> str:
    ctx.handle(SetNotificationSettings(viewer.actor, viewer.account_id, fields))
    return "Notification settings saved."
