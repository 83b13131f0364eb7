"""The background work inside the API process: what falls due, every few seconds.

Cycle grants, expiry sweeps and pending card purchases (``services.due``) run on a
daemon thread; every job is safe to run in several processes at once, so each API
worker may run its own. A dedicated worker process will take this over later.
"""

from __future__ import annotations

import logging
import threading

from connects.services.context import Context
from connects.worker import Worker

log = logging.getLogger("connects.background")


class BackgroundWork:
    """A thread that runs :meth:`Worker.run_once` (the ``services.due`` jobs, then the
    notifications) every ``interval`` seconds until stopped."""

    def __init__(self, ctx: Context, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="connects-due", daemon=True)
        self.runs = 0
        # The worker's whole run: due jobs, then the notifications (R29).
        self.worker = Worker(ctx)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Ask the thread to stop and wait for the run in progress to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                ran = self.worker.run_once()
                self.runs += 1
                if any(ran.values()):
                    log.info("ran what fell due: %s", ran)
            except Exception:  # keep going: the next run retries (every job is idempotent)
                log.exception("background work failed")
            self._stop.wait(self.interval)
