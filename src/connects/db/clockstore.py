"""The simulated clock kept in the database, shared by every process (R33).

Several API workers and the background worker must agree on the simulated time, so it
lives in the ``runtime`` table (key ``clock``), not in process memory: ``now()`` reads
it, ``advance()``/``set()`` write it, with the row locked, and it only moves forward.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from connects.db.engine import Database
from connects.db.schema import runtime
from connects.db.sql import insert_ignore
from connects.domain.clock import ensure_utc

CLOCK_KEY = "clock"
# Fixed width, so that comparing the stored strings compares the times.
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _encode(moment: datetime) -> str:
    return ensure_utc(moment).strftime(_FORMAT)


def _decode(value: str) -> datetime:
    return datetime.strptime(value, _FORMAT).replace(tzinfo=UTC)


class DatabaseClock:
    """A simulated clock whose time is a row in ``runtime`` (tests, demos; never production)."""

    simulated = True

    def __init__(self, db: Database, start: datetime | None = None) -> None:
        self.db = db
        self._start = start

    def _ensure(self) -> None:
        """Start the clock (at ``start`` or the real time) unless a process already did."""
        with self.db.alone(), self.db.begin() as conn:
            insert_ignore(
                conn,
                runtime,
                {"key": CLOCK_KEY, "value": _encode(self._start or datetime.now(UTC))},
            )

    def now(self) -> datetime:
        with self.db.read() as conn:
            value = conn.execute(
                select(runtime.c.value).where(runtime.c.key == CLOCK_KEY)
            ).scalar_one_or_none()
        if value is None:
            self._ensure()
            return self.now()
        return _decode(value)

    def set(self, to: datetime) -> datetime:
        """Move the clock to ``to``; refused (``ValueError``) when that is in the past."""
        to = ensure_utc(to)
        return self._move(lambda current: to)

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` from the time it shows now."""
        if delta < timedelta(0):
            raise ValueError("the simulated clock only moves forward")
        return self._move(lambda current: current + delta)

    def _move(self, target: Callable[[datetime], datetime]) -> datetime:
        # One write transaction with the row locked: two processes moving the clock at
        # once apply one after the other, and neither moves it back.
        self.now()  # started
        with self.db.begin() as conn:
            current = _decode(
                conn.execute(
                    select(runtime.c.value).where(runtime.c.key == CLOCK_KEY).with_for_update()
                ).scalar_one()
            )
            to = target(current)
            if to < current:
                raise ValueError("the simulated clock only moves forward")
            conn.execute(
                update(runtime).where(runtime.c.key == CLOCK_KEY).values(value=_encode(to))
            )
        return to
