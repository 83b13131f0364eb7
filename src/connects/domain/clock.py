"""One clock for the whole engine (R33).

Production uses :class:`SystemClock`. Tests and the demo use :class:`SimulatedClock`,
which stands still until moved forward. Every time the engine reads comes from the one
clock it was built with; nothing else calls ``datetime.now``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time, always as an aware UTC datetime."""

    simulated: bool

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    simulated = False

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to (tests, demos; never production)."""

    simulated = True

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start or datetime.now(UTC))

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        self._now += delta
        return self._now

    def set(self, to: datetime) -> datetime:
        to = ensure_utc(to)
        if to < self._now:
            raise ValueError("the simulated clock only moves forward")
        self._now = to
        return self._now


def ensure_utc(value: datetime) -> datetime:
    """An aware UTC datetime from an aware one (or a naive one taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
