"""Screenshots of the dashboard's main pages, for the README and reviews.

``python -m connects.web.screenshots [--out docs/screenshots]`` plays the demo into a
temporary SQLite file, serves the app on a free port, signs in with a one-time link and
saves a PNG per page (desktop width) and a few at phone width (375 px). It drives
Debian's Chromium headless through Playwright (``apt-get install chromium``).

:class:`LiveServer` and :func:`launch_chromium` are shared with the end-to-end tests.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from connects.api.app import create_app
from connects.bootstrap import build
from connects.config import Settings
from connects.services.context import Context

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    ("connects", "/connects"),
    ("buy", "/buy"),
    ("history", "/history"),
    ("topups", "/topups"),
    ("expiry", "/expiry"),
    ("members", "/members"),
    ("proposals", "/proposals"),
    ("results", "/results"),
    ("notifications", "/notifications"),
    ("settings", "/settings"),
    ("login", "/login"),
]
PHONE_PAGES = [("connects", "/connects"), ("members", "/members")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """The real app under uvicorn in a thread, on a free local port."""

    def __init__(self, ctx: Context, settings: Settings, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(ctx, settings)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="connects-web", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def demo_context(folder: Path) -> tuple[Context, Settings, dict[str, str]]:
    """A fresh database with the demo played into it (auto top-up on, its top-ups and
    the declined card among them)."""
    from connects.demo import demo_settings, opening, play
    from connects.domain.clock import SimulatedClock

    settings = demo_settings(Settings(database_url=f"sqlite:///{folder / 'connects.db'}"))
    end = datetime.now(UTC)
    clock = SimulatedClock(opening(end, 3))
    played = build(settings, clock=clock, migrate=True)
    cast = play(played, clock, 3, seed=7, until=end)
    played.db.dispose()
    ctx = build(settings)
    return ctx, settings, {"owner_email": cast.owner["email"], "agency_id": cast.agency_id}


def capture(out: Path) -> list[Path]:
    """Save the screenshots into ``out``; the paths written."""
    from connects.web.auth import create_login_link

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx, settings, cast = demo_context(Path(tmp))
        with LiveServer(ctx, settings) as server, launch_chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(create_login_link(ctx, cast["owner_email"], server.url))
            for name, path in PAGES:
                if name == "login":
                    page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.goto(server.url + path)
                page.wait_for_load_state("networkidle")
                target = out / f"{name}.png"
                # The ledger is long: its picture is the first screen of it.
                page.screenshot(path=str(target), full_page=name != "history")
                written.append(target)
            phone = browser.new_page(viewport={"width": 375, "height": 812}, device_scale_factor=2)
            phone.goto(create_login_link(ctx, cast["owner_email"], server.url))
            for name, path in PHONE_PAGES:
                phone.goto(server.url + path)
                phone.wait_for_load_state("networkidle")
                target = out / f"{name}-phone.png"
                phone.screenshot(path=str(target), full_page=False)
                written.append(target)
        ctx.db.dispose()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    for path in capture(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
