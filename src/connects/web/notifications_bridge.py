"""The Notifications page's link to :mod:`connects.services.notifications` (R27-R29).

Loaded lazily: a build without the notification services still serves the page, in a
plain 'not available yet' state, and refuses its forms with ``not_available``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from connects.domain.errors import ConnectsError
from connects.domain.vocabulary import ChannelKind, NotificationSwitch
from connects.services.context import Context
from connects.web.viewer import Viewer

SERVICE = "connects.services.notifications"
# The order the page offers the kinds in (the form's list): the one place it is kept.
CHANNEL_KINDS: tuple[ChannelKind, ...] = (
    ChannelKind.WEBHOOK,
    ChannelKind.SLACK,
    ChannelKind.DISCORD,
    ChannelKind.TELEGRAM,
    ChannelKind.EMAIL,
)
# The two toggles of seed 000 first, then the events that are on by default (R27).
MAIN_SWITCHES = {
    NotificationSwitch.LOW_BALANCE: (
        "Low Connects Balance",
        "when the balance falls to the threshold or runs out",
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


class NotAvailable(ConnectsError):
    code, status = "not_available", 501


class TestSendFailed(ConnectsError):
    """The channel did not take the test message (the receiver's answer is the message)."""

    code, status = "test_send_failed", 502


def _service() -> ModuleType | None:
    try:
        return importlib.import_module(SERVICE)
    except ImportError:
        return None


def _require() -> ModuleType:
    service = _service()
    if service is None:
        raise NotAvailable("notifications are not available in this version yet")
    return service


def page(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """Channels, toggles and recent deliveries; ``available: False`` without the service."""
    service = _service()
    base: dict[str, Any] = {
        "available": service is not None,
        "channel_kinds": CHANNEL_KINDS,
        "main_switches": MAIN_SWITCHES,
        "more_switches": MORE_SWITCHES,
    }
    if service is None or not viewer.can_manage:
        return base
    account_id = viewer.account_id
    sent = service.list_notifications(ctx, viewer.actor, account_id, limit=10)["items"]
    return {
        **base,
        "channels": service.list_channels(ctx, viewer.actor, account_id, limit=50)["items"],
        "settings": service.get_settings(ctx, viewer.actor, account_id),
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
    made = _require().add_channel(ctx, viewer.actor, viewer.account_id, kind, target)
    text = f"{made['kind'].title()} channel added ({made['target']})."
    if made.get("secret"):
        text += f" Its signing secret, shown this once: {made['secret']}"
    return text


def test_channel(ctx: Context, viewer: Viewer, channel_id: str) -> str:
    result = _require().test_send(ctx, viewer.actor, viewer.account_id, channel_id)
    if not result["ok"]:
        raise TestSendFailed(f"the test message was not delivered: {result['error']}")
    return f"Test message delivered in {result['duration_ms']} ms."


def remove_channel(ctx: Context, viewer: Viewer, channel_id: str) -> str:
    _require().delete_channel(ctx, viewer.actor, viewer.account_id, channel_id)
    return "Channel removed."


def put_settings(ctx: Context, viewer: Viewer, **fields: Any) -> str:
    _require().put_settings(ctx, viewer.actor, viewer.account_id, **fields)
    return "Notification settings saved."
