"""Notification channels, settings and history, for the API and the dashboard (R27-R29).

Everything here is for the account's owner and admins (``Action.MANAGE``, R3). The
package is the one surface the API and the dashboard load; each concept has its module:

* :mod:`.channels`: add, list, remove and test a channel. Channel secrets are
  encrypted before they are stored and never returned whole: answers carry the masked
  ``target`` hint (R28). A webhook's signing secret is shown once, in the answer that
  created the channel, when the caller did not choose it.
* :mod:`.settings`: the account's toggles and low-balance threshold (R27).
* :mod:`.history`: the notifications sent, pending and dead, with every attempt (R29).
"""

from __future__ import annotations

from connects.services.notifications.channels import (
    MAX_PAGE,
    add_channel,
    delete_channel,
    list_channels,
    test_send,
)
from connects.services.notifications.history import list_notifications
from connects.services.notifications.settings import get_settings, put_settings

__all__ = [
    "MAX_PAGE",
    "add_channel",
    "delete_channel",
    "get_settings",
    "list_channels",
    "list_notifications",
    "put_settings",
    "test_send",
]
