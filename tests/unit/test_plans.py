"""The plan catalog (R7) and what a plan sells (R18)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connects.domain.errors import (
    BundleNotAllowed,
    InvalidRequest,
    PlanCannotPurchase,
    PlanNotAllowed,
)
from connects.domain.plans import DEFAULT_PLANS, Catalog, Plan


def test_default_plans_are_exactly_r7() -> None:
    # R7: the defaults, money in USD cents
    plans = Catalog.default().plans
    assert set(plans) == {"freelancer-basic", "freelancer-plus", "agency-basic", "agency-plus"}
    assert plans["freelancer-basic"] == Plan(
        id="freelancer-basic",
        kind="freelancer",
        price_cents=0,
        monthly_connects=10,
        rollover_cap=None,
        unit_price_cents=15,
        currency="USD",
        submit_on_behalf=False,
        interview_reward=0,
        can_purchase=True,
        bundle_sizes=(),
    )
    assert plans["freelancer-plus"] == Plan(
        id="freelancer-plus",
        kind="freelancer",
        price_cents=2000,
        monthly_connects=100,
        rollover_cap=None,
        unit_price_cents=15,
        submit_on_behalf=False,
    )
    assert plans["agency-basic"] == Plan(
        id="agency-basic",
        kind="agency",
        price_cents=0,
        monthly_connects=0,
        rollover_cap=None,
        can_purchase=False,
        submit_on_behalf=False,
    )
    assert plans["agency-plus"] == Plan(
        id="agency-plus",
        kind="agency",
        price_cents=2000,
        monthly_connects=80,
        rollover_cap=160,
        unit_price_cents=100,
        submit_on_behalf=True,
        can_purchase=True,
    )
    assert all(p.interview_reward == 0 for p in plans.values())  # R16 default 0


def test_catalog_from_mapping_reads_every_field() -> None:
    # R7: plans come from configuration
    cat = Catalog.from_mapping(
        {
            "pro": {
                "kind": "freelancer",
                "price_cents": 999,
                "monthly_connects": 50,
                "rollover_cap": 70,
                "unit_price_cents": 12,
                "interview_reward": 3,
                "bundle_sizes": [10, 20, 40],
            }
        }
    )
    plan = cat.get("pro")
    assert plan == Plan(
        id="pro",
        kind="freelancer",
        price_cents=999,
        monthly_connects=50,
        rollover_cap=70,
        unit_price_cents=12,
        interview_reward=3,
        bundle_sizes=(10, 20, 40),
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "company"},
        {},
        {"kind": "agency", "price_cents": -1},
        {"kind": "agency", "monthly_connects": -5},
        {"kind": "freelancer", "unit_price_cents": -15},
        {"kind": "freelancer", "interview_reward": -1},
    ],
)
def test_catalog_refuses_bad_plans(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="plan bad"):
        Catalog.from_mapping({"bad": spec})


def test_unknown_plan_is_plan_not_allowed() -> None:
    with pytest.raises(PlanNotAllowed) as info:
        Catalog.default().get("gold")
    assert info.value.code == "plan_not_allowed"
    assert info.value.details["known"] == sorted(DEFAULT_PLANS)


def test_for_kind_checks_the_account_kind() -> None:
    # R7: agency and freelancer plans are enrolled separately
    cat = Catalog.default()
    assert cat.for_kind("agency-plus", "agency").id == "agency-plus"
    with pytest.raises(PlanNotAllowed) as info:
        cat.for_kind("agency-plus", "freelancer")
    assert info.value.details == {"plan": "agency-plus", "kind": "freelancer"}
    with pytest.raises(PlanNotAllowed):
        cat.for_kind("freelancer-plus", "agency")


def test_default_for_kind() -> None:
    cat = Catalog.default()
    assert cat.default_for("freelancer") == "freelancer-basic"
    assert cat.default_for("agency") == "agency-basic"
    custom = Catalog.from_mapping(
        {"b": {"kind": "agency", "price_cents": 500}, "a": {"kind": "agency", "price_cents": 100}}
    )
    assert custom.default_for("agency") == "a"
    with pytest.raises(PlanNotAllowed):
        custom.default_for("freelancer")


def test_cost_is_quantity_times_unit_price() -> None:
    # R7: 15 cents by default, 100 on agency-plus
    cat = Catalog.default()
    assert cat.get("freelancer-basic").cost_cents(10) == 150
    assert cat.get("agency-plus").cost_cents(40) == 4000


@pytest.mark.parametrize("quantity", [0, -1, 1.5, True, "3", None])
def test_quantity_is_a_whole_number_at_least_one(quantity: object) -> None:
    # R18
    with pytest.raises(InvalidRequest) as info:
        Catalog.default().get("freelancer-basic").check_quantity(quantity)  # type: ignore[arg-type]
    assert info.value.details["field"] == "quantity"
    assert info.value.details["fields"] == {"quantity": "must be a whole number of at least 1"}


def test_any_quantity_from_one() -> None:
    # R18: any quantity may be bought
    plan = Catalog.default().get("freelancer-basic")
    for q in (1, 7, 1000, 10_000):
        plan.check_quantity(q)


def test_r43_a_purchase_is_at_most_max_purchase() -> None:
    # R43: above max_purchase (default 10,000) the refusal names quantity and the max,
    # not "at least 1".
    plan = Catalog.default().get("freelancer-basic")
    with pytest.raises(InvalidRequest) as info:
        plan.check_quantity(10_001)
    assert info.value.details["field"] == "quantity"
    assert info.value.details["max_purchase"] == 10_000
    assert "10,000" in info.value.details["fields"]["quantity"]
    plan.check_quantity(50, max_purchase=50)
    with pytest.raises(InvalidRequest):
        plan.check_quantity(51, max_purchase=50)


def test_bundle_sizes() -> None:
    # R18: the catalog may set allowed bundle sizes
    plan = Catalog.from_mapping({"x": {"kind": "agency", "bundle_sizes": [10, 40]}}).get("x")
    plan.check_quantity(40)
    with pytest.raises(BundleNotAllowed) as info:
        plan.check_quantity(20)
    assert info.value.code == "bundle_not_allowed"
    assert info.value.details == {"allowed": [10, 40]}


def test_plan_that_cannot_purchase() -> None:
    # R7/R18: agency-basic sells no extra Connects
    with pytest.raises(PlanCannotPurchase) as info:
        Catalog.default().get("agency-basic").check_quantity(10)
    assert info.value.code == "plan_cannot_purchase"


def test_a_plans_file_without_extends_replaces_the_defaults() -> None:
    # R7: the catalog is configuration
    catalog = Catalog.from_file_tables({"plans": {"solo": {"kind": "freelancer"}}})
    assert sorted(catalog.plans) == ["solo"]


def test_extends_defaults_changes_only_the_fields_a_table_names() -> None:
    # R7: a file may change one field of a default plan
    raw = {
        "extends": "defaults",
        "plans": {"agency-plus": {"interview_reward": 2}, "solo": {"kind": "freelancer"}},
    }
    catalog = Catalog.from_file_tables(raw)
    plus = catalog.get("agency-plus")
    assert (plus.interview_reward, plus.monthly_connects, plus.rollover_cap) == (2, 80, 160)
    assert plus.unit_price_cents == 100 and plus.submit_on_behalf
    assert set(catalog.plans) == {*DEFAULT_PLANS, "solo"}
    assert catalog.get("freelancer-basic").interview_reward == 0


def test_extends_names_only_the_defaults() -> None:
    with pytest.raises(ValueError, match="extends"):
        Catalog.from_file_tables({"extends": "other", "plans": {}})
    with pytest.raises(ValueError, match="table"):
        Catalog.from_file_tables({"extends": "defaults", "plans": {"agency-plus": 3}})


def test_the_demo_plans_reward_interviews_and_keep_r7_otherwise() -> None:
    # R16: the reward is a plan setting, default 0; the demo's plans set one
    import tomllib

    from connects.demo import DEMO_PLANS_FILE

    demo = Catalog.from_file_tables(tomllib.loads(DEMO_PLANS_FILE.read_text()))
    default = Catalog.default()
    assert set(demo.plans) == set(default.plans)
    for plan_id, plan in demo.plans.items():
        assert replace(plan, interview_reward=0) == default.get(plan_id)
    assert demo.get("agency-plus").interview_reward > 0
