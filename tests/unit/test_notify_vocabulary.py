"""The notification words come from one place: every event has a toggle, every toggle a
settings column and a line on the dashboard, every channel kind a place in its list."""

from __future__ import annotations

from connects.db.schema import notification_settings
from connects.domain.vocabulary import ChannelKind, EventType, NotificationSwitch
from connects.notify.fanout import wants
from connects.web.notifications_bridge import CHANNEL_KINDS, MAIN_SWITCHES, MORE_SWITCHES


def test_every_event_has_a_toggle_with_a_column_and_a_label() -> None:
    # R27
    assert {e.switch for e in EventType} == set(NotificationSwitch)
    assert set(NotificationSwitch) <= set(notification_settings.c.keys())
    assert [*MAIN_SWITCHES, *MORE_SWITCHES] == list(NotificationSwitch)


def test_the_dashboard_offers_every_channel_kind_once() -> None:
    # R28
    assert sorted(CHANNEL_KINDS) == sorted(ChannelKind)


def test_toggles_decide_what_goes_out() -> None:
    # R27: all on by default; an auto top-up's purchase follows the Auto Top-Up toggle
    assert all(wants(e, {}, {}) for e in EventType)
    assert not wants(EventType.BALANCE_EMPTY, {}, {"low_balance": False})
    assert wants(EventType.CONNECTS_PURCHASED, {"auto": True}, {"purchases": True})
    assert not wants(EventType.CONNECTS_PURCHASED, {"auto": True}, {"topups": False})
    assert wants(EventType.CONNECTS_PURCHASED, {}, {"topups": False})
    assert wants("channel_test", {}, {s.value: False for s in NotificationSwitch})
