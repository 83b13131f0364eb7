"""How the dashboard says things to people: money in dollars, numbers grouped, and each
refusal of the engine as a sentence in the owner's words.

The API keeps the stable ``code`` and the engine's own message (``connects.api.errors``);
the dashboard shows the sentence written here for the code, once, with the numbers of
the refusal's ``details`` (cents shown as money). A code with no sentence of its own is
shown as the engine's message, as a sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connects.domain.errors import ConnectsError

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(cents: int | None, currency: str = "USD") -> str:
    """$1,234.50 (cents as money); empty for None."""
    if cents is None:
        return ""
    symbol = _SYMBOLS.get(currency, "")
    text = f"{abs(cents) / 100:,.2f}"
    sign = "-" if cents < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def num(value: int | float | None) -> str:
    """1,234; empty for None."""
    return "" if value is None else f"{value:,}"


def _as_sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "Something went wrong; nothing was changed."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


# What a field is called on the forms, for the engine's invalid_request messages.
FIELD_WORDS = {
    "quantity": "The number of Connects",
    "pay_with": "The way to pay",
    "monthly_connects": "The monthly budget",
    "per_topup": "Connects per top-up",
    "per_month": "Connects per month",
    "threshold": "The threshold",
    "target": "The target balance",
    "low_balance_threshold": "The low-balance threshold",
    "timezone": "The time zone",
    "name": "The name",
    "role": "The role",
    "token": "The payment token",
    "target_url": "The address",
}


def _invalid(exc: ConnectsError, d: dict[str, Any]) -> str:
    field = d.get("field")
    message = exc.message
    if isinstance(field, str) and message.startswith(field + " "):
        words = FIELD_WORDS.get(field)
        if words:
            return _as_sentence(words + message[len(field) :])
    return _as_sentence(message)


def _minutes(seconds: Any) -> str:
    minutes = max(1, -(-int(seconds or 0) // 60))
    return "a minute" if minutes == 1 else f"{minutes} minutes"


_Sentence = Callable[[ConnectsError, dict[str, Any]], str]

# One sentence per stable code (connects.domain.errors), with the refusal's numbers.
SENTENCES: dict[str, _Sentence] = {
    "invalid_request": _invalid,
    "insufficient_earnings": lambda e, d: (
        f"Your earnings ({money(d.get('earnings_cents'))}) cannot pay "
        f"{money(d.get('amount_cents'))}. Pay with a card, or buy fewer Connects."
    ),
    "insufficient_connects": lambda e, d: (
        f"This needs {num(d.get('required'))} Connects and only {num(d.get('available'))} "
        "are available."
    ),
    "price_changed": lambda e, d: (
        f"The job now costs {num(d.get('connects_required'))} Connects, not "
        f"{num(d.get('expected_connects'))}. Check the new price and submit again."
    ),
    "member_budget_exceeded": lambda e, d: (
        f"This would take the member past their monthly budget of {num(d.get('budget'))} "
        f"Connects ({num(d.get('spent_this_month'))} used so far this month)."
    ),
    "payment_declined": lambda e, d: (
        "The card was declined, so no Connects were bought. Try another card or your earnings."
    ),
    "no_billing_method": lambda e, d: "Choose one of the account's cards, or add a card first.",
    "plan_cannot_purchase": lambda e, d: (
        "This account's plan does not sell extra Connects. The owner or an admin can change "
        "the plan on the Settings page."
    ),
    "plan_not_allowed": lambda e, d: "That plan is not available for this account.",
    "owner_is_permanent": lambda e, d: (
        "The owner always stays the owner: they cannot be removed or given another role."
    ),
    "already_member": lambda e, d: "This person is already a member.",
    "already_invited": lambda e, d: (
        "This person already has an invitation waiting for their answer."
    ),
    "invitation_closed": lambda e, d: "This invitation was already answered.",
    "agency_only": lambda e, d: "Only agencies have members and budgets.",
    "forbidden": lambda e, d: (
        "Only the owner or an admin can do this. Ask one of them to make the change."
    ),
    "rate_limited": lambda e, d: (
        f"Too many attempts. Try again in {_minutes(d.get('retry_after'))}."
    ),
    "login_link_invalid": lambda e, d: (
        "This sign-in link has expired or was already used. Ask for a new one."
    ),
    "per_topup_exceeded": lambda e, d: (
        f"One auto top-up buys at most {num(d.get('per_topup'))} Connects."
    ),
    "monthly_limit_reached": lambda e, d: (
        f"Auto top-up has reached this month's limit of {num(d.get('per_month'))} Connects."
    ),
    "auction_closed": lambda e, d: (
        "This job's boost auction is closed: bids can no longer be placed or raised."
    ),
    "hold_ended": lambda e, d: "Those Connects are no longer held: the hold already ended.",
    "freelancer_only": lambda e, d: "The availability badge is for freelancer accounts.",
}


def sentence(exc: ConnectsError) -> str:
    """The refusal ``exc`` as the dashboard says it."""
    say = SENTENCES.get(exc.code)
    return say(exc, exc.details) if say else _as_sentence(exc.message)
