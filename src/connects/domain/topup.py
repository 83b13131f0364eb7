"""Auto top-up rules (R19-R22): the settings an owner chooses and how much to buy.

Pure functions over plain values. The service layer reads the settings and what was
already bought this month under the account's lock, asks :func:`decide`, and records
the answer as a top-up before any money moves.

Reasons a top-up buys nothing or fails are stable codes, shown in the history (R25)
and sent with ``topup_failed``:

=========================  ======================================================
reason                     meaning
=========================  ======================================================
``monthly_limit_reached``  nothing is left of this month's limit (skipped, R21)
``monthly_limit_too_low``  just-in-time: what is left cannot cover the proposal
``no_grant``               the top-up manager holds no ``connects:purchase`` grant
``grant_pending``          the grant is still in its sync delay (R19)
``grant_revoked``          the grant was revoked (R6)
``no_billing_method``      the account has no default payment method
``payment_declined``       the card was declined (the decline code goes with it)
``plan_cannot_purchase``   the plan does not sell extra Connects
=========================  ======================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from connects.domain.errors import (
    Forbidden,
    InvalidRequest,
    MonthlyLimitReached,
    PerTopUpExceeded,
)
from connects.domain.plans import DEFAULT_MAX_PURCHASE

TOPUP_MANAGER_ID = "topup-manager"  # the business manager that buys for the account (R6)
DEFAULT_PER_TOPUP = 40  # R19, seed 000
DEFAULT_PER_MONTH = 400
MODES = ("fixed", "target")
TRIGGERS = ("balance_zero", "threshold", "just_in_time")
STATUSES = ("pending", "succeeded", "failed", "skipped")
LIMIT_REACHED = "monthly_limit_reached"
LIMIT_TOO_LOW = "monthly_limit_too_low"

# Sanity bounds: a typo of an extra zero should be refused, not bought. One top-up is
# one purchase, so it is also at most the configured ``max_purchase`` (R43).
MAX_PER_MONTH = 100_000
MAX_LEVEL = 10_000  # threshold and target


def _whole(value: Any, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


@dataclass(frozen=True, slots=True)
class TopUpSettings:
    """One account's auto top-up settings; the defaults are the seed's (R19)."""

    enabled: bool = False
    per_topup: int = DEFAULT_PER_TOPUP
    per_month: int = DEFAULT_PER_MONTH
    threshold: int = 0  # top up when the balance falls to this or below (R20)
    just_in_time: bool = False  # R22
    mode: str = "fixed"  # "fixed": buy per_topup; "target": buy up to ``target``
    target: int | None = None

    def changed(
        self, fields: Mapping[str, Any], *, max_purchase: int = DEFAULT_MAX_PURCHASE
    ) -> TopUpSettings:
        """These settings with ``fields`` changed, or ``invalid_request`` naming every bad field."""
        known = set(self.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InvalidRequest(
                f"unknown auto top-up setting(s): {', '.join(unknown)}",
                field=unknown[0],
                fields={name: "is not a setting" for name in unknown},
            )
        new = replace(self, **fields)
        new.validate(max_purchase=max_purchase)
        return new

    def validate(self, *, max_purchase: int = DEFAULT_MAX_PURCHASE) -> None:
        """Refuse settings that cannot work, naming each field and what is wrong (R43).

        ``details.fields`` maps each bad field to what is wrong with it, worded to read
        after the field's name ("per_topup cannot be more than the monthly limit (400)")
        or its label in a form; a rule between two fields names both.
        """
        problems = self._problems(max_purchase)
        if problems:
            first = next(iter(problems))
            raise InvalidRequest(
                "; ".join(f"{name} {why}" for name, why in problems.items()),
                field=first,
                fields=problems,
            )

    def _problems(self, max_purchase: int) -> dict[str, str]:
        problems: dict[str, str] = {}
        for name in ("enabled", "just_in_time"):
            if not isinstance(getattr(self, name), bool):
                problems[name] = "must be true or false"
        if not _whole(self.per_topup, 1, max_purchase):
            problems["per_topup"] = f"must be a whole number from 1 to {max_purchase:,}"
        if not _whole(self.per_month, 1, MAX_PER_MONTH):
            problems["per_month"] = f"must be a whole number from 1 to {MAX_PER_MONTH:,}"
        if not _whole(self.threshold, 0, MAX_LEVEL):
            problems["threshold"] = f"must be a whole number from 0 to {MAX_LEVEL:,}"
        if self.mode not in MODES:
            problems["mode"] = "must be 'fixed' or 'target'"
        top = min(MAX_LEVEL, max_purchase)
        if self.target is not None and not _whole(self.target, 1, top):
            problems["target"] = f"must be a whole number from 1 to {top:,}"
        elif self.mode == "target" and self.target is None:
            problems["target"] = "is required in target mode"
        if problems:
            return problems
        # Rules between fields, once each field is sound on its own (R43).
        if self.per_topup > self.per_month:
            problems["per_topup"] = f"cannot be more than the monthly limit ({self.per_month:,})"
            problems["per_month"] = f"cannot be less than one top-up ({self.per_topup:,})"
        if self.mode == "target" and self.target is not None and self.target <= self.threshold:
            problems["target"] = f"must be above the threshold ({self.threshold:,})"
            problems["threshold"] = f"must be below the target ({self.target:,})"
        return problems

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def trigger(self) -> str:
        """How a drop to the threshold is named: the seed's "hits zero", or a threshold."""
        return "balance_zero" if self.threshold == 0 else "threshold"


