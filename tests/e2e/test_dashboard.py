"""The web dashboard in a real browser: Debian's Chromium, headless, through Playwright.

One real server (uvicorn in a thread, SQLite in a temporary folder, the system clock)
serves a small cast for the whole module: an agency with its owner and a member, the
owner's own freelancer account (seed 001), a client with jobs. Each test signs in with
a fresh one-time link in a fresh browser context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.commands import (
    CreateUser,
    CreditEarnings,
    OpenAccount,
    PostJob,
    SubmitProposal,
)
from connects.domain.policy import Actor
from connects.services import topups
from connects.services.context import Context
from connects.web.auth import create_login_link
from connects.web.screenshots import CHROMIUM, LiveServer, launch_chromium
from tests.world import add_member

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect

OWNER_EMAIL = "owner@demo.connects"  # the demo owner's address: the demo sign-in shows
# The tests tell one story on one module-wide cast, in order: one worker runs them all.
pytestmark = pytest.mark.xdist_group("dashboard")


@dataclass
class Cast:
    url: str
    ctx: Context
    agency: str
    freelance: str
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def person(self, key: str, name: str, email: str) -> None:
        made = self.ctx.handle(CreateUser(name, email))
        self.ids[key], self.tokens[key], self.emails[key] = made["id"], made["token"], email

    def actor(self, key: str) -> Actor:
        return Actor("user", self.ids[key])


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("dashboard")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'connects.db'}",
        mode="dev",
        allow_private_webhooks=True,  # the test receiver is local (R50)
    )
    ctx = build(settings, migrate=True)
    c = Cast(url="", ctx=ctx, agency="", freelance="")
    c.person("owner", "Olga Owner", OWNER_EMAIL)
    c.person("mia", "Mia Member", "mia@test.connects")
    c.person("client", "Chloe Client", "client@test.connects")
    c.agency = ctx.handle(OpenAccount(c.ids["owner"], "agency", "Northwind Studio", "agency-plus"))
    add_member(ctx, c.actor("owner"), c.agency, c.ids["mia"], "member")
    c.freelance = ctx.handle(OpenAccount(c.ids["owner"], "freelancer", "Olga (freelance)"))
    ctx.handle(CreditEarnings(c.agency, 5_000))
    with LiveServer(ctx, settings) as server:
        c.url = server.url
        yield c
    ctx.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


def sign_in(browser: Browser, cast: Cast, who: str = "owner", **kw: Any) -> Page:
    """A fresh browser context signed in through a one-time link."""
    page = browser.new_context(**kw).new_page()
    page.goto(create_login_link(cast.ctx, cast.emails[who], cast.url))
    expect(page).to_have_url(f"{cast.url}/connects")
    return page


def topbar_balance(page: Page) -> int:
    return int(page.get_by_test_id("topbar-balance").inner_text().replace(",", ""))


def chart_series(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.locator("#balance-data").inner_text())
    return data


def test_sign_in_link_works_once(browser: Browser, cast: Cast) -> None:
    link = create_login_link(cast.ctx, OWNER_EMAIL, cast.url)
    page = browser.new_context().new_page()
    page.goto(link)
    expect(page).to_have_url(f"{cast.url}/connects")
    expect(page.get_by_test_id("topbar-balance")).to_have_text("80")
    other = browser.new_context().new_page()
    other.goto(link)
    expect(other.get_by_test_id("form-error")).to_have_attribute("data-code", "login_link_invalid")
    other.goto(f"{cast.url}/connects")
    expect(other).to_have_url(f"{cast.url}/login")


def test_demo_owner_sign_in_and_log_out(browser: Browser, cast: Cast) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{cast.url}/login")
    page.get_by_role("button", name="Sign in as the demo owner").click()
    expect(page).to_have_url(f"{cast.url}/connects")
    cookie = next(c for c in page.context.cookies() if c["name"] == "connects_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{cast.url}/login")
    page.goto(f"{cast.url}/history")
    expect(page).to_have_url(f"{cast.url}/login")


def test_top_bar_switches_between_agency_pool_and_freelancer_balance(
    browser: Browser, cast: Cast
) -> None:
    """Seed 001: it must be obvious which pool is in use."""
    page = sign_in(browser, cast)
    switcher = page.get_by_test_id("switcher")
    expect(switcher.locator("summary")).to_contain_text("Agency pool")
    expect(switcher.locator("summary")).to_contain_text("Northwind Studio")
    switcher.locator("summary").click()
    switcher.get_by_role("button", name=re.compile("Olga \\(freelance\\)")).click()
    expect(switcher.locator("summary")).to_contain_text("Freelancer balance")
    expect(page.get_by_test_id("topbar-balance")).to_have_text("10")
    expect(page.locator(".pool-note")).to_contain_text("your own freelancer balance")
    expect(page.get_by_role("link", name="Members")).to_have_count(0)  # agencies only
    switcher.locator("summary").click()
    switcher.get_by_role("button", name=re.compile("Northwind Studio")).click()
    expect(switcher.locator("summary")).to_contain_text("Agency pool")


def test_auto_topup_guided_setup(browser: Browser, cast: Cast) -> None:
    """Seed 000's three steps: grant -> enable -> limits."""
    page = sign_in(browser, cast)
    section = page.get_by_test_id("auto-topup")
    expect(section.get_by_test_id("step-enable").get_by_role("button")).to_be_disabled()
    section.get_by_test_id("grant-button").click()
    expect(section.get_by_test_id("grant-status")).to_have_text("active")
    expect(section).to_contain_text("Permission granted")
    section.get_by_test_id("enable-button").click()
    # On, but this agency has no card yet: the panel never claims a bare "On" (R40).
    expect(section.get_by_test_id("autotopup-state")).to_have_text("On, but cannot buy")
    blocked = section.get_by_test_id("autotopup-blocked")
    expect(blocked).to_have_attribute("data-reason", "no_payment_method")
    section.get_by_label("Connects per top-up").fill("25")
    section.get_by_label("Connects per month").fill("100")
    section.get_by_test_id("limits-save").click()
    expect(section).to_contain_text("Limits saved.")
    settings = topups.get_settings(cast.ctx, cast.actor("owner"), cast.agency)
    assert (settings["enabled"], settings["per_topup"], settings["per_month"]) == (True, 25, 100)
    page.reload()
    expect(page.get_by_label("Connects per top-up")).to_have_value("25")


