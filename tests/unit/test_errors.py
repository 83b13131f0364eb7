"""Every refusal has a stable, unique, snake_case code (R32)."""

from __future__ import annotations

import re

from connects.domain import errors
from connects.domain.errors import ConnectsError, all_error_classes

SNAKE = re.compile(r"^[a-z]+(_[a-z]+)*$")


def concrete() -> list[type[ConnectsError]]:
    return [c for c in all_error_classes() if "code" in vars(c)]


def test_every_code_is_unique_and_snake_case() -> None:
    # R32: stable codes
    codes = [c.code for c in concrete()]
    assert len(codes) == len(set(codes)), sorted(codes)
    for code in codes:
        assert SNAKE.match(code), code


def test_every_code_in_the_module_docstring_exists() -> None:
    # R32: the documented table and the classes agree
    row = re.compile(r"^([a-z_]+)\s+(\d{3})\s")
    documented = {
        m.group(1): int(m.group(2))
        for m in map(row.match, (errors.__doc__ or "").splitlines())
        if m
    }
    assert len(documented) >= 20
    codes = {c.code for c in concrete()}
    assert set(documented) <= codes, set(documented) - codes
    by_code = {c.code: c.status for c in concrete()}
    assert {k: by_code[k] for k in documented} == documented
    expected = {
        "invalid_request",
        "not_found",
        "forbidden",
        "insufficient_connects",
        "price_changed",
        "member_budget_exceeded",
        "insufficient_earnings",
        "payment_declined",
        "already_owns_agency",
        "already_has_freelancer_account",
        "already_member",
        "already_applied",
        "job_not_open",
        "proposal_not_active",
        "plan_not_allowed",
        "not_a_member",
        "cannot_submit_on_behalf",
        "owner_is_permanent",
        "no_billing_method",
        "bundle_not_allowed",
        "plan_cannot_purchase",
        "agency_only",
    }
    assert expected <= codes, expected - codes


def test_statuses() -> None:
    assert errors.InvalidRequest.status == 422
    assert errors.NotFound.status == 404
    assert errors.CannotSubmitOnBehalf.status == 403
    assert errors.PaymentDeclined.status == 402
    assert errors.InsufficientConnects.status == 409
    assert errors.PlanCannotPurchase.status == 409


def test_as_dict() -> None:
    exc = errors.PriceChanged("now 6", connects_required=6)
    assert exc.as_dict() == {
        "code": "price_changed",
        "message": "now 6",
        "details": {"connects_required": 6},
    }
    assert str(exc) == "now 6"
