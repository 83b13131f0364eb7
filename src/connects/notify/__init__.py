"""Notifications (R27-R29): channels, messages, the outbox fan-out and delivery.

Events are written to the ``events`` outbox in the transaction that caused them
(:meth:`connects.services.book.AccountBook.emit`). The worker turns each new event into
one delivery per matching channel (:mod:`connects.notify.outbox`), claims due
deliveries under a lease, sends them through a :class:`~connects.notify.channels.Notifier`
and records every attempt. Delivery is at least once, with the event id as the stable
id receivers dedupe on.
"""
