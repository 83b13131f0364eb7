"""What falls due with time: one list, run alike by the worker, ``connects run-due``
and ``/admin/clock``.

Each job is safe to run twice and from several processes at once (it applies its work
once, guarded by the database: account locks, dedupe keys, ``SKIP LOCKED`` claims), so
it may run on a timer in every API process. :data:`DUE_WORK` is the order they run in:
the ledger's own work first (cycles, expiry, purchases and top-ups left pending), then
the notifications it produced (the expiring digest, the fan-out to channels, the
deliveries). A job with ``every`` runs at most that often in a long-running loop (the
worker); ``run-due`` and ``/admin/clock`` run everything each time.

Every job commits its own short transactions, and relies on it: a claim or a lease is
"committed at once", accounts are locked in the order of one job's transaction, the
gateway's steps run under ``db.alone()``, a webhook is signed at a time every other
process can read (R46). So the due work never runs inside a keyed request's one
transaction (R31): :func:`run_due_after_commit` runs it after that commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connects.notify.channels import Notifier
from connects.notify.claims import DeliveryPolicy, worker_name
from connects.notify.delivery import drain
from connects.notify.digest import emit_expiring_digests
from connects.notify.fanout import fan_out
from connects.services import (
    badge,
    boosts,
    cycles,
    hold_deadlines,
    purchase_steps,
    retention,
    topup_recovery,
    topup_runner,
)
from connects.services.context import Context

log = logging.getLogger(__name__)


@dataclass
class DueRun:
    """How one caller runs the due work: who sends the notifications, the delivery
    policy, the name its claims go under, and when each paced job last ran."""

    notifier: Notifier
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    name: str = field(default_factory=worker_name)
    last_ran: MutableMapping[str, datetime] = field(default_factory=dict)


Outcome = int | Mapping[str, int]


@dataclass(frozen=True, slots=True)
class DueJob:
    name: str
    run: Callable[[Context, DueRun], Outcome]
    notifications: bool = False  # part of the notification pipeline (R27-R29)
    every: timedelta | None = None  # at most this often in a long-running loop


def _deliver(ctx: Context, run: DueRun) -> Mapping[str, int]:
    sent, failed = drain(ctx, run.notifier, run.name, run.policy)
    return {"sent": sent, "failed": failed}


DUE_WORK: tuple[DueJob, ...] = (
    DueJob("cycles", lambda ctx, _: cycles.run_cycles_bulk(ctx)),  # R8, R9
    DueJob("expired", lambda ctx, _: cycles.sweep_expired(ctx)),  # R10, R12
    DueJob("purchases_resumed", lambda ctx, _: purchase_steps.resume_pending(ctx)),  # R17
    DueJob("topups", lambda ctx, _: topup_runner.run_pending(ctx)),  # R23
    # What could not be bought, tried again once time removed its cause (R41, R42).
    DueJob("topups_recovered", lambda ctx, _: topup_recovery.run_due(ctx)),
    DueJob("holds_released", lambda ctx, _: hold_deadlines.release_due(ctx)),  # R34
    DueJob("auctions_closed", lambda ctx, _: boosts.close_due(ctx)),  # R35
    DueJob("badges_charged", lambda ctx, _: badge.charge_due(ctx)),  # R37
    # The digest reads every lot expiring within 30 days; its dedupe key keeps it to
    # once a day or week per account anyway (R27).
    DueJob(
        "expiring_digests",
        lambda ctx, _: emit_expiring_digests(ctx),
        notifications=True,
        every=timedelta(minutes=15),
    ),
    DueJob("fanned_out", lambda ctx, _: fan_out(ctx), notifications=True),  # R28
    DueJob("delivered", _deliver, notifications=True),  # R29
    # Stored answers past their retention (R51); the scan is paced like the digest's.
    DueJob(
        "idempotency_purged",
        lambda ctx, _: retention.purge_idempotent_answers(ctx),
        every=timedelta(minutes=15),
    ),
)


def run_due(
    ctx: Context,
    run: DueRun | None = None,
    *,
    ledger: bool = True,
    paced: bool = False,
) -> dict[str, int]:
    """Run the due work once, in order; how much each job did.

    ``ledger=False`` runs the notification jobs alone; ``paced`` honours each job's
    ``every`` (the worker's loop). A failing job is logged and the rest still run: each
    is retried on the next run.
    """
    run = run or DueRun(ctx.notifier)
    done: dict[str, int] = {}
    for job in DUE_WORK:
        if not (ledger or job.notifications):
            continue
        now = ctx.now()
        if paced and job.every is not None:
            last = run.last_ran.get(job.name)
            if last is not None and now - last < job.every:
                continue
            run.last_ran[job.name] = now
        try:
            outcome = job.run(ctx, run)
        except Exception:
            log.exception("due job %s failed", job.name)
            continue
        if isinstance(outcome, Mapping):
            done.update(outcome)
        else:
            done[job.name] = outcome
    return done


def run_due_after_commit(ctx: Context) -> dict[str, int]:
    """The due work a request asks for (``/admin/clock``), outside its transaction.

    In a keyed request that has written (the database clock's move), it runs right
    after that request commits, so the move and its answer commit together (a retry
    replays them, R31) and the work sees the moved clock; what ran is then not known
    to the answer: ``{}``. Otherwise it runs now, each job committing on its own, and
    returns what ran (the request's transaction, if any, opens later, R33)."""
    if ctx.db.defer(lambda: _run_logged(ctx)):
        return {}
    with ctx.db.alone():
        return run_due(ctx)


def _run_logged(ctx: Context) -> None:
    done = run_due(ctx)
    log.info("due work after a clock move: %s", done)
