"""An owner's first hour (issue 24) in a real browser: the API docs offline, members and
account settings, errors in people's words, the browser 404, the phone-width layout.

The server, the cast and the sign-in are those of :mod:`tests.e2e.test_dashboard` (a
cast of its own for this module: an agency with its owner and a member).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Route, expect

from connects.domain.commands import UpdateAccount
from connects.services import views
from connects.web.auth import create_login_link
from tests.e2e.test_dashboard import Cast, browser, cast, sign_in

__all__ = ["browser", "cast"]  # the module's fixtures, shared with test_dashboard

pytestmark = pytest.mark.xdist_group("dashboard-first-hour")


def test_api_docs_load_with_no_external_url(browser: Browser, cast: Cast) -> None:
    """/docs is Swagger UI from the vendored files: every request stays on this server."""
    outside: list[str] = []
    server = urlsplit(cast.url).netloc
    page = browser.new_context().new_page()

    def only_local(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or parts.netloc == server:
            route.continue_()
        else:  # what a machine without internet would see
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{cast.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("connects")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(
        page.get_by_text(re.compile("/v1/accounts/\\{account_id\\}/purchases")).first
    ).to_be_visible()
    assert outside == []


def test_members_invite_accept_change_role_and_remove(browser: Browser, cast: Cast) -> None:
    """R3, R49: invite an existing person by e-mail with a role; they accept on their
    Invitations page; the owner changes the role and removes them, with confirmations;
    the owner is never offered either."""
    cast.person("ivy", "Ivy Invited", "ivy@test.connects")
    owner = sign_in(browser, cast)
    owner.goto(f"{cast.url}/members")
    card = owner.get_by_test_id("invite-card")
    card.get_by_label("E-mail").fill("nobody@test.connects")
    card.get_by_role("button", name="Invite").click()
    refused = owner.get_by_test_id("invite-card").get_by_test_id("form-error")
    expect(refused).to_have_text("No person has the e-mail nobody@test.connects.")  # words
    expect(refused).to_have_attribute("data-code", "not_found")
    card = owner.get_by_test_id("invite-card")
    expect(card.get_by_label("E-mail")).to_have_value("nobody@test.connects")
    card.get_by_label("E-mail").fill("IVY@test.connects")
    card.get_by_label("Role").select_option("manager")
    card.get_by_role("button", name="Invite").click()
    card = owner.get_by_test_id("invite-card")
    expect(card).to_contain_text("Ivy Invited is invited as manager.")
    expect(card.get_by_test_id("open-invitations")).to_contain_text("Ivy Invited")
    expect(owner.get_by_test_id(f"member-{cast.ids['ivy']}")).to_have_count(0)  # not yet

    ivy = browser.new_context().new_page()  # no account of her own: straight to invitations
    ivy.goto(create_login_link(cast.ctx, cast.emails["ivy"], cast.url))
    expect(ivy).to_have_url(f"{cast.url}/invitations")
    expect(ivy.get_by_test_id("invitations-link")).to_contain_text("1")
    ivy.get_by_role("button", name="Accept").click()
    expect(ivy.get_by_test_id("invitations")).to_contain_text(
        "You joined Northwind Studio as manager."
    )
    expect(ivy.get_by_test_id("switcher").locator("summary")).to_contain_text("Northwind Studio")

    owner.reload()
    row = owner.get_by_test_id(f"member-{cast.ids['ivy']}")
    expect(row).to_contain_text("manager")
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    owner.on("dialog", accept)
    row.get_by_label("Role of Ivy Invited").select_option("admin")
    row.get_by_role("button", name="Change role").click()
    expect(owner.locator("#members-table")).to_contain_text("Ivy Invited is now an admin.")
    row = owner.get_by_test_id(f"member-{cast.ids['ivy']}")
    expect(row.get_by_label("Role of Ivy Invited")).to_have_value("admin")
    row.get_by_role("button", name="Remove").click()
    expect(owner.locator("#members-table")).to_contain_text("Ivy Invited was removed.")
    expect(owner.get_by_test_id(f"member-{cast.ids['ivy']}")).to_have_count(0)
    assert dialogs == [
        "Change the role of Ivy Invited?",
        "Remove Ivy Invited from Northwind Studio? They stop drawing from its pool at "
        "once; their past entries stay in the history.",
    ]
    mine = owner.get_by_test_id(f"member-{cast.ids['owner']}")
    expect(mine).to_contain_text("The owner stays the owner.")
    expect(mine.get_by_role("button")).to_have_text(["Save"])  # the budget only


def test_a_member_who_may_not_invite_learns_nothing_of_who_signed_up(
    browser: Browser, cast: Cast
) -> None:
    """R3, R49: the address is looked up only once the caller may invite: a member's
    hand-made invite is refused the same way for a registered and an unknown address."""
    page = sign_in(browser, cast, "mia")
    page.goto(f"{cast.url}/members")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answers = [
        page.request.post(
            f"{cast.url}/members/invite",
            form={"csrf_token": token or "", "email": email, "role": "member"},
            headers={"HX-Request": "true"},
        )
        for email in (cast.emails["owner"], "nobody-at-all@test.connects")
    ]
    texts = [re.sub(r'value="[\w-]{20,}"', "", a.text()) for a in answers]  # csrf
    assert [a.status for a in answers] == [422, 422]
    assert texts[0] == texts[1]  # the same page: nothing tells the two addresses apart
    assert "invited" not in texts[0]


def test_the_owner_cannot_be_removed_even_by_a_hand_made_post(browser: Browser, cast: Cast) -> None:
    """R3: the engine refuses; the dashboard shows it and the owner stays."""
    page = sign_in(browser, cast)
    page.goto(f"{cast.url}/members")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        f"{cast.url}/members/{cast.ids['owner']}/remove",
        form={"csrf_token": token or ""},
        headers={"HX-Request": "true"},
    )
    assert answer.status == 422
    assert "The owner always stays the owner" in answer.text()
    assert 'data-code="owner_is_permanent"' in answer.text()
    page.reload()
    expect(page.get_by_test_id(f"member-{cast.ids['owner']}")).to_have_count(1)


def test_settings_name_time_zone_and_plan(browser: Browser, cast: Cast) -> None:
    """R3, R7, R8: the owner renames the account, sets its zone and changes its plan,
    each plan shown with its grant, rollover cap and price; a member only reads."""
    page = sign_in(browser, cast)
    page.get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{cast.url}/settings")
    plus = page.get_by_test_id("plan-agency-plus")
    expect(plus.locator("td")).to_have_text(
        [
            re.compile("agency-plus.*current"),
            "80",
            "160",
            re.compile(r"\$20\.00\s*/ month"),
            "$1.00",
            "none",  # R16: no interview reward in R7's defaults
        ]
    )
    expect(page.get_by_test_id("plan-agency-basic").locator("td")).to_have_text(
        [re.compile("agency-basic"), "0", "no cap", "free", "not sold", "none"]
    )

    page.get_by_label("Account name").fill("Northwind Studio Ltd")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_test_id("name-card")).to_contain_text(
        "The account is now called Northwind Studio Ltd."
    )
    expect(page.get_by_test_id("switcher").locator("summary")).to_contain_text(
        "Northwind Studio Ltd"
    )

    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save time zone").click()
    card = page.get_by_test_id("timezone-card")
    expect(card.get_by_test_id("form-error")).to_contain_text("Mars/Olympus")
    expect(card.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    card.get_by_label("Time zone").fill("Europe/Berlin")
    card.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_test_id("timezone-card")).to_contain_text("Time zone set to Europe/Berlin")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("plan-agency-basic").get_by_role("radio").check()
    page.get_by_role("button", name="Change plan").click()
    expect(page.get_by_test_id("plan-card")).to_contain_text("The plan is now agency-basic.")
    expect(page.get_by_test_id("plan-agency-basic")).to_contain_text("current")
    account = views.account(cast.ctx, cast.actor("owner"), cast.agency)
    assert (account["name"], account["timezone"], account["plan"]) == (
        "Northwind Studio Ltd",
        "Europe/Berlin",
        "agency-basic",
    )

    mia = sign_in(browser, cast, "mia")
    mia.goto(f"{cast.url}/settings")
    expect(mia.get_by_test_id("settings-locked")).to_have_text(
        "Only the owner and admins change these settings: ask Olga Owner (owner)."
    )
    expect(mia.get_by_role("button", name="Change plan")).to_have_count(0)
    expect(mia.get_by_label("Account name")).to_have_count(0)

    # put the cast back as the other tests know it
    cast.ctx.handle(
        UpdateAccount(cast.actor("owner"), cast.agency, plan="agency-plus", name="Northwind Studio")
    )


# Words split over two lines inside the element (a word of one line has one box).
SPLIT_WORDS = """(root) => {
  const split = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent;
    for (const m of text.matchAll(/[A-Za-z][A-Za-z()'-]{3,}/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (lines.size > 1) split.push(m[0]);
    }
  }
  return split;
}"""

PHONE_PAGES = ["/connects", "/history", "/topups", "/expiry", "/members", "/settings", "/results"]


def test_phone_width_words_never_split_and_tables_scroll(browser: Browser, cast: Cast) -> None:
    """Issue 24: at 375 px no word wraps mid-word ("Mia (freelan ce)"), wide tables
    scroll inside their card and the page never scrolls sideways."""
    page = sign_in(browser, cast, viewport={"width": 375, "height": 812})
    for path in PHONE_PAGES:
        page.goto(cast.url + path)
        page.wait_for_load_state("networkidle")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 375, f"{path} is {wide}px wide at 375px"
        for table in page.locator("table").all():
            assert table.evaluate(SPLIT_WORDS) == [], path
            box = table.locator("xpath=..").bounding_box()  # the scrolling wrapper
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375, path
    page.get_by_test_id("switcher").locator("summary").click()
    assert page.locator(".switcher-menu").evaluate(SPLIT_WORDS) == []


def test_a_browser_gets_an_html_404_and_api_clients_json(browser: Browser, cast: Cast) -> None:
    page = browser.new_context().new_page()
    answer = page.goto(f"{cast.url}/no-such-page")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.get_by_role("link", name="Back to the dashboard")).to_be_visible()
    api = httpx.get(f"{cast.url}/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    under_v1 = page.goto(f"{cast.url}/v1/no-such-endpoint")  # the API stays JSON
    assert under_v1 is not None and under_v1.status == 404
    assert under_v1.headers["content-type"].startswith("application/json")


def test_members_who_cannot_buy_see_no_buy_tab_and_whom_to_ask(
    browser: Browser, cast: Cast
) -> None:
    """R3: only the owner and admins buy; a member is told whom to ask."""
    mia = sign_in(browser, cast, "mia")
    expect(mia.get_by_role("link", name="Buy Connects")).to_have_count(0)
    expect(mia.get_by_test_id("buy-ask")).to_have_text(
        "To add Connects to this pool, ask Olga Owner (owner)."
    )
    owner = sign_in(browser, cast)
    expect(owner.get_by_role("link", name="Buy Connects").first).to_be_visible()
    expect(owner.get_by_test_id("buy-ask")).to_have_count(0)
