"""Following a PostgreSQL failover: which errors mean "the primary is gone", and the
bounded retry of work that is safe to run again.

When the primary dies, or a server that was the primary is now a standby, every
pooled connection to it is useless. :func:`lost_primary` names those errors: the
connection broke or could not be made (no SQLSTATE, or class ``08``), the server is
shutting down or starting (``57P01``-``57P03``), or it refuses writes
(``25006 read_only_sql_transaction``: a standby). The engine marks them as
disconnects (:func:`mark_disconnects`), so SQLAlchemy drops the connection and every
other connection of the pool made before it; the next checkout connects afresh, and
with ``target_session_attrs=read-write`` libpq finds whichever server is the primary
now (:mod:`connects.db.urls`).

Only work that is safe to repeat is retried here (:class:`Retry`): reads, and keyed
writes (R31), whose one transaction either committed with its answer (the retry
finds and replays it) or left nothing (the retry runs afresh). A card purchase in a
keyed request is named by its key and charged with the purchase id as the gateway's
idempotency key (:mod:`connects.services.purchases`), so a re-run finishes the same
charge and never makes another. Unkeyed writes are never repeated: they answer 503
and the client decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, event, exc

log = logging.getLogger("connects.db")

# SQLSTATEs of a server that went away or cannot take writes any more.
LOST_PRIMARY_STATES = frozenset({"25006", "57P01", "57P02", "57P03"})
FIRST_PAUSE = 0.05  # seconds before the first retry; doubles each time
LONGEST_PAUSE = 1.0

T = TypeVar("T")


def sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None) or error
    state = getattr(orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def lost_primary(error: BaseException) -> bool:
    """Whether ``error`` says the server this connection reached is no primary now."""
    if isinstance(error, exc.DisconnectionError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    state = sqlstate(error)
    if state is not None:
        return state in LOST_PRIMARY_STATES or state.startswith("08")
    # No SQLSTATE: the driver could not connect or lost the connection.
    orig = getattr(error, "orig", None)
    return isinstance(error, exc.OperationalError | exc.InterfaceError) or (
        orig is not None and type(orig).__name__ in ("OperationalError", "InterfaceError")
    )


def mark_disconnects(engine: Engine) -> None:
    """Make SQLAlchemy treat :func:`lost_primary` errors as disconnects (PostgreSQL)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if not context.is_disconnect and lost_primary(context.original_exception):
            context.is_disconnect = True  # drops this connection and the pool's older ones


class Retry:
    """Retry work that is safe to repeat while the database fails over, for at most
    ``seconds`` (0: never), pausing from 50 ms doubling to 1 s between tries."""

    def __init__(self, seconds: float, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.pause = FIRST_PAUSE
        self.tries = 0
        self._sleep = sleep

    def again(self, error: BaseException) -> bool:
        """Whether to run the work again after ``error`` (after a pause): only for a
        lost primary, and while time is left."""
        if self.seconds <= 0 or not lost_primary(error):
            return False
        if time.monotonic() + self.pause > self.deadline:
            return False
        self.tries += 1
        log.warning(
            "database lost; retrying",
            extra={
                "attempt": self.tries,
                "retry_in_seconds": self.pause,
                "error": str(error)[:200],
            },
        )
        self._sleep(self.pause)
        self.pause = min(self.pause * 2, LONGEST_PAUSE)
        return True

    def run(self, work: Callable[[], T]) -> T:
        """``work()``, run again after each lost primary while time is left."""
        while True:
            try:
                return work()
            except Exception as error:
                if not self.again(error):
                    raise
