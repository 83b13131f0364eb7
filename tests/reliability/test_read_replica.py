"""CONNECTS_READ_DATABASE_URL against a real streaming standby (connects.db.replica).

The test starts a primary and its synchronous standby (tests/reliability/pgservers.py)
and runs the app in process with the history and its CSV export sent to the standby.
After every write, the history shows it: the replica answers once it has replayed the
primary's flushed WAL, the primary answers while it lags (replay paused) or is down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from connects.api.app import create_app
from connects.db.replica import Replica
from tests.conftest import MakeCtx
from tests.e2e.conftest import BM_TOKEN, OPERATOR_TOKEN, Api, settings_for
from tests.reliability.pgservers import Pair, skip_reason

pytestmark = [pytest.mark.reliability]


@pytest.fixture
def pair() -> Iterator[Pair]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    servers = Pair()
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


@pytest.fixture
def api(pair: Pair, make_ctx: MakeCtx) -> Iterator[Api]:
    url, read = pair.url(), pair.standby_url()
    ctx = make_ctx(
        url, read_database_url=read, operator_token=OPERATOR_TOKEN, business_manager_token=BM_TOKEN
    )
    settings = settings_for(url, read_database_url=read)
    with TestClient(create_app(ctx, settings)) as client:
        yield Api(client, ctx, settings)


def _replica(api: Api) -> Replica:
    assert api.ctx.db.replica is not None
    return api.ctx.db.replica


def _newest(api: Api, account: str) -> str:
    page = api.ok("GET", f"/v1/accounts/{account}/connects/history?limit=1", "fred")
    return str(page["items"][0]["purchase_id"])


def test_the_history_after_a_write_shows_it_from_the_replica_or_the_primary(
    api: Api, pair: Pair
) -> None:
    # R30: an answer that follows a write never reads a state without it.
    replica = _replica(api)
    account = api.freelancer("fred", plan="freelancer-plus")
    api.earnings(account, 100_000)
    buy = {"quantity": 1, "pay_with": "earnings"}
    url = f"/v1/accounts/{account}/purchases"
    for i in range(30):
        bought = api.ok("POST", url, "fred", buy, key=f"buy-{i}")
        assert _newest(api, account) == bought["id"]
    assert replica.served >= 25, (replica.served, replica.fell_back)  # it took the reads

    # The standby stops replaying: it lags, so the primary answers, still up to date.
    pair.standby.sql("SELECT pg_wal_replay_pause()")
    served, fell_back = replica.served, replica.fell_back
    for i in range(3):
        bought = api.ok("POST", url, "fred", buy, key=f"paused-{i}")
        assert _newest(api, account) == bought["id"]
    assert (replica.served, replica.fell_back) == (served, fell_back + 3)

    # Replaying again, it serves the CSV export, which shows every purchase.
    pair.standby.sql("SELECT pg_wal_replay_resume()")
    r = api.call("GET", f"/v1/accounts/{account}/connects/history?format=csv", "fred")
    assert r.status_code == 200 and bought["id"] in r.text
    assert replica.served > served

    # The standby is down: the primary answers.
    pair.standby.stop()
    before = replica.fell_back
    assert _newest(api, account) == bought["id"]
    assert replica.fell_back == before + 1
