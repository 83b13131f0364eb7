"""An owner's first hour (issue 24) in a real browser: the API docs offline, members and
account settings, errors in people's words, the browser 404, the phone-width layout.

The server, the cast and the sign-in are those of :mod:`tests.e2e.test_dashboard` (a
cast of its own for this module: an agency with its owner and a member).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.e2e.test_dashboard import Cast, browser, cast

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
