"""Auto top-up rules without storage: settings, the crossing, how much to buy (R19-R22)."""

from __future__ import annotations

from typing import Any

import pytest

from connects.domain.errors import InvalidRequest
from connects.domain.topup import (
    LIMIT_REACHED,
    LIMIT_TOO_LOW,
    NOTHING,
    Decision,
    TopUpSettings,
    crossed,
    decide,
)

ON = TopUpSettings(enabled=True)


def test_defaults_are_the_seeds() -> None:
    # R19: 40 Connects per top-up, 400 per month, off until turned on; T=0 is "hits zero".
    s = TopUpSettings()
    assert (s.enabled, s.per_topup, s.per_month, s.threshold) == (False, 40, 400, 0)
    assert (s.just_in_time, s.mode, s.target) == (False, "fixed", None)
    assert s.trigger == "balance_zero"
    assert TopUpSettings(threshold=5).trigger == "threshold"
    assert s.as_dict() == {
        "enabled": False,
        "per_topup": 40,
        "per_month": 400,
        "threshold": 0,
        "just_in_time": False,
        "mode": "fixed",
        "target": None,
    }


def test_changed_keeps_what_is_not_named() -> None:
    s = TopUpSettings().changed({"enabled": True, "per_month": 100})
    assert (s.enabled, s.per_topup, s.per_month) == (True, 40, 100)
    t = s.changed({"mode": "target", "target": 120, "threshold": 20})
    assert (t.mode, t.target, t.threshold, t.per_month) == ("target", 120, 20, 100)


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"per_topup": 0}, {"per_topup"}),
        ({"per_topup": 10_001}, {"per_topup"}),
        ({"per_topup": 2.5}, {"per_topup"}),
        ({"per_topup": True}, {"per_topup"}),
        ({"per_month": -1}, {"per_month"}),
        ({"per_month": 0}, {"per_month"}),  # R43
        ({"per_topup": 50, "per_month": 40}, {"per_topup", "per_month"}),  # R43
        ({"threshold": -1}, {"threshold"}),
        ({"threshold": "5"}, {"threshold"}),
        ({"enabled": "yes"}, {"enabled"}),
        ({"just_in_time": 1}, {"just_in_time"}),
        ({"mode": "percent"}, {"mode"}),
        ({"mode": "target"}, {"target"}),
        ({"mode": "target", "target": 0}, {"target"}),
        ({"mode": "target", "target": 10, "threshold": 10}, {"target", "threshold"}),
        ({"per_topup": 0, "mode": "x", "per_month": -5}, {"per_topup", "mode", "per_month"}),
    ],
)
def test_bad_settings_name_every_bad_field(fields: dict[str, Any], bad: set[str]) -> None:
    # R32: a clear error naming the fields; nothing changes (the value is immutable).
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed(fields)
    assert set(err.value.details["fields"]) == bad
    assert err.value.details["field"] in bad


def test_unknown_settings_are_refused_by_name() -> None:
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed({"per_week": 10, "enabled": True})
    assert err.value.details["field"] == "per_week"


def test_r43_limits_must_make_sense_and_name_both_fields() -> None:
    # R43: per_topup <= per_month, per_month >= 1, in target mode target > threshold;
    # a rule between two fields names both, each with what is wrong with it.
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed({"per_topup": 500, "per_month": 400})
    fields = err.value.details["fields"]
    assert fields == {
        "per_topup": "cannot be more than the monthly limit (400)",
        "per_month": "cannot be less than one top-up (500)",
    }
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings(enabled=True).changed({"per_month": 0})
    assert set(err.value.details["fields"]) == {"per_month"}
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed({"mode": "target", "target": 20, "threshold": 30})
    assert set(err.value.details["fields"]) == {"target", "threshold"}
    assert TopUpSettings().changed({"per_topup": 400, "per_month": 400}).per_topup == 400
    assert TopUpSettings().changed({"mode": "target", "target": 31, "threshold": 30}).target == 31


