"""The dashboard's words for the engine's refusals (issue 24): sentences in the owner's
words, money in dollars, one sentence per stable code (R32 keeps the codes for the API)."""

from __future__ import annotations

import pytest

import connects.web.auth  # noqa: F401  (login_link_invalid is a ConnectsError too)
from connects.domain.errors import (
    ConnectsError,
    InsufficientEarnings,
    InvalidRequest,
    MemberBudgetExceeded,
    NotFound,
    OwnerIsPermanent,
    RateLimited,
    all_error_classes,
)
from connects.web.words import FIELD_WORDS, SENTENCES, money, sentence


def test_insufficient_earnings_in_dollars() -> None:
    exc = InsufficientEarnings(
        "earnings of 50000 cents cannot pay 100000 cents",
        earnings_cents=50_000,
        amount_cents=100_000,
    )
    assert sentence(exc) == (
        "Your earnings ($500.00) cannot pay $1,000.00. Pay with a card, or buy fewer Connects."
    )
    assert exc.code == "insufficient_earnings" and "cents" in exc.message  # the API's, unchanged


def test_invalid_request_names_the_field_as_the_form_does() -> None:
    exc = InvalidRequest("quantity must be a whole number of at least 1", field="quantity")
    assert sentence(exc) == "The number of Connects must be a whole number of at least 1."
    budget = InvalidRequest(
        "monthly_connects must be a whole number >= 0 or null", field="monthly_connects"
    )
    assert sentence(budget).startswith("The monthly budget must be")
    assert "monthly_connects" not in sentence(budget)


def test_numbers_are_grouped_and_rate_limits_in_minutes() -> None:
    exc = MemberBudgetExceeded("x", budget=1_500, spent_this_month=1_490, required=12)
    assert "1,500 Connects (1,490 used so far this month)" in sentence(exc)
    assert (
        sentence(RateLimited("x", retry_after=61)) == "Too many attempts. Try again in 2 minutes."
    )


def test_a_code_without_a_sentence_of_its_own_is_the_message_as_a_sentence() -> None:
    assert sentence(NotFound("no person has the e-mail a@b.c")) == "No person has the e-mail a@b.c."
    assert sentence(OwnerIsPermanent("the owner cannot be removed")).startswith(
        "The owner always stays the owner"
    )


@pytest.mark.parametrize("cls", [c for c in all_error_classes() if "code" in vars(c)])
def test_every_refusal_reads_as_a_sentence_without_internals(cls: type[ConnectsError]) -> None:
    said = sentence(cls("some engine message"))
    assert said[0].isupper() and said.endswith((".", "!", "?")), said
    assert cls.code not in said and "cents" not in said and "None" not in said, said


def test_every_sentence_is_for_a_real_code_and_fields_are_words() -> None:
    codes = {c.code for c in all_error_classes() if "code" in vars(c)}
    assert set(SENTENCES) <= codes
    assert all(w[0].isupper() and "_" not in w for w in FIELD_WORDS.values())
    assert money(123456) == "$1,234.56" and money(-5, "EUR") == "-€0.05"
