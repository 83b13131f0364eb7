"""Limits that make sense and safe purchases, in a real browser (R43, R45, issue 24).

Headless Chromium through Playwright, as ``test_dashboard.py``, on its own server and
cast: an agency-plus agency (80 Connects at opening, $1.00 a Connect) with its owner.
The tests run in order on that one cast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.commands import (
    AddBillingMethod,
    CreateUser,
    GrantPermissions,
    OpenAccount,
    PostJob,
    SetAutoTopUp,
    SubmitProposal,
)
from connects.domain.policy import PURCHASE_PERMISSION, Actor
from connects.domain.topup import TOPUP_MANAGER_ID
from connects.services import topups, views
from connects.services.context import Context
from connects.services.notifications import settings as notes
from connects.web.auth import create_login_link
from connects.web.screenshots import CHROMIUM, LiveServer, launch_chromium
from tests.conftest import eventually

if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.xdist_group("dashboard-limits")
EMAIL = "olga@limits.connects"


class Cast:
    def __init__(self, url: str, ctx: Context, agency: str, owner: str, client: str) -> None:
        self.url, self.ctx, self.agency = url, ctx, agency
        self.owner, self.client = Actor("user", owner), client


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("limits")
    settings = Settings(database_url=f"sqlite:///{folder / 'connects.db'}", mode="dev")
    ctx = build(settings, migrate=True)
    owner = ctx.handle(CreateUser("Olga Owner", EMAIL))["id"]
    client = ctx.handle(CreateUser("Chloe Client", "chloe@limits.connects"))["id"]
    agency = ctx.handle(OpenAccount(owner, "agency", "Northwind Studio", "agency-plus"))
    with LiveServer(ctx, settings) as server:
        yield Cast(server.url, ctx, agency, owner, client)
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


def _balance(cast: Cast) -> int:
    return int(views.overview(cast.ctx, cast.owner, cast.agency)["available"])


def test_r43_the_limits_form_says_by_each_field_what_does_not_fit(
    browser: Browser, cast: Cast
) -> None:
    """R43: 500 per top-up with 400 a month, 0 a month, a target under the threshold:
    refused, each field marked with a sentence beside it; nothing saved."""
    page = sign_in(browser, cast, "/connects")
    step = page.get_by_test_id("step-limits")
    step.get_by_label("Connects per top-up").fill("500")
    step.get_by_label("Connects per month").fill("400")
    step.get_by_test_id("limits-save").click()
    expect(step.get_by_test_id("field-error-per_topup")).to_have_text(
        "Connects per top-up cannot be more than the monthly limit (400)."
    )
    expect(step.get_by_test_id("field-error-per_month")).to_have_text(
        "Connects per month cannot be less than one top-up (500)."
    )
    expect(step.get_by_label("Connects per top-up")).to_have_attribute("aria-invalid", "true")
    expect(step.get_by_label("Connects per top-up")).to_have_value("500")
    expect(step.get_by_test_id("form-error")).to_contain_text("nothing was changed")

    step.get_by_label("Connects per top-up").fill("40")
    step.get_by_label("Connects per month").fill("0")
    step.get_by_test_id("limits-save").click()
    expect(step.get_by_test_id("field-error-per_month")).to_contain_text(
        "Connects per month must be a whole number from 1"
    )

    step.get_by_label("Connects per month").fill("400")
    step.get_by_label("Top up at balance").fill("30")
    step.get_by_label("Amount").select_option("target")
    step.get_by_label("Target balance").fill("20")
    step.get_by_test_id("limits-save").click()
    expect(step.get_by_test_id("field-error-target")).to_have_text(
        "Target balance must be above the threshold (30)."
    )
    expect(step.get_by_test_id("field-error-threshold")).to_be_visible()
    saved = topups.get_settings(cast.ctx, cast.owner, cast.agency)
    assert (saved["per_topup"], saved["per_month"], saved["mode"]) == (40, 400, "fixed")

    step.get_by_label("Target balance").fill("60")
    step.get_by_test_id("limits-save").click()
    expect(step).to_contain_text("Limits saved.")
    saved = topups.get_settings(cast.ctx, cast.owner, cast.agency)
    assert (saved["mode"], saved["target"], saved["threshold"]) == ("target", 60, 30)


def test_r43_buy_shows_the_total_confirms_and_says_what_was_charged(
    browser: Browser, cast: Cast
) -> None:
    """Issue 24 item 1 and R43: a total before buying, a confirm step naming the amount
    and the card, at most max_purchase (the refusal says the max), and a confirmation
    naming what was charged to which card."""
    cast.ctx.handle(AddBillingMethod(cast.owner, cast.agency, "tok_visa"))
    before = _balance(cast)
    page = sign_in(browser, cast, "/buy")
    quantity = page.get_by_label("Connects", exact=True)
    expect(page.get_by_test_id("buy-total")).to_have_text("$40.00")  # 40 at $1.00
    quantity.fill("100000")
    expect(page.get_by_test_id("buy-total")).to_contain_text("$100,000.00")
    page.get_by_test_id("buy-submit").click()
    error = page.get_by_test_id("field-error-quantity")
    expect(error).to_have_text("Connects cannot be more than 10,000, the most one purchase buys.")
    expect(quantity).to_have_value("100000")
    assert _balance(cast) == before  # nothing bought, nothing charged

    quantity.fill("25")
    expect(page.get_by_test_id("buy-total")).to_have_text("$25.00")
    page.get_by_role("radio", name=re.compile("Visa")).check()
    page.get_by_test_id("buy-submit").click()
    confirm = page.get_by_test_id("buy-confirm")
    expect(confirm).to_contain_text("Buy 25 Connects for $25.00, charged to Visa ending 4242?")
    assert _balance(cast) == before  # the review step charges nothing
    page.get_by_test_id("buy-change").click()  # back to the form, the typed values kept
    expect(page.get_by_label("Connects", exact=True)).to_have_value("25")
    page.get_by_test_id("buy-submit").click()
    page.get_by_test_id("buy-confirm-button").click()
    expect(page.get_by_test_id("buy-card")).to_contain_text(
        "Bought 25 Connects for $25.00, charged to Visa ending 4242."
    )
    assert _balance(cast) == before + 25


def test_r45_the_notifications_form_edits_the_low_balance_levels(
    browser: Browser, cast: Cast
) -> None:
    """R45: several levels, typed "50, 20"; a repeated level is refused beside the field."""
    page = sign_in(browser, cast, "/notifications")
    toggles = page.get_by_test_id("notification-toggles")
    toggles.get_by_label("Alert when the balance falls to").fill("20, 50")
    toggles.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notification-toggles")).to_contain_text(
        "Notification settings saved."
    )
    shown = notes.get_settings(cast.ctx, cast.owner, cast.agency)
    assert shown["low_balance_levels"] == [50, 20]
    page.reload()
    levels = page.get_by_label("Alert when the balance falls to")
    expect(levels).to_have_value("50, 20")
    levels.fill("20, 20")
    page.get_by_test_id("notification-toggles").get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("field-error-low_balance_levels")).to_have_text(
        "The alert levels must not repeat a level."
    )
    shown = notes.get_settings(cast.ctx, cast.owner, cast.agency)
    assert shown["low_balance_levels"] == [50, 20]


def _spend_one(cast: Cast, n: int) -> None:
    job = cast.ctx.handle(PostJob(cast.client, f"Job {n}", 1))
    cast.ctx.handle(
        SubmitProposal(
            cast.owner,
            job_id=job,
            account_id=cast.agency,
            freelancer_id=cast.owner.id,
            expected_connects=1,
        )
    )


def test_r45_topups_page_shows_the_months_use_and_that_a_failure_charged_nothing(
    browser: Browser, cast: Cast
) -> None:
    """R44/R45 on the Top-ups page: "bought N of M this month, K left" (the overview's
    count) and a failed top-up's cost as nothing charged, not its price."""
    ctx = cast.ctx
    limits = {"enabled": True, "mode": "fixed", "per_topup": 40, "per_month": 400}
    ctx.handle(SetAutoTopUp(cast.owner, cast.agency, {**limits, "threshold": _balance(cast) - 1}))
    _spend_one(cast, 1)  # crosses the threshold with no grant: a failed top-up
    # Granting removes the cause while the balance is still at the threshold: the
    # recovery buys 40 with the Visa card, once (R41).
    ctx.handle(GrantPermissions(cast.owner, cast.agency, TOPUP_MANAGER_ID, [PURCHASE_PERMISSION]))

    # The server's own due work may be the one that runs the retry the grant decided.
    def settled() -> list[dict[str, Any]] | None:
        items = topups.history(ctx, cast.owner, cast.agency)["items"]
        return items if len(items) == 2 and items[0]["status"] != "pending" else None

    items = eventually(settled)
    assert [t["status"] for t in items] == ["succeeded", "failed"]
    assert items[1]["amount"] > 0  # the price it would have cost; the page says otherwise

    page = sign_in(browser, cast, "/topups")
    expect(page.get_by_test_id("topups-usage")).to_contain_text(
        "This month: bought 40 of 400, 360 left"
    )
    rows = page.get_by_test_id("topups-table").locator("tbody tr")
    expect(rows.nth(1)).to_contain_text("$0.00 — nothing charged")
    expect(rows.nth(0)).to_contain_text("$40.00")
    expect(rows.nth(0)).not_to_contain_text("nothing charged")
