"""What a person reads for each event (R27): what happened, the balance, what to do.

Pure functions of an event's kind and payload; the channel adapters only format them.
Payload fields are read with defaults, so an event from an older or newer writer
still reads well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connects.domain.vocabulary import EventType

# Not an event of the outbox: the message a channel test sends (never stored).
CHANNEL_TEST = "channel_test"

# Why a top-up failed (connects.domain.topup reason codes), and what to do about it.
# Why auto top-up could not buy, and what fixes it, in people's words (R25, R40): the
# one table for the messages and the dashboard (its panel and top bar).
_DEFAULT_CARD = "Add a card, or make one the default, on the Buy Connects page."
_GRANT_AGAIN = "Grant the permission again in step 1 of Auto top-up on the Connects page."
TOPUP_REASONS: dict[str, tuple[str, str]] = {
    "payment_declined": (
        "the card was declined",
        "It is tried again later; or add another card, or make another the default, on "
        "the Buy Connects page.",
    ),
    "paused": (
        "it paused itself after 3 declined charges in a row",
        "Check the card on the Buy Connects page, then resume auto top-up.",
    ),
    "no_billing_method": ("the account has no default card", _DEFAULT_CARD),
    "no_payment_method": ("the account has no default card", _DEFAULT_CARD),
    "no_grant": (
        "the top-up manager has no connects:purchase permission",
        "Grant the permission in step 1 of Auto top-up on the Connects page.",
    ),
    "grant_pending": (
        "the top-up manager's permission is still syncing",
        "It becomes active shortly; nothing to do.",
    ),
    "grant_revoked": ("the top-up manager's permission was revoked", _GRANT_AGAIN),
    "plan_cannot_purchase": (
        "the plan does not sell extra Connects",
        "Change the plan to one that sells Connects on the Settings page.",
    ),
    "monthly_limit_reached": (
        "this month's auto top-up limit is used up",
        "Raise the monthly limit or buy Connects yourself.",
    ),
    "monthly_limit_too_low": (
        "what is left of this month's limit cannot cover the proposal",
        "Raise the monthly limit or buy Connects yourself.",
    ),
}


def topup_reason(reason: str | None) -> tuple[str, str]:
    """``(what happened, what fixes it)`` for a top-up's failure or blocked reason."""
    key = str(reason or "unknown")
    return TOPUP_REASONS.get(key, (key.replace("_", " "), "Check the auto top-up settings."))


@dataclass(frozen=True, slots=True)
class Message:
    """A notification as people read it: a short title and a body of a few sentences."""

    title: str
    body: str

    def text(self) -> str:
        return f"{self.title}\n\n{self.body}"


def _n(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _connects(n: int) -> str:
    return f"{n} Connect" if n == 1 else f"{n} Connects"


def _money(cents: Any, currency: Any = "USD") -> str:
    amount = _n(cents)
    symbol = "$" if str(currency or "USD").upper() == "USD" else f"{currency} "
    return f"{symbol}{amount // 100}.{amount % 100:02d}"


def _day(value: Any) -> str:
    return str(value)[:10] if value else "soon"


def render(kind: str, payload: Mapping[str, Any], account_name: str | None = None) -> Message:
    """The message for an event of ``kind`` with ``payload`` (its ``balance`` included)."""
    balance = _n(payload.get("balance"))
    where = f" on {account_name}" if account_name else ""
    now_have = f"Your balance{where} is now {_connects(balance)}."
    if kind == EventType.BALANCE_LOW:
        threshold = _n(payload.get("threshold"))
        return Message(
            "Connects balance is low",
            f"Your balance{where} is {_connects(balance)}, at or below your alert level "
            f"of {threshold}. Buy Connects or turn on auto top-up so proposals are not "
            "blocked.",
        )
    if kind == EventType.BALANCE_EMPTY:
        return Message(
            "You are out of Connects",
            f"Your balance{where} is 0 Connects: new proposals will be refused. Buy "
            "Connects, or turn on auto top-up to refill automatically when it hits zero.",
        )
    if kind == EventType.TOPUP_SUCCEEDED:
        quantity = _n(payload.get("quantity"))
        cost = _money(payload.get("amount_cents"), payload.get("currency"))
        return Message(
            "Auto top-up bought Connects",
            f"Auto top-up bought {_connects(quantity)} for {cost}. {now_have}",
        )
    if kind == EventType.TOPUP_FAILED:
        what, todo = topup_reason(payload.get("reason"))
        return Message(
            "Auto top-up failed",
            f"Auto top-up could not buy Connects: {what}. {todo} {now_have}",
        )
    if kind == EventType.TOPUP_PAUSED:
        declines = _n(payload.get("declines") or 3)
        return Message(
            "Auto top-up paused",
            f"The card was declined {declines} times in a row, so auto top-up has paused "
            f"itself and buys nothing until an owner or admin resumes it. Check the card, "
            f"then resume auto top-up. {now_have}",
        )
    if kind == EventType.BADGE_STOPPED:
        reason = str(payload.get("reason") or "")
        weekly, most = _n(payload.get("weekly_price")), _n(payload.get("weekly_max"))
        cause = (
            f"its price rose to {_connects(weekly)} a week, above your maximum of {most}"
            if reason == "price_above_maximum"
            else "a daily charge found too few Connects"
        )
        return Message(
            "Availability badge switched off",
            f"Your availability badge switched itself off: {cause}. Switch it on again "
            f"when you are ready. {now_have}",
        )
    if kind == EventType.MONTHLY_LIMIT_REACHED:
        per_month = _n(payload.get("per_month"))
        month = payload.get("month") or "this month"
        return Message(
            "Auto top-up monthly limit reached",
            f"Auto top-up has bought its limit of {_connects(per_month)} for {month}; it "
            f"buys nothing more until next month. {now_have} Raise the monthly limit or "
            "buy Connects yourself if you need more.",
        )
    if kind == EventType.CONNECTS_REFUNDED:
        amount = _n(payload.get("amount"))
        title = payload.get("job_title")
        job = f' for "{title}"' if title else ""
        why = payload.get("reason")
        because = f" ({why})" if why else ""
        return Message(
            "Connects refunded",
            f"{_connects(amount)} spent on a proposal{job} came back{because}. They keep "
            f"their original expiry dates. {now_have}",
        )
    if kind == EventType.CONNECTS_PURCHASED:
        quantity = _n(payload.get("quantity"))
        cost = _money(payload.get("amount_cents"), payload.get("currency"))
        how = "Auto top-up bought" if payload.get("auto") else "You bought"
        return Message("Connects purchased", f"{how} {_connects(quantity)} for {cost}. {now_have}")
    if kind == EventType.CONNECTS_EXPIRING:
        within = _n(payload.get("within_30d"))
        first = _day(payload.get("first_expires_at"))
        return Message(
            "Connects expiring soon",
            f"{_connects(within)}{where} expire in the next 30 days, the first on {first}. "
            f"Use them on proposals before then: expired Connects cannot be spent. "
            f"Your balance is {_connects(balance)}.",
        )
    if kind == CHANNEL_TEST:
        return Message(
            "Connects notifications work",
            f"This is a test message: this channel will receive Connects alerts{where}.",
        )
    return Message(kind.replace("_", " ").capitalize(), f"Event {kind}{where}. {now_have}")