@dataclass(frozen=True, slots=True)
class Decision:
    """How many Connects one trigger buys; ``skipped`` says why it buys none."""

    quantity: int
    skipped: str | None = None

    @property
    def buys(self) -> bool:
        return self.quantity > 0


NOTHING = Decision(0)


def grant_status(active_at: datetime, revoked_at: datetime | None, now: datetime) -> str:
    """A grant is ``pending`` through its sync delay, then ``active`` until revoked (R6, R19)."""
    if revoked_at is not None and revoked_at <= now:
        return "revoked"
    return "pending" if active_at > now else "active"


def crossed(before: int, after: int, threshold: int) -> bool:
    """Whether a drop from ``before`` to ``after`` reached the threshold (R20).

    Only the crossing counts: a balance already at or below it does not trigger again
    until a credit lifts it above.
    """
    return before > threshold >= after


def decide(
    settings: TopUpSettings,
    *,
    balance: int,
    bought_this_month: int,
    need: int | None = None,
) -> Decision:
    """How many Connects to buy now (R20-R22).

    ``bought_this_month`` counts succeeded and pending top-ups of the calendar month in
    the account's time zone. ``need`` is a proposal's price for a just-in-time top-up:
    it buys at least the shortfall, still in one purchase, or nothing when the month's
    limit cannot cover it (a purchase that still leaves the proposal short is waste).
    """
    if settings.mode == "target" and settings.target is not None:
        wanted = settings.target - balance
    else:
        wanted = settings.per_topup
    shortfall = 0
    if need is not None:
        shortfall = max(need - balance, 0)
        wanted = max(wanted, shortfall)
    if wanted <= 0:
        return NOTHING
    left = settings.per_month - bought_this_month
    if left <= 0:
        return Decision(0, LIMIT_REACHED)
    if shortfall > left:
        return Decision(0, LIMIT_TOO_LOW)
    return Decision(min(wanted, left))


def check_manager_purchase(
    settings: TopUpSettings, *, quantity: int, pay_with: str, bought_this_month: int
) -> None:
    """Refuse a business manager's own purchase outside the owner's limits (R48).

    It pays only with the account's payment method, never from earnings; one purchase
    buys at most ``per_topup``, and ``bought_this_month`` (auto top-up's and the
    manager's own, pending or succeeded) plus this one at most ``per_month``.
    """
    if pay_with == "earnings":
        raise Forbidden(
            "the business manager pays only with the account's payment method",
            field="pay_with",
        )
    if quantity > settings.per_topup:
        raise PerTopUpExceeded(
            f"one purchase by the business manager buys at most {settings.per_topup}",
            field="quantity",
            per_topup=settings.per_topup,
        )
    left = max(settings.per_month - bought_this_month, 0)
    if quantity > left:
        raise MonthlyLimitReached(
            f"the monthly limit of {settings.per_month} leaves {left} this month",
            field="quantity",
            per_month=settings.per_month,
            bought_this_month=bought_this_month,
            left_this_month=left,
        )