def test_buy_then_spend_through_the_api(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast)
    page.get_by_role("link", name="Buy Connects").first.click()
    expect(page).to_have_url(f"{cast.url}/buy")
    page.get_by_label("Add a card from a payment token").fill("tok_visa")
    page.get_by_role("button", name="Add card").click()
    expect(page.get_by_test_id("cards-card")).to_contain_text("ending")
    before = topbar_balance(page)
    page.get_by_label("Connects", exact=True).fill("30")
    page.get_by_role("radio", name=re.compile("Visa")).check()
    page.get_by_test_id("buy-submit").click()
    page.get_by_test_id("buy-confirm-button").click()
    expect(page.get_by_test_id("buy-card")).to_contain_text("Bought 30 Connects for $30.00")
    expect(page.get_by_test_id("topbar-balance")).to_have_text(str(before + 30))

    page.goto(f"{cast.url}/connects")
    expect(page.locator("#balance-chart[data-drawn=true]")).to_have_count(1)
    chart_before = chart_series(page)
    assert chart_before["balance"][-1] == before + 30
    assert chart_before["purchase"][-1] == 30

    job = cast.ctx.handle(PostJob(cast.ids["client"], "Build a dashboard", 12))
    answer = httpx.post(
        f"{cast.url}/v1/proposals",
        headers={"Authorization": f"Bearer {cast.tokens['mia']}"},
        json={
            "job_id": job,
            "account_id": cast.agency,
            "freelancer_id": cast.ids["mia"],
            "expected_connects": 12,
        },
    )
    assert answer.status_code == 201, answer.text
    page.reload()
    expect(page.get_by_test_id("topbar-balance")).to_have_text(str(before + 30 - 12))
    expect(page.get_by_test_id("used-this-month")).to_have_text("12")
    chart_after = chart_series(page)
    assert chart_after["balance"][-1] == before + 30 - 12
    assert chart_after != chart_before


