"""Start-up: wait for the database to answer before using it.

``connects serve`` and ``connects worker`` call :func:`wait_for_database` once, before
their first use of the engine (the migrations, the first run of the due work). A
database that is restarting (a PostgreSQL failover, containers starting together)
is retried with a bounded exponential back-off, each retry one JSON log line of
``connects.db``; if it has not answered within the timeout, :class:`DatabaseUnavailable`
says so and the command exits non-zero. Only connection failures are retried: a URL
that cannot be parsed, or a driver that is not installed, fails at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

log = logging.getLogger("connects.db")

FIRST_DELAY = 0.25  # seconds before the first retry; doubles each time
MAX_DELAY = 5.0  # never more than this between two attempts
# Errors that a database coming up clears: refused or reset connections, "the database
# system is starting up", a SQLite file whose directory is not mounted yet.
TRANSIENT = (exc.OperationalError, exc.InterfaceError)


class DatabaseUnavailable(Exception):
    """The database did not answer within the start-up timeout."""

    def __init__(self, url: str, waited: float, attempts: int, error: str) -> None:
        self.url, self.waited, self.attempts, self.error = url, waited, attempts, error
        super().__init__(
            f"the database at {url} did not answer within {waited:.1f} s "
            f"({attempts} attempt{'s' if attempts != 1 else ''}); last error: {error}"
        )


def safe_url(url: str) -> str:
    """``url`` with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparsable database URL>"


def _short(error: BaseException) -> str:
    """The driver's message on one line (what a log line and an operator need)."""
    orig = getattr(error, "orig", None) or error
    return " ".join(str(orig).split())[:500] or type(orig).__name__


def probe(url: str, timeout: float = 10.0) -> None:
    """Open one connection to ``url`` and run ``SELECT 1``; raises if that fails."""
    parsed = make_url(url)
    connect_args: dict[str, object] = {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # libpq counts whole seconds and takes at least 2: bound a host that never answers.
        connect_args["connect_timeout"] = max(2, math.ceil(timeout))
    engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def wait_for_database(
    url: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Wait until the database at ``url`` answers, at most ``timeout`` seconds (0: try
    once); the number of attempts it took. Raises :class:`DatabaseUnavailable`."""
    timeout = max(0.0, timeout)
    start = monotonic()
    deadline = start + timeout
    shown = safe_url(url)
    attempt = 0
    while True:
        attempt += 1
        try:
            probe(url, timeout=min(10.0, max(deadline - monotonic(), 0.0)))
        except TRANSIENT as error:
            reason = _short(error)
            waited = monotonic() - start
            left = deadline - monotonic()
            if left <= 0:
                log.error(
                    "database unreachable: giving up",
                    extra={
                        "database": shown,
                        "attempts": attempt,
                        "waited_seconds": round(waited, 2),
                        "timeout_seconds": timeout,
                        "error": reason,
                    },
                )
                raise DatabaseUnavailable(shown, waited, attempt, reason) from error
            delay = min(MAX_DELAY, FIRST_DELAY * 2 ** (attempt - 1), left)
            log.warning(
                "database unreachable: retrying",
                extra={
                    "database": shown,
                    "attempt": attempt,
                    "retry_in_seconds": round(delay, 2),
                    "waited_seconds": round(waited, 2),
                    "timeout_seconds": timeout,
                    "error": reason,
                },
            )
            sleep(delay)
            continue
        if attempt > 1:
            log.info(
                "database reachable",
                extra={
                    "database": shown,
                    "attempts": attempt,
                    "waited_seconds": round(monotonic() - start, 2),
                },
            )
        return attempt
