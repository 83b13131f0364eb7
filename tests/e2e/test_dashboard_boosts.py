"""Held Connects, boosted proposals and the availability badge, in a real browser
(R34, R35, R37): headless Chromium through Playwright, as ``test_dashboard.py``, on
its own server and cast: a freelancer (freelancer-plus, 100 Connects a cycle) with
boosted proposals on one client's jobs, beside four other bidders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.commands import CreateUser, OpenAccount, PostJob, SubmitProposal
from connects.domain.policy import Actor
from connects.services import views
from connects.services.context import Context
from connects.web.auth import create_login_link
from connects.web.screenshots import CHROMIUM, LiveServer, launch_chromium

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.xdist_group("dashboard-boosts")
EMAIL = "fay@boosts.connects"


class Cast:
    def __init__(self, url: str, ctx: Context, account: str, owner: str) -> None:
        self.url, self.ctx, self.account, self.owner = url, ctx, account, Actor("user", owner)


def _bid(ctx: Context, user: str, account: str, job: str, boost: int) -> None:
    ctx.handle(SubmitProposal(Actor("user", user), job, account, user, 2, boost))


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("boosts")
    settings = Settings(database_url=f"sqlite:///{folder / 'connects.db'}", mode="dev")
    ctx = build(settings, migrate=True)
    fay = ctx.handle(CreateUser("Fay Freelancer", EMAIL))["id"]
    client = ctx.handle(CreateUser("Chloe Client", "chloe@boosts.connects"))["id"]
    account = ctx.handle(OpenAccount(fay, "freelancer", "Fay", "freelancer-plus"))
    job = ctx.handle(PostJob(client, "A logo for a bakery", 2))
    for i, boost in enumerate((9, 8, 7, 6)):  # four others bid above fay's 5
        other = ctx.handle(CreateUser(f"Other {i}", f"o{i}@boosts.connects"))["id"]
        mine = ctx.handle(OpenAccount(other, "freelancer", f"O{i}", "freelancer-plus"))
        _bid(ctx, other, mine, job, boost)
    _bid(ctx, fay, account, job, 5)
    with LiveServer(ctx, settings) as server:
        yield Cast(server.url, ctx, account, fay)
    ctx.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


def sign_in(browser: Browser, cast: Cast, path: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(create_login_link(cast.ctx, EMAIL, cast.url))
    page.goto(f"{cast.url}{path}")
    return page


def test_held_connects_on_the_connects_page_and_in_the_top_bar(
    browser: Browser, cast: Cast
) -> None:
    # R34: the bid is held: 100 - 2 - 5 available, 5 held
    page = sign_in(browser, cast, "/connects")
    expect(page.get_by_test_id("held")).to_have_text("5")
    expect(page.get_by_test_id("available")).to_have_text("93")
    expect(page.get_by_test_id("topbar-held")).to_have_text("5 held")


def test_the_proposal_list_shows_boost_status_rank_and_the_auction(
    browser: Browser, cast: Cast
) -> None:
    # R35: fay's 5 is fifth behind 9, 8, 7, 6: held, not boosted
    page = sign_in(browser, cast, "/proposals")
    row = page.get_by_test_id("proposal-row")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("boost-status")).to_have_text("held")
    expect(row.get_by_test_id("boost-rank")).to_have_text("5")
    expect(row).to_contain_text("top bids 9, 8, 7, 6")


def test_the_badge_switch_with_its_weekly_maximum(browser: Browser, cast: Cast) -> None:
    # R37: switching on charges the first day's instalment; a maximum below the
    # price is refused in the page, with the engine's code
    page = sign_in(browser, cast, "/proposals")
    expect(page.get_by_test_id("badge-state")).to_have_text("off")
    page.get_by_test_id("badge-enabled").check()
    page.get_by_test_id("badge-max").fill("3")
    page.get_by_test_id("badge-save").click()
    expect(page.locator("#badge [data-code]")).to_have_attribute("data-code", "invalid_request")
    assert views.overview(cast.ctx, cast.owner, cast.account)["available"] == 93
    page.get_by_test_id("badge-enabled").check()
    page.get_by_test_id("badge-max").fill("10")
    page.get_by_test_id("badge-save").click()
    expect(page.get_by_test_id("badge-state")).to_have_text("on")
    assert views.overview(cast.ctx, cast.owner, cast.account)["available"] == 92
