"""The background worker: the due work of :mod:`connects.services.due`, on a loop.

:meth:`Worker.run_once` runs :data:`connects.services.due.DUE_WORK` once (cycle grants,
expiry, pending card purchases and auto top-ups, then the expiring digest, the outbox
fan-out and the deliveries). Any number of workers may run at once on PostgreSQL: the
jobs apply their work once under account locks and dedupe keys, fan-out is idempotent
per (event, channel), and deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` under
a lease.
"""

from __future__ import annotations

import logging
import threading

from connects.notify.channels import Notifier
from connects.notify.claims import DeliveryPolicy
from connects.services.context import Context
from connects.services.due import DueRun, run_due

log = logging.getLogger("connects.worker")


class Worker:
    """One worker process's loop. ``notifier`` sends; ``policy`` sets leases and retries;
    ``due_jobs=False`` runs the notification jobs alone."""

    def __init__(
        self,
        ctx: Context,
        notifier: Notifier | None = None,
        *,
        policy: DeliveryPolicy | None = None,
        name: str | None = None,
        due_jobs: bool = True,
    ) -> None:
        self.ctx = ctx
        self.run = DueRun(notifier or ctx.notifier, policy or DeliveryPolicy())
        if name is not None:
            self.run.name = name
        self.due_jobs = due_jobs

    @property
    def name(self) -> str:
        return self.run.name

    def run_once(self) -> dict[str, int]:
        """Do all due work once; how much each job did."""
        return run_due(self.ctx, self.run, ledger=self.due_jobs, paced=True)

    def run_forever(self, stop_event: threading.Event, interval: float = 2.0) -> None:
        """``run_once`` every ``interval`` seconds until ``stop_event`` is set; the run in
        progress finishes first."""
        while not stop_event.is_set():
            try:
                done = self.run_once()
                if any(done.values()):
                    log.info("worker %s: %s", self.name, done)
            except Exception:  # pragma: no cover - run_due already guards each job
                log.exception("worker run failed")
            stop_event.wait(interval)
