"""The message bus: a command to its one handler, an event to its reactions.

:meth:`MessageBus.handle` runs a command's handler with a fresh
:class:`~connects.services.uow.UnitOfWork`, then hands every event committed on the
way to the reactions registered for its type, in order. The registries are built in
one place, :mod:`connects.bootstrap`. A reaction that fails is logged and never fails
the command: what it was to do is already durable (a pending top-up, an outbox row)
and the due work finishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from connects.domain.commands import Command
from connects.domain.events import Event
from connects.services.context import Context
from connects.services.uow import UnitOfWork

log = logging.getLogger(__name__)

R = TypeVar("R")
CommandHandler = Callable[[Any, UnitOfWork], Any]
Reaction = Callable[[Context, Any], None]


class MessageBus:
    """The registries: which handler runs each command, which reactions follow each
    event. It holds no state of its own, so a copy of a context shares it."""

    def __init__(
        self,
        commands: Mapping[type[Command[Any]], CommandHandler],
        events: Mapping[type[Event], Sequence[Reaction]],
    ) -> None:
        self.commands = dict(commands)
        self.reactions = {kind: tuple(found) for kind, found in events.items()}

    def handle(self, ctx: Context, command: Command[R]) -> R:
        """Run ``command``'s handler; then the reactions to what it committed."""
        handler = self.commands.get(type(command))
        if handler is None:
            raise LookupError(f"no handler for {type(command).__name__}")
        uow = UnitOfWork(ctx)
        try:
            result: R = handler(command, uow)
        finally:  # a refusal after a commit still has that commit's events
            self.publish(ctx, uow.collect())
        return result

    def publish(self, ctx: Context, events: Iterable[Event]) -> None:
        """Run each event's reactions, in the order the events were raised. Reactions
        are work after a commit, never part of a keyed request's one transaction
        (:mod:`connects.db.request`): while that is open they wait for its commit."""
        events = list(events)
        if not events or ctx.db.defer(lambda: self._react(ctx, events)):
            return
        with ctx.db.alone():
            self._react(ctx, events)

    def _react(self, ctx: Context, events: list[Event]) -> None:
        for event in events:
            for reaction in self.reactions.get(type(event), ()):
                try:
                    reaction(ctx, event)
                except Exception:
                    log.exception("reaction %s to %r failed", reaction.__name__, event)
