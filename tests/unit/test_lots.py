"""Lots: spending order (R11), expiry (R12), rollover (R9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connects.domain.calendar import lot_expiry
from connects.domain.errors import InsufficientConnects
from connects.domain.lots import (
    Lot,
    allocate,
    available,
    cost_share,
    expired,
    expiring_soon,
    moved,
    rollover_forfeit,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def lot(
    lot_id: str,
    remaining: int,
    *,
    days_old: int,
    source: str = "grant",
    expires: datetime | None = None,
) -> Lot:
    issued = NOW - timedelta(days=days_old)
    return Lot(lot_id, source, issued, expires or lot_expiry(issued), remaining)


def test_allocate_takes_soonest_expiring_first() -> None:
    # R11: the oldest lot (soonest expiry) pays first, then the next
    lots = [lot("new", 10, days_old=1), lot("old", 5, days_old=100), lot("mid", 7, days_old=50)]
    assert allocate(lots, 9, NOW) == [("old", 5), ("mid", 4)]
    assert allocate(lots, 22, NOW) == [("old", 5), ("mid", 7), ("new", 10)]


def test_allocate_ties_on_expiry_go_to_the_oldest() -> None:
    # R11: same expiry date, then the oldest issue first
    expiry = NOW + timedelta(days=10)
    young = Lot("young", "purchase", NOW - timedelta(days=2), expiry, 4)
    old = Lot("old", "reward", NOW - timedelta(days=20), expiry, 4)
    assert allocate([young, old], 5, NOW) == [("old", 4), ("young", 1)]


def test_allocate_prefers_expiry_over_age() -> None:
    # R11: a younger lot that expires sooner is spent before an older one
    older_later = Lot("a", "purchase", NOW - timedelta(days=30), NOW + timedelta(days=300), 5)
    younger_sooner = Lot("b", "grant", NOW - timedelta(days=1), NOW + timedelta(days=3), 5)
    assert allocate([older_later, younger_sooner], 6, NOW) == [("b", 5), ("a", 1)]


def test_allocate_exactly_everything_and_zero() -> None:
    lots = [lot("a", 3, days_old=3), lot("b", 2, days_old=2)]
    assert allocate(lots, 5, NOW) == [("a", 3), ("b", 2)]
    assert allocate(lots, 0, NOW) == []


def test_allocate_never_below_zero() -> None:
    # R11: not enough is refused, with the numbers
    lots = [lot("a", 3, days_old=3), lot("b", 2, days_old=2)]
    with pytest.raises(InsufficientConnects) as info:
        allocate(lots, 6, NOW)
    assert info.value.code == "insufficient_connects"
    assert info.value.details == {"required": 6, "available": 5}


def test_allocate_refuses_negative_amounts() -> None:
    with pytest.raises(ValueError):
        allocate([lot("a", 3, days_old=3)], -1, NOW)


def test_expired_lots_are_never_spendable() -> None:
    # R12: a lot past its expiry is not spendable even before a sweep
    gone = lot("gone", 50, days_old=400)
    edge = Lot("edge", "grant", NOW - timedelta(days=365), NOW, 7)  # expires exactly now
    fresh = lot("fresh", 4, days_old=1)
    assert available([gone, edge, fresh], NOW) == 4
    assert allocate([gone, edge, fresh], 4, NOW) == [("fresh", 4)]
    with pytest.raises(InsufficientConnects) as info:
        allocate([gone, edge, fresh], 5, NOW)
    assert info.value.details["available"] == 4


def test_live_is_strictly_before_expiry() -> None:
    # R12: at the expiry instant the lot is gone; a moment before it is live
    expiry = NOW + timedelta(seconds=1)
    one = Lot("x", "grant", NOW - timedelta(days=1), expiry, 3)
    assert one.live(NOW)
    assert not one.live(expiry)
    assert not Lot("empty", "grant", NOW, NOW + timedelta(days=1), 0).live(NOW)


def test_expired_lists_what_the_sweep_removes() -> None:
    # R12: the sweep removes what is left in expired lots only
    lots = [
        lot("gone", 50, days_old=400),
        Lot("edge", "grant", NOW - timedelta(days=365), NOW, 7),
        lot("fresh", 4, days_old=1),
        Lot("used", "grant", NOW - timedelta(days=500), NOW - timedelta(days=100), 0),
    ]
    assert sorted(expired(lots, NOW)) == [("edge", 7), ("gone", 50)]


def test_rollover_forfeit_cuts_only_grants_above_the_cap() -> None:
    # R9: grants 100 + 80 = 180 above the cap 160 -> 20 forfeited from the oldest grant;
    # purchased and rewarded Connects never count and are never cut
    lots = [
        lot("g1", 100, days_old=60),
        lot("g2", 80, days_old=30),
        lot("p", 500, days_old=90, source="purchase"),
        lot("r", 30, days_old=120, source="reward"),
    ]
    assert rollover_forfeit(lots, 160, NOW) == [("g1", 20)]


def test_rollover_forfeit_nothing_at_or_under_the_cap() -> None:
    # R9
    lots = [
        lot("g1", 80, days_old=60),
        lot("g2", 80, days_old=30),
        lot("p", 999, days_old=1, source="purchase"),
    ]
    assert rollover_forfeit(lots, 160, NOW) == []
    assert rollover_forfeit([lot("p", 999, days_old=1, source="purchase")], 0, NOW) == []


def test_rollover_forfeit_no_cap_keeps_everything() -> None:
    # R9: no cap means everything rolls over
    assert rollover_forfeit([lot("g", 10_000, days_old=10)], None, NOW) == []


def test_rollover_forfeit_spans_several_grant_lots_soonest_expiring_first() -> None:
    # R9 + R11: cap 0 forfeits every grant, oldest first; expired grants are not counted
    lots = [
        lot("g2", 5, days_old=10),
        lot("g1", 3, days_old=40),
        lot("dead", 9, days_old=400),
        lot("p", 4, days_old=50, source="purchase"),
    ]
    assert rollover_forfeit(lots, 0, NOW) == [("g1", 3), ("g2", 5)]
    assert rollover_forfeit(lots, 6, NOW) == [("g1", 2)]


def test_expiring_soon_window_is_now_exclusive_to_30_days_inclusive() -> None:
    # R12: (now, now + 30 days]
    lots = [
        Lot("now", "grant", NOW - timedelta(days=365), NOW, 1),
        Lot("in1s", "grant", NOW - timedelta(days=300), NOW + timedelta(seconds=1), 2),
        Lot("day30", "purchase", NOW - timedelta(days=300), NOW + timedelta(days=30), 4),
        Lot("day30+1s", "grant", NOW, NOW + timedelta(days=30, seconds=1), 8),
        Lot("empty", "grant", NOW, NOW + timedelta(days=5), 0),
    ]
    soon = expiring_soon(lots, NOW)
    assert [x.id for x in soon] == ["in1s", "day30"]
    assert sum(x.remaining for x in soon) == 6


def test_rollover_never_forfeits_refunded_connects() -> None:
    # R9 + R15: Connects refunded into a grant lot are neither counted nor cut
    lots = [lot("g1", 80, days_old=90), lot("g2", 80, days_old=60), lot("g3", 80, days_old=30)]
    assert rollover_forfeit(lots, 160, NOW) == [("g1", 80)]
    assert rollover_forfeit(lots, 160, NOW, {"g1": 80}) == []
    assert rollover_forfeit(lots, 160, NOW, {"g1": 30}) == [("g1", 50)]
    assert rollover_forfeit(lots, 100, NOW, {"g1": 30}) == [("g1", 50), ("g2", 60)]
    # a lot holds fewer than were refunded into it: all that is left is kept
    short = [lot("g1", 20, days_old=90), lot("g2", 150, days_old=60)]
    assert rollover_forfeit(short, 100, NOW, {"g1": 60}) == [("g2", 50)]
    assert rollover_forfeit(short, 150, NOW, {"g1": 60}) == []


def test_held_connects_are_neither_available_nor_allocated() -> None:
    # R34: a hold keeps Connects in their lots but out of what may be spent
    pool = [Lot("a", "grant", NOW, NOW + timedelta(days=30), 5)]
    assert available(pool, NOW, held=3) == 2
    assert allocate(pool, 2, NOW, held=3) == [("a", 2)]
    with pytest.raises(InsufficientConnects) as short:
        allocate(pool, 3, NOW, held=3)
    assert short.value.details == {"required": 3, "available": 2}


def test_badge_instalments_put_the_remainder_on_the_last_days() -> None:
    # R37: 7 -> 1 a day; 10 -> 1, 1, 1, 1, 2, 2, 2
    from connects.domain.boosts import instalments

    assert instalments(7) == [1] * 7
    assert instalments(10) == [1, 1, 1, 1, 2, 2, 2]
    assert instalments(3) == [0, 0, 0, 0, 1, 1, 1]
    assert all(sum(instalments(w)) == w for w in range(0, 60))


# -- the cost basis (R39) ----------------------------------------------------------


def test_a_draw_takes_the_floor_of_its_share_and_the_last_draw_the_rest() -> None:
    bought = Lot("p", "purchase", NOW, lot_expiry(NOW), 3, 100)  # 3 Connects for $1.00
    assert cost_share(bought, 1) == 33
    after = Lot("p", "purchase", NOW, lot_expiry(NOW), 2, 67)
    assert cost_share(after, 1) == 33
    last = Lot("p", "purchase", NOW, lot_expiry(NOW), 1, 34)
    assert cost_share(last, 1) == 34  # 33 + 33 + 34: the dollar, all of it
    assert cost_share(Lot("g", "grant", NOW, lot_expiry(NOW), 5), 5) == 0


@given(
    amount=st.integers(1, 200),
    cost=st.integers(0, 10**6),
    steps=st.lists(st.tuples(st.booleans(), st.integers(1, 200)), max_size=40),
)
def test_a_lots_cost_is_never_lost_nor_made_up(
    amount: int, cost: int, steps: list[tuple[bool, int]]
) -> None:
    """Any draws and returns of earlier draws: cost left + the cost of the draws not
    returned = the lot's cost, to the cent; the cost left never goes below zero and
    an empty lot carries none."""
    remaining, left = amount, cost
    out: list[tuple[int, int]] = []  # draws not returned: (Connects, cents)
    for give_back, n in steps:
        if give_back and out:
            took, cents = out.pop(n % len(out))
            remaining, left = remaining + took, left + cents
        elif remaining:
            take = 1 + (n - 1) % remaining
            share = cost_share(Lot("l", "purchase", NOW, lot_expiry(NOW), remaining, left), take)
            assert 0 <= share <= left
            out.append((take, share))
            remaining, left = remaining - take, left - share
        assert 0 <= left <= cost
        assert left + sum(c for _, c in out) == cost
        assert remaining + sum(t for t, _ in out) == amount
        if remaining == 0:
            assert left == 0


def test_moved_takes_and_gives_back_connects_and_cents() -> None:
    # R11 R15 R39: a spend takes Connects and their cents out of the open lots, a used-up
    # lot leaves them; a give-back into an open lot restores both, one into a lot that
    # was used up asks for the lots to be read again.
    a = Lot("a", "purchase", NOW, NOW + timedelta(days=30), 3, 300)
    b = Lot("b", "grant", NOW, NOW + timedelta(days=60), 5, 0)
    lots = {"a": a, "b": b}
    after = moved(lots, [("a", 3), ("b", 2)], [300, 0], -1)
    assert after == {"b": Lot("b", "grant", NOW, NOW + timedelta(days=60), 3, 0)}
    assert lots == {"a": a, "b": b}  # the map given is left as it was
    assert moved(after, [("b", 2)], [0], +1) == {"b": b}
    assert moved(after, [("a", 1)], [100], +1) is None
