"""Whether auto top-up can buy now (R40), and how long a declined card waits (R42).

Pure functions over plain facts. :mod:`connects.services.topup_status` gathers the
facts of one account (its grants, its default card, the decline streak, what is left of
the month's limit) and asks :func:`status`; the API, the dashboard and the top-up
runner all read the answer from there, so the reasons are decided in one place.

The reasons, checked in this order (the first that holds is the one shown, and the
one to fix first):

=========================  ===================================================  ==========
reason                     what holds                                           next try
=========================  ===================================================  ==========
``paused``                 3 declines in a row; resumed by an owner or admin    --
``grant_pending``          the top-up manager's grant is in its sync delay      active_at
``grant_revoked``          its grant was revoked, and no other is live          --
``no_grant``               it holds no ``connects:purchase`` grant              --
``no_payment_method``      the account has no default card (R44)                --
``payment_declined``       the card was declined; waiting 1 h, 2 h, ...         retry_at
``monthly_limit_reached``  nothing is left of this month's ``per_month``        next month
=========================  ===================================================  ==========
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connects.domain.vocabulary import BlockedReason, TopUpState

PAUSE_AFTER_DECLINES = 3  # declines in a row that pause auto top-up (R42)
DEFAULT_RETRY_SECONDS = 3600  # the wait after the first decline; it doubles after each (R42)


@dataclass(frozen=True, slots=True)
class Facts:
    """What auto top-up's status is decided from, for one account at one moment."""

    grants: tuple[tuple[str, datetime], ...]  # (status, active_at) of its purchase grants
    has_card: bool  # a default billing method
    paused: bool
    declines: int  # in a row, since the last success
    retry_at: datetime | None  # when a declined card is tried again
    left_this_month: int
    next_month_at: datetime  # when this month's limit starts anew


@dataclass(frozen=True, slots=True)
class Status:
    """``active``, or ``blocked`` with its reason and, where known, when it tries again."""

    state: TopUpState
    reason: BlockedReason | None = None
    next_try_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state is TopUpState.ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.state.value,
            "blocked_reason": self.reason.value if self.reason is not None else None,
            "next_try_at": self.next_try_at,
        }


ACTIVE = Status(TopUpState.ACTIVE)


def _blocked(reason: BlockedReason, at: datetime | None = None) -> Status:
    return Status(TopUpState.BLOCKED, reason, at)


def grant_block(
    grants: Iterable[tuple[str, datetime]],
) -> tuple[BlockedReason | None, datetime | None]:
    """Why the top-up manager may not buy (R6, R19), and when a pending grant turns
    active; ``(None, None)`` while one of its purchase grants is active."""
    known = list(grants)
    statuses = {s for s, _ in known}
    if "active" in statuses:
        return None, None
    pending = [at for s, at in known if s == "pending"]
    if pending:
        return BlockedReason.GRANT_PENDING, min(pending)
    if "revoked" in statuses:
        return BlockedReason.GRANT_REVOKED, None
    return BlockedReason.NO_GRANT, None


def holding(
    *, paused: bool, declines: int, retry_at: datetime | None, now: datetime
) -> BlockedReason | None:
    """What keeps auto top-up from charging the card now (R42): a pause, or the wait
    after a decline. A crossing or a just-in-time top-up in that time buys nothing."""
    if paused:
        return BlockedReason.PAUSED
    if declines > 0 and retry_at is not None and retry_at > now:
        return BlockedReason.PAYMENT_DECLINED
    return None


def status(facts: Facts, now: datetime) -> Status:
    """Auto top-up's status (R40): the first reason of the table above that holds."""
    hold = holding(paused=facts.paused, declines=facts.declines, retry_at=facts.retry_at, now=now)
    if hold is BlockedReason.PAUSED:
        return _blocked(hold)
    reason, at = grant_block(facts.grants)
    if reason is not None:
        return _blocked(reason, at)
    if not facts.has_card:
        return _blocked(BlockedReason.NO_PAYMENT_METHOD)
    if hold is not None:
        return _blocked(hold, facts.retry_at)
    if facts.left_this_month <= 0:
        return _blocked(BlockedReason.MONTHLY_LIMIT_REACHED, facts.next_month_at)
    return ACTIVE


def retry_wait(declines: int, base_seconds: int = DEFAULT_RETRY_SECONDS) -> timedelta | None:
    """After the ``declines``-th decline in a row, how long until the card is tried
    again: ``base_seconds`` (1 h), then doubling; None: pause instead (R42)."""
    if declines >= PAUSE_AFTER_DECLINES:
        return None
    return timedelta(seconds=max(base_seconds, 0) * 2 ** max(declines - 1, 0))