def test_form_errors_show_inline(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast)
    page.goto(f"{cast.url}/buy")
    page.get_by_label("Connects", exact=True).fill("0")
    page.get_by_test_id("buy-submit").click()
    error = page.get_by_test_id("buy-card").get_by_test_id("form-error")
    expect(page.get_by_test_id("field-error-quantity")).to_have_text(
        "Connects must be a whole number of at least 1."
    )
    expect(error).to_have_attribute("data-code", "invalid_request")
    expect(page.get_by_label("Connects", exact=True)).to_have_value("0")
    expect(page.get_by_label("Connects", exact=True)).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Connects", exact=True).fill("1000")
    page.get_by_role("radio", name=re.compile("Earnings")).check()
    page.get_by_test_id("buy-submit").click()
    page.get_by_test_id("buy-confirm-button").click()
    expect(error).to_have_attribute("data-code", "insufficient_earnings")

    page.goto(f"{cast.url}/connects")
    page.get_by_label("Connects per top-up").fill("lots")
    page.get_by_test_id("limits-save").click()
    limits_error = page.get_by_test_id("step-limits").get_by_test_id("field-error-per_topup")
    expect(limits_error).to_contain_text("Connects per top-up must be a whole number")
    expect(page).to_have_url(f"{cast.url}/connects")


def test_member_budget_edit_and_spend_chart(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast)
    page.goto(f"{cast.url}/members")
    expect(page.locator("#members-chart[data-drawn=true]")).to_have_count(1)
    row = page.get_by_test_id(f"member-{cast.ids['mia']}")
    row.get_by_role("textbox").fill("-5")
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("The monthly budget must be")
    row = page.get_by_test_id(f"member-{cast.ids['mia']}")
    row.get_by_role("textbox").fill("50")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#members-table")).to_contain_text("Budget saved.")
    expect(page.get_by_test_id(f"member-{cast.ids['mia']}")).to_contain_text("/ 50")


PAGES = [
    "/connects",
    "/buy",
    "/history",
    "/topups",
    "/expiry",
    "/members",
    "/notifications",
    "/results",
]


def test_phone_width_has_no_horizontal_overflow(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast, viewport={"width": 375, "height": 812})
    for path in PAGES:
        page.goto(cast.url + path)
        page.wait_for_load_state("networkidle")
        wide = page.evaluate(
            "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        )
        assert wide <= 375, f"{path} is {wide}px wide at 375px"
        expect(page.get_by_test_id("topbar-balance")).to_be_visible()
    page.get_by_test_id("switcher").locator("summary").click()
    menu = page.locator(".switcher-menu")
    box = menu.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375


def test_history_filters_and_csv_export(browser: Browser, cast: Cast) -> None:
    # A member of its own, with one spend, whatever the other tests did before
    cast.person("hal", "Hal Helper", "hal@test.connects")
    add_member(cast.ctx, cast.actor("owner"), cast.agency, cast.ids["hal"], "member")
    job = cast.ctx.handle(PostJob(cast.ids["client"], "Write the history", 7))
    hal = cast.ids["hal"]
    cast.ctx.handle(SubmitProposal(cast.actor("hal"), job, cast.agency, hal, 7))
    page = sign_in(browser, cast)
    page.goto(f"{cast.url}/history")
    page.get_by_label("Kind").select_option("spend")
    page.get_by_label("Member").select_option(label="Hal Helper")
    page.get_by_role("button", name="Filter").click()
    table = page.get_by_test_id("history-table")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("-7")
    href = page.get_by_test_id("csv-link").get_attribute("href")
    assert href is not None and "kind=spend" in href
    csv = page.request.get(cast.url + href)
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().strip().splitlines()
    assert lines[0].startswith("id,at,kind,amount,balance_after") and len(lines) == 2


def test_topups_and_expiry_pages(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast)
    page.get_by_role("link", name="Top-ups").click()
    expect(page.locator("h1")).to_have_text("Top-up history")
    page.get_by_role("link", name="Expiry").click()
    expect(page.get_by_test_id("expiring-30d")).to_have_text("0")
    next_year = datetime.now(UTC) + timedelta(days=365)
    expect(page.locator("table")).to_contain_text(next_year.strftime("%B %Y"))


def test_posts_without_the_csrf_token_are_refused(browser: Browser, cast: Cast) -> None:
    page = sign_in(browser, cast)
    before = topbar_balance(page)
    answer = page.request.post(
        f"{cast.url}/buy", form={"quantity": "5", "pay_with": "earnings"}, max_redirects=0
    )
    assert answer.status == 403
    page.reload()
    assert topbar_balance(page) == before
