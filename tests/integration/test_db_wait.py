"""``connects.db.wait``: the start-up wait's back-off, bound and refusals, in process.

A fake clock makes the timing exact: the sleeps the wait asks for move it on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import exc

from connects.db import wait
from connects.db.wait import DatabaseUnavailable, wait_for_database


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def test_backoff_doubles_is_capped_and_ends_at_the_deadline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"  # no directory: cannot open
    t = FakeTime()
    with (
        caplog.at_level(logging.WARNING, logger="connects.db"),
        pytest.raises(DatabaseUnavailable) as raised,
    ):
        wait_for_database(url, 12, sleep=t.sleep, monotonic=t.monotonic)
    assert t.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 4.25]  # doubling; the last one fits 12 s
    assert all(s <= wait.MAX_DELAY for s in t.sleeps) and sum(t.sleeps) == 12
    assert raised.value.attempts == 7 and "unable to open database file" in raised.value.error
    assert "did not answer within 12.0 s (7 attempts)" in str(raised.value)
    retries = [r for r in caplog.records if r.getMessage() == "database unreachable: retrying"]
    assert [r.attempt for r in retries] == [1, 2, 3, 4, 5, 6]  # type: ignore[attr-defined]
    assert caplog.records[-1].levelname == "ERROR"


def test_a_long_wait_never_pauses_more_than_the_cap(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"
    t = FakeTime()
    with pytest.raises(DatabaseUnavailable):
        wait_for_database(url, 60, sleep=t.sleep, monotonic=t.monotonic)
    assert max(t.sleeps) == wait.MAX_DELAY and sum(t.sleeps) == 60


def test_zero_tries_once_and_a_reachable_database_needs_one_attempt(tmp_path: Path) -> None:
    t = FakeTime()
    missing = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"
    with pytest.raises(DatabaseUnavailable) as raised:
        wait_for_database(missing, 0, sleep=t.sleep, monotonic=t.monotonic)
    assert raised.value.attempts == 1 and t.sleeps == []
    here = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert wait_for_database(here, 5, sleep=t.sleep, monotonic=t.monotonic) == 1


def test_what_waiting_cannot_fix_fails_at_once() -> None:
    t = FakeTime()
    with pytest.raises(exc.ArgumentError):
        wait_for_database("not a url", 30, sleep=t.sleep, monotonic=t.monotonic)
    with pytest.raises(exc.NoSuchModuleError):
        wait_for_database("nosuchdb://x/y", 30, sleep=t.sleep, monotonic=t.monotonic)
    assert t.sleeps == []


def test_the_password_is_never_shown() -> None:
    shown = wait.safe_url("postgresql+psycopg://u:s3cret@db:5432/x")
    assert shown == "postgresql+psycopg://u:***@db:5432/x"
