"""What falls due with time: one entry point for the worker, ``/admin/clock`` and the CLI.

Every job here is safe to run twice and from several processes at once (each applies
its work once, guarded by the database), so it may run on a timer in every API worker.
Other modules add their jobs to :data:`DUE_JOBS` (name, function returning a count).
"""

from __future__ import annotations

from collections.abc import Callable

from connects.services import cycles, purchases
from connects.services.context import Context

DueJob = Callable[[Context], int]

DUE_JOBS: list[tuple[str, DueJob]] = [
    ("cycles", cycles.run_cycles_bulk),  # R8, R9: set-based on PostgreSQL
    ("expired", cycles.sweep_expired),  # R10, R12
    ("purchases_resumed", purchases.resume_pending),  # R17
]


def _installed() -> list[tuple[str, DueJob]]:
    jobs = list(DUE_JOBS)
    try:  # auto top-up ships as its own module
        from connects.services.topups import run_pending
    except ImportError:  # pragma: no cover
        return jobs
    if not any(job is run_pending for _, job in jobs):
        jobs.append(("topups", run_pending))  # R23: finish top-ups left pending
    return jobs


def run_due(ctx: Context) -> dict[str, int]:
    """Run every due job once, in order; how much each one did."""
    return {name: job(ctx) for name, job in _installed()}
