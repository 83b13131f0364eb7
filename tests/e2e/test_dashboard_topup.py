"""Auto top-up an owner can trust, in a real browser (R40-R42, R44).

Headless Chromium through Playwright on its own server and cast, on the simulated
clock: an agency-plus agency (80 Connects at opening, $1.00 a Connect) whose owner
grants, switches on with no card, adds a card that declines, waits out the declines
until auto top-up pauses, then makes a good card the default and resumes. The tests
run in order on that one cast.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.commands import (
    AcceptInvitation,
    AddBillingMethod,
    CreateUser,
    InviteMember,
    OpenAccount,
)
from connects.domain.policy import Actor
from connects.services import due, topups, views
from connects.services.context import Context
from connects.web.auth import create_login_link
from connects.web.screenshots import CHROMIUM, LiveServer, launch_chromium
from tests.conftest import eventually

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.xdist_group("dashboard-topup")
EMAIL = "olga@topup.connects"
MEMBER_EMAIL = "mia@topup.connects"


class Cast:
    def __init__(self, url: str, ctx: Context, agency: str, owner: str) -> None:
        self.url, self.ctx, self.agency = url, ctx, agency
        self.owner = Actor("user", owner)

    def balance(self) -> int:
        return int(views.overview(self.ctx, self.owner, self.agency)["available"])

    def status(self) -> dict[str, object]:
        return topups.get_settings(self.ctx, self.owner, self.agency)

    def wait(self, hours: int) -> None:
        """The clock moves on and the due work runs, as ``/admin/clock`` does (R33)."""
        self.ctx.clock.advance(timedelta(hours=hours))  # type: ignore[attr-defined]
        due.run_due(self.ctx)


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("topup")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'connects.db'}", mode="dev", clock="simulated"
    )
    ctx = build(settings, migrate=True)
    owner = ctx.handle(CreateUser("Olga Owner", EMAIL))["id"]
    agency = ctx.handle(OpenAccount(owner, "agency", "Northwind Studio", "agency-plus"))
    mia = ctx.handle(CreateUser("Mia Member", MEMBER_EMAIL))["id"]
    invitation = ctx.handle(InviteMember(Actor("user", owner), agency, mia, "member"))
    ctx.handle(AcceptInvitation(mia, str(invitation["id"])))
    with LiveServer(ctx, settings) as server:
        yield Cast(server.url, ctx, agency, owner)
    ctx.db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser: Browser, cast: Cast) -> Iterator[Page]:
    p = browser.new_context().new_page()
    p.goto(create_login_link(cast.ctx, EMAIL, cast.url))
    yield p


def _panel(page: Page, cast: Cast) -> None:
    page.goto(f"{cast.url}/connects")
    expect(page.get_by_test_id("auto-topup")).to_be_visible()


def test_r40_on_without_a_card_says_it_cannot_buy_and_how_to_fix_it(page: Page, cast: Cast) -> None:
    _panel(page, cast)
    page.get_by_test_id("grant-button").click()
    expect(page.get_by_test_id("grant-status")).to_have_text("active")
    page.get_by_test_id("enable-button").click()
    state = page.get_by_test_id("autotopup-state")
    expect(state).to_have_text("On, but cannot buy")  # never a bare "On" (R40)
    blocked = page.get_by_test_id("autotopup-blocked")
    expect(blocked).to_have_attribute("data-reason", "no_payment_method")
    expect(blocked).to_contain_text("the account has no default card")
    expect(page.get_by_test_id("topbar-topup-warning")).to_be_visible()  # the top bar too
    # The fix is one click away: the cards on the Buy page.
    page.get_by_test_id("fix-cards").click()
    expect(page).to_have_url(f"{cast.url}/buy#cards")


def test_r40_a_member_sees_why_and_whom_to_ask(browser: Browser, cast: Cast) -> None:
    member = browser.new_context().new_page()
    member.goto(create_login_link(cast.ctx, MEMBER_EMAIL, cast.url))
    _panel(member, cast)
    # Step 1 is done (the grant is active), though a member never sees the grant.
    expect(member.get_by_test_id("step-grant").locator(".dot")).to_have_text("✓")
    blocked = member.get_by_test_id("autotopup-blocked")
    expect(blocked).to_have_attribute("data-reason", "no_payment_method")
    expect(blocked).to_contain_text("Ask Olga Owner (owner) to fix it.")
    expect(blocked.get_by_role("link")).to_have_count(0)  # no fix a member cannot make
    member.context.close()


def test_r42_a_declining_card_waits_then_pauses(page: Page, cast: Cast) -> None:
    page.goto(f"{cast.url}/buy")
    page.locator("#token").fill("tok_chargeDeclined")
    page.get_by_role("button", name="Add card").click()
    expect(page.get_by_test_id("cards-card")).to_contain_text("default card")
    # Top up at 80 or less: the balance is there already, so it tries at once (R41).
    _panel(page, cast)
    page.locator("#threshold").fill("80")
    page.get_by_test_id("limits-save").click()
    expect(page.get_by_test_id("auto-topup")).to_contain_text("Limits saved.")
    # The server's own due work may be the one that runs the top-up the save decided.
    eventually(lambda: cast.status()["blocked_reason"] == "payment_declined")
    _panel(page, cast)
    blocked = page.get_by_test_id("autotopup-blocked")
    expect(blocked).to_have_attribute("data-reason", "payment_declined")
    expect(blocked).to_contain_text("The card is tried again at")
    expect(page.get_by_test_id("autotopup-card")).to_contain_text("Visa ending 0002")
    cast.wait(1)
    cast.wait(2)
    assert cast.status()["blocked_reason"] == "paused"
    _panel(page, cast)
    expect(blocked).to_have_attribute("data-reason", "paused")
    expect(page.get_by_test_id("resume-button")).to_be_visible()
    page.goto(f"{cast.url}/topups")
    expect(page.get_by_test_id("nothing-charged")).to_have_count(3)  # R44
    assert cast.balance() == 80


def test_r44_make_a_good_card_default_then_resume_buys_once(page: Page, cast: Cast) -> None:
    cast.ctx.handle(AddBillingMethod(cast.owner, cast.agency, "tok_visa"))
    page.goto(f"{cast.url}/buy")
    rows = page.get_by_test_id("card-row")
    expect(rows).to_have_count(2)
    rows.filter(has_text="4242").get_by_test_id("make-default").click()
    expect(page.get_by_role("status")).to_contain_text("Visa ending 4242 is now the default card")
    expect(rows.filter(has_text="4242")).to_contain_text("auto top-up charges this card")
    assert cast.balance() == 80  # a pause outlives a new card (R42)
    _panel(page, cast)
    page.get_by_test_id("resume-button").click()
    expect(page.get_by_test_id("auto-topup")).to_contain_text("Auto top-up resumed.")
    eventually(lambda: cast.balance() == 120)  # the waiting top-up bought 40 (R41)
    _panel(page, cast)
    expect(page.get_by_test_id("autotopup-state")).to_have_text("On")
    expect(page.get_by_test_id("topbar-topup-warning")).to_have_count(0)
    # The forecast counts the next cycles' grants and what auto top-up may still buy.
    counts = page.get_by_test_id("forecast-counts")
    expect(counts).to_contain_text("each cycle's free Connects and what auto top-up may")
    statuses = [t["status"] for t in topups.history(cast.ctx, cast.owner, cast.agency)["items"]]
    assert statuses == ["succeeded", "failed", "failed", "failed"]  # once (R23)
    # Removing the declined card asks first, then it is gone.
    page.goto(f"{cast.url}/buy")
    page.once("dialog", lambda d: d.accept())
    rows.filter(has_text="0002").get_by_test_id("remove-card").click()
    expect(page.get_by_role("status")).to_contain_text("Visa ending 0002 removed")
    expect(rows).to_have_count(1)