def test_r43_one_top_up_is_at_most_max_purchase() -> None:
    # R43: a top-up is one purchase, so per_topup (and a target) is at most max_purchase.
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed({"per_topup": 300}, max_purchase=200)
    assert err.value.details["fields"] == {"per_topup": "must be a whole number from 1 to 200"}
    with pytest.raises(InvalidRequest) as err:
        TopUpSettings().changed({"mode": "target", "target": 300}, max_purchase=200)
    assert set(err.value.details["fields"]) == {"target"}
    assert TopUpSettings().changed({"per_topup": 200}, max_purchase=200).per_topup == 200


@pytest.mark.parametrize(
    ("before", "after", "threshold", "expected"),
    [
        (10, 0, 0, True),  # R20: hits zero
        (1, 0, 0, True),
        (0, 0, 0, False),  # already empty: no new crossing
        (10, 1, 0, False),
        (20, 5, 10, True),  # R20 beyond: falls to T or below
        (20, 10, 10, True),
        (20, 11, 10, False),
        (8, 3, 10, False),  # already under T: only the crossing counts
    ],
)
def test_crossing(before: int, after: int, threshold: int, expected: bool) -> None:
    assert crossed(before, after, threshold) is expected


def test_fixed_buys_per_topup() -> None:
    # R21: per_topup, when the month has room.
    assert decide(ON, balance=0, bought_this_month=0) == Decision(40)
    assert decide(ON, balance=0, bought_this_month=360) == Decision(40)


def test_cut_to_what_is_left_of_the_month() -> None:
    # R21: cut to what is left of the month's limit...
    assert decide(ON, balance=0, bought_this_month=380) == Decision(20)
    assert decide(ON, balance=0, bought_this_month=399) == Decision(1)


def test_nothing_left_is_skipped_with_the_reason() -> None:
    # R21: ...and with nothing left it buys nothing.
    assert decide(ON, balance=0, bought_this_month=400) == Decision(0, LIMIT_REACHED)
    assert decide(ON, balance=0, bought_this_month=450) == Decision(0, LIMIT_REACHED)
    assert not Decision(0, LIMIT_REACHED).buys


def test_target_mode_buys_up_to_the_target() -> None:
    # R20 beyond: target mode buys what brings the balance to the chosen level.
    s = TopUpSettings(enabled=True, mode="target", target=100, threshold=10)
    assert decide(s, balance=10, bought_this_month=0) == Decision(90)
    assert decide(s, balance=0, bought_this_month=0) == Decision(100)
    assert decide(s, balance=0, bought_this_month=350) == Decision(50)
    assert decide(s, balance=100, bought_this_month=0) == NOTHING


def test_just_in_time_buys_at_least_the_shortfall_in_one_purchase() -> None:
    # R22: the proposal needs 70 and 10 are there: one purchase of at least 60.
    jit = TopUpSettings(enabled=True, just_in_time=True)
    assert decide(jit, balance=10, bought_this_month=0, need=70) == Decision(60)
    assert decide(jit, balance=10, bought_this_month=0, need=30) == Decision(40)
    target = TopUpSettings(enabled=True, just_in_time=True, mode="target", target=50)
    assert decide(target, balance=10, bought_this_month=0, need=90) == Decision(80)
    assert decide(target, balance=10, bought_this_month=0, need=20) == Decision(40)


def test_just_in_time_stays_within_the_limit() -> None:
    # R22: "within the limits": a cut purchase that still leaves the proposal short
    # is not made.
    jit = TopUpSettings(enabled=True, just_in_time=True, per_month=100)
    assert decide(jit, balance=0, bought_this_month=80, need=15) == Decision(20)
    assert decide(jit, balance=0, bought_this_month=80, need=25) == Decision(0, LIMIT_TOO_LOW)
    assert decide(jit, balance=0, bought_this_month=100, need=5) == Decision(0, LIMIT_REACHED)
