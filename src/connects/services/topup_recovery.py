"""Trying again what auto top-up could not buy, once its cause is gone (R41).

A balance top-up that failed or was skipped for a cause that can go away (no grant, no
default card, a declined card's wait, a pause, the month's limit) is remembered as the
account's *waiting* top-up (:mod:`connects.services.topup_state`). It is tried again:

* after the commit of a change that can remove its cause, raised as
  :class:`~connects.domain.events.TopUpConditionsChanged` (a grant made, a card added
  or made the default, the settings changed, a resume) and handled through the
  registry of :mod:`connects.bootstrap`;
* by the due work (:func:`run_due`) for causes that time removes: a grant's sync delay
  ran out, a declined card's wait ended, a new month began.

Exactly once (R23): the retry is an ordinary decision of
:mod:`connects.services.topup_trigger`, taken under the account's lock, keyed
``retry:<the waiting top-up's id>`` (unique per account), and executed by the runner's
claim under a lease. However many recoveries race, one of them decides the retry and
the others find it pending, done, or the balance above the threshold.

Switching auto top-up on, or raising its threshold, while the balance is already at
or below the threshold buys at once (``catch_up``), keyed by the ledger's sequence
number: a balance that did not move buys once.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from connects.db.schema import auto_topup_settings, topups
from connects.domain.events import TopUpConditionsChanged
from connects.domain.vocabulary import TopUpStatus
from connects.services import topup_state, topup_status
from connects.services.context import Context
from connects.services.topup_trigger import decide_in, settings_of
from connects.services.uow import UnitOfWork

log = logging.getLogger(__name__)

BATCH = 200  # waiting accounts looked at per run of the due work


def recover(ctx: Context, account_id: str, *, catch_up: bool = False) -> str | None:
    """Try again the account's waiting top-up if its cause is gone (or, with
    ``catch_up``, buy if the balance is at or below the threshold); the id of the
    top-up decided here, executed before this returns, or None."""
    uow = UnitOfWork(ctx)
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        settings = settings_of(book)
        state = topup_state.load_state(conn, account_id)
        if not settings.enabled:
            return None
        if book.available() > settings.threshold:
            if state.retry_topup_id is not None:  # the dip is over: nothing waits
                topup_state.stop_waiting(conn, account_id)
            return None
        pending = conn.execute(
            select(topups.c.id)
            .where(topups.c.account_id == account_id, topups.c.status == TopUpStatus.PENDING)
            .limit(1)
        ).first()
        if pending is not None:  # one is on its way: it comes first
            return None
        if state.retry_topup_id is not None:
            if not topup_status.status_of(conn, account_id, tx.now).active:
                return None  # the cause is still there
            key = f"retry:{state.retry_topup_id}"
            topup_state.stop_waiting(conn, account_id)  # a new failure waits in its place
        elif catch_up:
            key = f"catch_up:{book.seq}"
        else:
            return None
        topup_id = decide_in(book, settings, trigger=settings.trigger, key=key)
    if ctx.bus is not None:  # the decision's TopUpDecided: the runner buys, once
        ctx.bus.publish(ctx, uow.collect())
    return topup_id


def on_conditions_changed(ctx: Context, event: TopUpConditionsChanged) -> None:
    """The reaction to a committed change auto top-up depends on (R41)."""
    try:
        recover(ctx, event.account_id, catch_up=event.catch_up)
    except Exception:  # the change is committed; the due work tries again
        log.exception("auto top-up recovery after %s on %s", event.cause, event.account_id)


def run_due(ctx: Context, batch: int = BATCH) -> int:
    """Try again every waiting top-up whose cause time may have removed (a grant's
    sync delay, a declined card's wait, a new month); how many were decided."""
    now = ctx.now()
    c = auto_topup_settings.c
    with ctx.db.read() as conn:
        waiting = list(
            conn.execute(
                select(c.account_id)
                .where(
                    c.retry_topup_id.isnot(None),
                    c.enabled,
                    c.paused_at.is_(None),
                    (c.retry_at.is_(None)) | (c.retry_at <= now),
                )
                .order_by(c.account_id)
                .limit(batch)
                .execution_options(all_accounts=True)  # a sweep across shards
            ).scalars()
        )
    decided = 0
    for account_id in waiting:
        with ctx.db.read() as conn:  # a look without the lock first: most still wait
            if not topup_status.status_of(conn, account_id, now).active:
                continue
        try:
            decided += recover(ctx, account_id) is not None
        except Exception:
            log.exception("auto top-up recovery of %s failed", account_id)
    return decided
