"""The Results page in a real browser (R39): headless Chromium through Playwright, as
``test_dashboard_boosts.py``, on its own server and cast: the agency's week of
``test_api_results.py`` (80 granted Connects at 0, 30 bought at $1.00; mo sends two
proposals, one cancelled and refunded, one interviewed and hired; ann one boosted by 5
and viewed). The owner sees every member, a member their own line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.commands import (
    BuyConnects,
    CreateUser,
    CreditEarnings,
    EndJob,
    OpenAccount,
    PostJob,
    RecordOutcome,
    StartInterview,
    SubmitProposal,
)
from connects.domain.policy import Actor
from connects.services.context import Context
from connects.web.auth import create_login_link
from connects.web.screenshots import CHROMIUM, LiveServer, launch_chromium
from tests.world import add_member

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.xdist_group("dashboard-results")
OLGA, MO = "olga@results.connects", "mo@results.connects"


class Cast:
    def __init__(self, url: str, ctx: Context) -> None:
        self.url, self.ctx = url, ctx


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("results")
    settings = Settings(database_url=f"sqlite:///{folder / 'connects.db'}", mode="dev")
    ctx = build(settings, migrate=True)
    olga = ctx.handle(CreateUser("Olga Owner", OLGA))["id"]
    mo = ctx.handle(CreateUser("Mo Member", MO))["id"]
    ann = ctx.handle(CreateUser("Ann Member", "ann@results.connects"))["id"]
    client = ctx.handle(CreateUser("Chloe Client", "chloe@results.connects"))["id"]
    agency = ctx.handle(OpenAccount(olga, "agency", "Northwind", "agency-plus"))
    for who in (mo, ann):
        add_member(ctx, Actor("user", olga), agency, who, "member")
    ctx.handle(CreditEarnings(agency, 10_000))
    ctx.handle(BuyConnects(Actor("user", olga), agency, 30, "earnings"))
    j1, j2, j3 = (ctx.handle(PostJob(client, f"Job {n}", p)) for n, p in enumerate((30, 30, 25)))
    p1 = ctx.handle(SubmitProposal(Actor("user", mo), j1, agency, mo, 30))["id"]
    p2 = ctx.handle(SubmitProposal(Actor("user", ann), j2, agency, ann, 30, 5))["id"]
    p3 = ctx.handle(SubmitProposal(Actor("user", mo), j3, agency, mo, 25))["id"]
    ctx.handle(RecordOutcome(client, p1, "viewed"))
    ctx.handle(RecordOutcome(client, p2, "viewed"))  # captures ann's boost
    ctx.handle(StartInterview(client, p3))
    ctx.handle(EndJob(Actor("user", client), j3, "closed", hired_proposal_id=p3))
    ctx.handle(EndJob(Actor("user", client), j1, "cancelled"))
    with LiveServer(ctx, settings) as server:
        yield Cast(server.url, ctx)
    ctx.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


def sign_in(browser: Browser, cast: Cast, email: str, path: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(create_login_link(cast.ctx, email, cast.url))
    page.goto(f"{cast.url}{path}")
    return page


def test_the_owner_sees_the_funnel_every_member_and_boosted_or_not(
    browser: Browser, cast: Cast
) -> None:
    page = sign_in(browser, cast, OLGA, "/connects")
    page.get_by_role("link", name="Results").click()
    expect(page).to_have_url(f"{cast.url}/results")
    for stage, count in (("sent", "3"), ("viewed", "3"), ("interviewed", "1"), ("hired", "1")):
        expect(page.get_by_test_id(f"funnel-{stage}")).to_have_text(count)
    expect(page.locator("#funnel-chart")).to_have_attribute("data-drawn", "true")
    rows = page.get_by_test_id("member-row")
    expect(rows).to_have_count(2)
    mo = rows.filter(has_text="Mo Member")
    expect(mo.get_by_test_id("per-hire")).to_have_text("25.0")
    expect(mo.get_by_test_id("money-per-hire")).to_have_text("$5.00")
    expect(mo.get_by_test_id("money-per-interview")).to_have_text("$5.00")
    ann = rows.filter(has_text="Ann Member")
    expect(ann.get_by_test_id("money-per-hire")).to_have_text("—")
    total = page.get_by_test_id("total-row")
    expect(total.get_by_test_id("per-hire")).to_have_text("60.0")
    expect(total.get_by_test_id("money-per-hire")).to_have_text("$10.00")
    expect(page.get_by_test_id("boost-boosted")).to_contain_text("5")
    expect(page.get_by_test_id("boost-not_boosted").get_by_test_id("per-hire")).to_have_text("25.0")


def test_a_member_sees_their_own_line_and_a_period_before_is_empty(
    browser: Browser, cast: Cast
) -> None:
    page = sign_in(browser, cast, MO, "/results")
    rows = page.get_by_test_id("member-row")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("Mo Member")
    expect(page.get_by_test_id("funnel-sent")).to_have_text("2")
    page.get_by_test_id("period-from").fill("2020-01-01")
    page.get_by_test_id("period-to").fill("2020-01-31")
    page.get_by_test_id("period-show").click()
    expect(page.get_by_test_id("no-results")).to_be_visible()
    expect(page.get_by_test_id("funnel-sent")).to_have_text("0")
    page.goto(f"{cast.url}/results?from=2020-02-01&to=2020-01-01")
    expect(page.locator("[data-code]")).to_have_attribute("data-code", "invalid_request")
