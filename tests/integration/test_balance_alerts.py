"""One message per happening (R45): low-balance levels, each alerted once per downward
crossing and re-armed above it, ``balance_empty`` once per reaching zero, and an auto
top-up announced by ``topup_succeeded`` alone. On SQLite and PostgreSQL; the state is
in the database, so it holds across processes, restarts and racing threads.

Every agency here is on agency-plus: 80 Connects granted at opening.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from connects.domain.commands import (
    BuyConnects,
    CreditEarnings,
    EndJob,
    SetNotificationSettings,
    UpdateAccount,
)
from connects.domain.errors import ConnectsError, InvalidRequest
from connects.services.context import Context
from connects.services.notifications import settings as notes
from tests.conftest import MakeCtx
from tests.integration.topup_support import Agency, agency, events_of
from tests.world import World, add_member


def _levels_agency(ctx: Context, levels: list[int]) -> Agency:
    """An agency without auto top-up, alerted at ``levels``, with earnings to buy."""
    w = World(ctx)
    a = Agency(w, w.agency("olga"), w.actor("olga"))
    ctx.handle(SetNotificationSettings(a.owner, a.id, {"low_balance_levels": levels}))
    ctx.handle(CreditEarnings(a.id, 1_000_000))
    return a


def _buy(ctx: Context, a: Agency, quantity: int) -> None:
    ctx.handle(BuyConnects(a.owner, a.id, quantity, "earnings"))


def _lows(ctx: Context, account_id: str) -> list[list[int]]:
    return [e["levels"] for e in events_of(ctx, account_id, "balance_low")]


def test_r45_each_level_once_per_downward_crossing_and_re_armed_above_it(
    any_ctx: Context,
) -> None:
    # R45: levels 50 and 20; the balance starts at 80.
    a = _levels_agency(any_ctx, [20, 50])
    a.spend(35)  # 80 -> 45: crosses 50
    assert _lows(any_ctx, a.id) == [[50]]
    a.spend(10)  # 45 -> 35: still under 50, nothing new
    assert _lows(any_ctx, a.id) == [[50]]
    a.spend(20)  # 35 -> 15: crosses 20
    assert _lows(any_ctx, a.id) == [[50], [20]]
    [low] = events_of(any_ctx, a.id, "balance_low")[1:]
    assert (low["threshold"], low["balance"], low["previous"]) == (20, 15, 35)
    _buy(any_ctx, a, 15)  # 15 -> 30: above 20 again, re-armed; still under 50
    a.spend(12)  # 30 -> 18: 20 alerts again, 50 does not
    assert _lows(any_ctx, a.id) == [[50], [20], [20]]
    _buy(any_ctx, a, 42)  # 18 -> 60: both re-armed
    a.spend(45)  # 60 -> 15: one drop crossing both is one message naming both
    assert _lows(any_ctx, a.id)[-1] == [50, 20]
    assert len(_lows(any_ctx, a.id)) == 4


def test_r45_balance_empty_once_per_reaching_zero(any_ctx: Context) -> None:
    # R45: reaching zero says balance_empty alone (not balance_low too), once.
    a = _levels_agency(any_ctx, [50])
    a.spend(80)  # 80 -> 0 crosses 50 and reaches zero: one message
    assert [e["previous"] for e in events_of(any_ctx, a.id, "balance_empty")] == [80]
    assert events_of(any_ctx, a.id, "balance_low") == []
    job = a.world.job(5)
    _buy(any_ctx, a, 5)
    a.world.submit("olga", job, a.id)  # 5 -> 0 again: a new reaching of zero
    assert len(events_of(any_ctx, a.id, "balance_empty")) == 2
    client = a.world.actor("client")
    any_ctx.handle(EndJob(client, job, "cancelled"))  # the refund lifts it to 5
    _buy(any_ctx, a, 1)
    assert len(events_of(any_ctx, a.id, "balance_empty")) == 2


def test_r45_levels_are_validated_and_shown(any_ctx: Context) -> None:
    # R45: positive, distinct, at most 5; the older threshold is the highest level.
    a = _levels_agency(any_ctx, [20, 50])
    shown = notes.get_settings(any_ctx, a.owner, a.id)
    assert (shown["low_balance_levels"], shown["low_balance_threshold"]) == ([50, 20], 50)
    for bad in ([0], [-5], [10, 10], [1, 2, 3, 4, 5, 6], [1.5], ["7"], [True], 7):
        with pytest.raises(InvalidRequest) as err:
            any_ctx.handle(SetNotificationSettings(a.owner, a.id, {"low_balance_levels": bad}))
        assert err.value.details["field"] == "low_balance_levels"
        assert "low_balance_levels" in err.value.details["fields"]
    assert notes.get_settings(any_ctx, a.owner, a.id)["low_balance_levels"] == [50, 20]
    any_ctx.handle(UpdateAccount(a.owner, a.id, low_balance_threshold=30))  # one level
    assert notes.get_settings(any_ctx, a.owner, a.id)["low_balance_levels"] == [30]
    any_ctx.handle(SetNotificationSettings(a.owner, a.id, {"low_balance_levels": []}))
    shown = notes.get_settings(any_ctx, a.owner, a.id)
    assert (shown["low_balance_levels"], shown["low_balance_threshold"]) == ([], 0)


def test_r45_a_level_the_balance_is_already_under_waits_for_a_crossing(
    any_ctx: Context,
) -> None:
    # R45: only a downward crossing alerts; adding a level above the balance does not
    # make the next spend look like one.
    a = _levels_agency(any_ctx, [])
    a.spend(40)  # 80 -> 40
    any_ctx.handle(SetNotificationSettings(a.owner, a.id, {"low_balance_levels": [60]}))
    a.spend(5)
    assert _lows(any_ctx, a.id) == []
    _buy(any_ctx, a, 30)  # 35 -> 65: above 60
    a.spend(10)  # 65 -> 55
    assert _lows(any_ctx, a.id) == [[60]]


def test_r45_the_state_survives_a_restart(make_ctx: MakeCtx, sqlite_url: str) -> None:
    # R45: a fresh process on the same database knows the alert was sent.
    first = make_ctx(sqlite_url)
    a = _levels_agency(first, [50])
    a.spend(35)  # 80 -> 45
    first.db.dispose()
    again = make_ctx(sqlite_url)
    World(again, a.world.people).submit("olga", World(again, a.world.people).job(5), a.id)
    assert _lows(again, a.id) == [[50]]


def test_r45_an_auto_top_up_sends_topup_succeeded_alone(any_ctx: Context) -> None:
    # R45: connects_purchased is for purchases made by a person.
    a = agency(any_ctx)
    a.spend(80)  # hits zero: auto top-up buys 40
    assert len(events_of(any_ctx, a.id, "topup_succeeded")) == 1
    assert events_of(any_ctx, a.id, "connects_purchased") == []
    any_ctx.handle(BuyConnects(a.owner, a.id, 5, "default"))
    [bought] = events_of(any_ctx, a.id, "connects_purchased")
    assert (bought["quantity"], bought["auto"]) == (5, False)


@pytest.mark.postgres
def test_r45_racing_spends_in_two_processes_alert_each_level_once(
    make_ctx: MakeCtx, pg_url: str
) -> None:
    # R45: 24 threads over two engines (two processes' pools) take 80 Connects to 0
    # one at a time: 50 and 20 are each named by exactly one balance_low, zero by one
    # balance_empty, however the spends were batched.
    one, two = make_ctx(pg_url, db_pool_size=12), make_ctx(pg_url, db_pool_size=12)
    a = _levels_agency(one, [50, 20])
    members = [f"m{i}" for i in range(24)]
    w = a.world
    for name in members:
        w.person(name)
        add_member(one, a.owner, a.id, w.people[name], "member")
    jobs = [w.job(1, title=f"job {i}") for i in range(4)]
    barrier = threading.Barrier(len(members))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def spender(index: int, name: str) -> None:
        world = World(two if index % 2 else one, w.people)
        barrier.wait()
        for job in jobs:
            try:
                world.submit(name, job, a.id, expected=1)
                code = "ok"
            except ConnectsError as exc:
                code = exc.code
            with lock:
                outcomes[code] += 1

    threads = [threading.Thread(target=spender, args=p) for p in enumerate(members)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert outcomes["ok"] == 80
    named = Counter(level for levels in _lows(one, a.id) for level in levels)
    assert named == {50: 1, 20: 1}
    assert len(events_of(one, a.id, "balance_empty")) == 1
