"""Auto top-up's own state (R41, R42), kept on the account's settings row.

Four columns the owner never sets: ``declines`` (in a row since the last success),
``retry_at`` (when a declined card is tried again), ``paused_at`` (paused after
:data:`~connects.domain.topup_status.PAUSE_AFTER_DECLINES` declines until an owner or
admin resumes it) and ``retry_topup_id`` (the failed or skipped top-up that waits to be
tried again once its cause is gone). They are read and written here alone, always
inside a transaction that holds the account's lock, so the decision
(:mod:`connects.services.topup_trigger`), the runner, the recovery and the status all
see one story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from connects.db.schema import auto_topup_settings
from connects.domain.topup_status import DEFAULT_RETRY_SECONDS, holding, retry_wait
from connects.domain.vocabulary import BlockedReason, TopUpStatus, TopUpTrigger

# Reasons a failed top-up's cause can go away by itself or by the owner's hand (R41):
# such a top-up waits to be tried again. ``no_billing_method`` is the purchase's own
# code for the status's ``no_payment_method``. Any other failure (the plan sells no
# Connects) is not retried: nothing would tell it that its cause is gone.
RETRIED = frozenset({*(r.value for r in BlockedReason), "no_billing_method"})
# The triggers whose failures wait: a balance at the threshold. A just-in-time top-up
# belonged to a proposal that was refused with it.
WAITING_TRIGGERS = frozenset({TopUpTrigger.BALANCE_ZERO.value, TopUpTrigger.THRESHOLD.value})

_c = auto_topup_settings.c


@dataclass(frozen=True, slots=True)
class State:
    declines: int = 0
    retry_at: datetime | None = None
    paused_at: datetime | None = None
    retry_topup_id: str | None = None

    def holding(self, now: datetime) -> BlockedReason | None:
        """What keeps the card from being charged now: a pause or a decline's wait (R42)."""
        return holding(
            paused=self.paused_at is not None,
            declines=self.declines,
            retry_at=self.retry_at,
            now=now,
        )


def load_state(conn: Connection, account_id: str) -> State:
    row = conn.execute(
        select(_c.declines, _c.retry_at, _c.paused_at, _c.retry_topup_id).where(
            _c.account_id == account_id
        )
    ).one_or_none()
    if row is None:
        return State()
    return State(int(row.declines or 0), row.retry_at, row.paused_at, row.retry_topup_id)


def _write(conn: Connection, account_id: str, **values: Any) -> None:
    conn.execute(update(auto_topup_settings).where(_c.account_id == account_id).values(**values))


def after_outcome(
    conn: Connection,
    account_id: str,
    topup_id: str,
    *,
    trigger: str,
    status: str,
    reason: str | None,
    now: datetime,
    retry_seconds: int = DEFAULT_RETRY_SECONDS,
) -> bool:
    """Record what a top-up's outcome means for the next one; True when this decline
    paused auto top-up (the caller sends ``topup_paused``).

    A success ends the decline streak and any wait. A decline counts one more: the
    card is tried again after 1 h, 2 h, ... (``retry_seconds``, doubling), and the
    third in a row pauses (R42). A failed or skipped balance top-up whose cause can go
    away waits to be tried again (R41).
    """
    if status == TopUpStatus.SUCCEEDED:
        _write(conn, account_id, declines=0, retry_at=None, retry_topup_id=None)
        return False
    values: dict[str, Any] = {}
    paused = False
    if status == TopUpStatus.FAILED and reason == BlockedReason.PAYMENT_DECLINED:
        declines = load_state(conn, account_id).declines + 1
        wait = retry_wait(declines, retry_seconds)
        values["declines"] = declines
        if wait is None:
            values |= {"paused_at": now, "retry_at": None}
            paused = True
        else:
            values["retry_at"] = now + wait
    if trigger in WAITING_TRIGGERS and reason in RETRIED:
        values["retry_topup_id"] = topup_id
    if values:
        _write(conn, account_id, **values)
    return paused


def stop_waiting(conn: Connection, account_id: str) -> None:
    """Nothing waits any more: it is being tried again, or the balance rose above the
    threshold (R41)."""
    _write(conn, account_id, retry_topup_id=None)


def card_changed(conn: Connection, account_id: str) -> None:
    """A new default card: the declined one's wait is over (R41, R42); a pause stays."""
    _write(conn, account_id, declines=0, retry_at=None)


def resume(conn: Connection, account_id: str) -> bool:
    """End a pause (R42); False when auto top-up was not paused."""
    if load_state(conn, account_id).paused_at is None:
        return False
    _write(conn, account_id, paused_at=None, declines=0, retry_at=None)
    return True
