"""Group commit: requests for one key that arrive while its batch runs go in the next.

Every proposal to an agency's pool takes that pool's row lock, so they run one after
another however many API threads there are. :class:`Combiner` turns that queue into
batches: the first request for a key runs alone (no waiting when the system is
quiet); requests arriving meanwhile wait, and when the running batch ends, the first
of them runs them all as one batch, in one transaction, and hands each its own
answer. Under load the lock is taken, and the transaction committed, once per batch
instead of once per request.

The combiner only groups work inside one process; correctness never rests on it. Each
batch is one database transaction that takes the same row locks as a lone request,
so batches from several processes are serialised by the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

Outcome = Any  # R, or the exception to raise for that item
Followup = Callable[[], None] | None
BatchRunner = Callable[[Hashable, list[T]], tuple[list[Outcome], Followup]]


@dataclass(eq=False)
class _Slot(Generic[T]):
    item: T
    ready: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome = None
    lead: list[_Slot[T]] | None = None  # set when this slot must run the next batch


class Combiner(Generic[T]):
    """Per-key batching of calls to a batch runner (see the module's docstring).

    ``run(key, items)`` answers ``(outcomes, followup)``: one outcome per item, in
    order (a value, or an exception instance to raise in that item's caller), and an
    optional callable run after the next batch has been handed on (work after the
    commit, such as a purchase, that must not hold up the queue).
    """

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._mutex = threading.Lock()
        self._queues: dict[Hashable, list[_Slot[T]]] = {}

    def submit(self, key: Hashable, item: T, run: BatchRunner[T]) -> Any:
        slot: _Slot[T] = _Slot(item)
        with self._mutex:
            queue = self._queues.get(key)
            if queue is None:
                self._queues[key] = []  # the key is busy; later arrivals queue here
                slot.lead = [slot]
            else:
                queue.append(slot)
        if slot.lead is None:
            slot.ready.wait()
        if slot.lead is not None:
            self._lead(key, slot.lead, run)
        if isinstance(slot.outcome, BaseException):
            raise slot.outcome
        return slot.outcome

    def _lead(self, key: Hashable, batch: list[_Slot[T]], run: BatchRunner[T]) -> None:
        try:
            outcomes, followup = _run_isolated(key, [s.item for s in batch], run)
        except BaseException as error:  # e.g. KeyboardInterrupt: still hand the queue on
            outcomes, followup = [error] * len(batch), None
        for s, outcome in zip(batch, outcomes, strict=True):
            s.outcome = outcome
            s.lead = None
        with self._mutex:
            waiting = self._queues[key]
            if waiting:
                nxt, rest = waiting[: self.max_batch], waiting[self.max_batch :]
                self._queues[key] = rest
                nxt[0].lead = nxt
                nxt[0].ready.set()
            else:
                del self._queues[key]
        for s in batch:
            s.ready.set()
        if followup is not None:
            try:
                followup()
            except Exception:  # the answers are already out; the work is retried later
                log.exception("work after a batch's commit failed")


def _run_isolated(
    key: Hashable, items: list[T], run: BatchRunner[T]
) -> tuple[list[Outcome], Followup]:
    """The batch; if it fails as a whole, each item alone, so one bad item fails alone."""
    try:
        return run(key, items)
    except Exception as error:
        if len(items) == 1:
            return [error], None
    outcomes: list[Outcome] = []
    followups: list[Callable[[], None]] = []
    for item in items:
        try:
            done, followup = run(key, [item])
        except Exception as error:
            done, followup = [error], None
        outcomes.extend(done)
        if followup is not None:
            followups.append(followup)

    def all_followups() -> None:
        for f in followups:
            f()

    return outcomes, (all_followups if followups else None)
