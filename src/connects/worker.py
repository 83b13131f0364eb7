"""The background worker: everything that falls due, then the notifications (R29).

:meth:`Worker.run_once` runs the due jobs of :mod:`connects.services.due` (cycle grants,
expiry, pending card purchases, auto top-ups left pending), the expiring-Connects
digest, the outbox fan-out and the deliveries. Any number of workers may run at once
on PostgreSQL: the due jobs apply their work once under account locks and dedupe keys,
fan-out is idempotent per (event, channel), and deliveries are claimed with
``FOR UPDATE SKIP LOCKED`` under a lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from connects.notify.channels import Notifier
from connects.notify.claims import DeliveryPolicy, worker_name
from connects.notify.delivery import drain
from connects.notify.digest import emit_expiring_digests
from connects.notify.fanout import fan_out
from connects.services.context import Context
from connects.services.due import run_due

log = logging.getLogger("connects.worker")

# The digest query reads every lot expiring within 30 days: run it now and then, not
# on every tick (the dedupe key keeps it to once a day or week per account anyway).
DIGEST_EVERY = timedelta(minutes=15)


class Worker:
    """One worker process's loop. ``notifier`` sends; ``policy`` sets leases and retries."""

    def __init__(
        self,
        ctx: Context,
        notifier: Notifier,
        *,
        policy: DeliveryPolicy | None = None,
        name: str | None = None,
        due_jobs: bool = True,
    ) -> None:
        self.ctx = ctx
        self.notifier = notifier
        self.policy = policy or DeliveryPolicy()
        self.name = name or worker_name()
        self.due_jobs = due_jobs
        self._digest_at: datetime | None = None

    def run_once(self) -> dict[str, int]:
        """Do all due work once; how much each step did. A failing step is logged and
        the others still run (each is retried on the next run)."""
        done: dict[str, int] = {}
        if self.due_jobs:
            try:
                done.update(self._run_due())
            except Exception:
                log.exception("due jobs failed")
        steps: list[tuple[str, Callable[[], int]]] = [
            ("expiring_digests", self._digests),
            ("fanned_out", lambda: fan_out(self.ctx)),
        ]
        for name, step in steps:
            try:
                done[name] = step()
            except Exception:
                log.exception("worker step %s failed", name)
        sent, failed = 0, 0
        try:
            sent, failed = drain(self.ctx, self.notifier, self.name, self.policy)
        except Exception:
            log.exception("delivering notifications failed")
        done["sent"], done["failed"] = sent, failed
        return done

    def _run_due(self) -> dict[str, int]:
        return run_due(self.ctx)

    def _digests(self) -> int:
        now = self.ctx.now()
        if self._digest_at is not None and now - self._digest_at < DIGEST_EVERY:
            return 0
        self._digest_at = now
        return emit_expiring_digests(self.ctx)

    def run_forever(self, stop_event: threading.Event, interval: float = 2.0) -> None:
        """``run_once`` every ``interval`` seconds until ``stop_event`` is set; the run in
        progress finishes first."""
        while not stop_event.is_set():
            try:
                done = self.run_once()
                if any(done.values()):
                    log.info("worker %s: %s", self.name, done)
            except Exception:  # pragma: no cover - run_once already guards each step
                log.exception("worker run failed")
            stop_event.wait(interval)
