"""Notifications (R27-R29): channels, messages, the outbox fan-out and delivery.

Events are written to the ``events`` outbox in the transaction that caused them
(:meth:`connects.services.book.AccountBook.emit`). The worker drains the outbox:

1. :mod:`connects.notify.fanout` turns each new event into one delivery per matching
   channel, in the transaction that stamps the event;
2. :mod:`connects.notify.claims` takes due deliveries under a lease (``SKIP LOCKED``
   on PostgreSQL);
3. :mod:`connects.notify.delivery` sends each through a
   :class:`~connects.notify.channels.Notifier` and records every attempt: ``sent``,
   a backoff, or ``dead`` after the last one.

:mod:`connects.notify.digest` adds the periodic expiring digest as ordinary events.
Delivery is at least once, with the event id as the stable id receivers dedupe on.
"""
