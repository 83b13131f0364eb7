"""Events: what happened, in the past tense, raised inside a transaction and handled
after it commits.

A handler raises an event through its unit of work (:mod:`connects.services.uow`);
the message bus hands it to the reactions wired in :mod:`connects.bootstrap` once the
transaction that raised it has committed, and never if it rolled back. A new reaction
to an event is one function and one line in ``bootstrap.EVENT_HANDLERS``.

These are the engine's own, in-process events. What an account's people are told
(``balance_low``, ``topup_succeeded``, ...; :class:`~connects.domain.vocabulary.EventType`)
goes to the outbox table in the same transaction instead, so it survives a crash
(R29).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event; each names the account it happened to."""

    account_id: str


@dataclass(frozen=True, slots=True)
class TopUpDecided(Event):
    """A transaction took the balance down to the auto top-up threshold and decided a
    purchase (R20, R23): execute it, exactly once."""

    topup_id: str


@dataclass(frozen=True, slots=True)
class TopUpConditionsChanged(Event):
    """Something auto top-up depends on changed and committed: a grant, the default
    card, its settings, a resume (R41). What could not be bought is tried again if its
    cause is gone; ``catch_up`` (switched on, or the threshold raised) buys at once if
    the balance is already at or below the threshold."""

    cause: str
    catch_up: bool = False
