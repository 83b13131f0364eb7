"""One clock; the simulated one only moves forward (R33)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from connects.config import Settings
from connects.domain.clock import SimulatedClock, SystemClock, ensure_utc

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def test_simulated_clock_stands_still_and_moves_forward() -> None:
    # R33
    clock = SimulatedClock(START)
    assert clock.now() == START
    assert clock.now() == START
    assert clock.advance(timedelta(days=1)) == START + timedelta(days=1)
    assert clock.set(START + timedelta(days=3)) == START + timedelta(days=3)
    assert clock.now() == START + timedelta(days=3)
    assert clock.simulated is True
    assert SystemClock.simulated is False


def test_simulated_clock_never_moves_back() -> None:
    # R33
    clock = SimulatedClock(START)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(START - timedelta(seconds=1))
    assert clock.now() == START


def test_clock_is_always_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    clock = SimulatedClock(datetime(2026, 1, 15, 11, 0, tzinfo=plus2))
    assert clock.now() == START
    assert clock.now().tzinfo is UTC
    assert ensure_utc(datetime(2026, 1, 15, 9, 0)) == START
    assert SystemClock().now().tzinfo is UTC


def test_production_refuses_the_simulated_clock() -> None:
    # R33: never in production mode
    with pytest.raises(ValidationError, match="simulated clock"):
        Settings(mode="production", clock="simulated", secret_key="s" * 32)
    ok = Settings(mode="production", clock="system", secret_key="s" * 32)
    assert ok.clock == "system"
    dev = Settings(mode="dev", clock="simulated")
    assert dev.clock == "simulated"
