"""Balance alerts (R27, R45): the levels an owner is alerted at and which message a
crossing sends.

An account has up to :data:`MAX_LEVELS` low-balance levels (e.g. 50 and 20). When a
transaction takes the balance from above a level to it or below, that level's alert is
due, once: it is sent and stays spent until the balance rises above the level again
(re-armed). Reaching zero is the ``balance_empty`` alert, the same way. The state is
kept in the database (``balance_alerts``, one row per level alerted and not re-armed);
this module says what is valid and what one crossing says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connects.domain.errors import InvalidRequest
from connects.domain.vocabulary import EventType

FIELD = "low_balance_levels"
THRESHOLD_FIELD = "low_balance_threshold"  # the older single level
MAX_LEVELS = 5
MAX_LEVEL = 1_000_000
EMPTY = 0  # the level that stands for ``balance_empty``


def check_levels(value: Any) -> tuple[int, ...]:
    """The levels, highest first, or ``invalid_request`` naming ``low_balance_levels``:
    a list of at most :data:`MAX_LEVELS` distinct whole numbers from 1 to
    :data:`MAX_LEVEL`."""
    why = _problem(value)
    if why is not None:
        raise InvalidRequest(f"{FIELD} {why}", field=FIELD, fields={FIELD: why})
    return tuple(sorted(value, reverse=True))


def _problem(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of whole numbers"
    if len(value) > MAX_LEVELS:
        return f"can hold at most {MAX_LEVELS} levels"
    for level in value:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= MAX_LEVEL:
            return f"must be whole numbers from 1 to {MAX_LEVEL:,}"
    if len(set(value)) != len(value):
        return "must not repeat a level"
    return None


def levels_for_threshold(threshold: int) -> tuple[int, ...]:
    """The older single ``low_balance_threshold``: one level, or none for 0."""
    return (threshold,) if threshold > 0 else ()


def _threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LEVEL:
        why = f"must be a whole number from 0 to {MAX_LEVEL:,}"
        raise InvalidRequest(
            f"{THRESHOLD_FIELD} {why}", field=THRESHOLD_FIELD, fields={THRESHOLD_FIELD: why}
        )
    return value


def wanted_levels(fields: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The levels a change asks for, highest first (None: unchanged), from
    ``low_balance_levels`` or the older ``low_balance_threshold``; both may come only
    if they agree (the threshold is the highest level)."""
    levels = fields.get(FIELD)
    threshold = fields.get(THRESHOLD_FIELD)
    if levels is None and threshold is None:
        return None
    if levels is None:
        return levels_for_threshold(_threshold(threshold))
    checked = check_levels(levels)
    if threshold is not None and _threshold(threshold) != threshold_of(checked):
        why = f"must be the highest of {FIELD}, or left out"
        raise InvalidRequest(
            f"{THRESHOLD_FIELD} {why}",
            field=THRESHOLD_FIELD,
            fields={THRESHOLD_FIELD: why, FIELD: "must agree with low_balance_threshold"},
        )
    return checked


def threshold_of(levels: Iterable[int]) -> int:
    """``low_balance_threshold`` as the API still shows it: the highest level, or 0."""
    return max(levels, default=0)


def alert_for(fresh: Iterable[int], previous: int) -> tuple[EventType, dict[str, Any]] | None:
    """The one message for the levels a drop from ``previous`` newly reached (R45).

    Reaching zero says ``balance_empty`` alone; otherwise one ``balance_low`` names the
    lowest level reached (``threshold``) and every level this drop reached (``levels``,
    highest first). None when no level was newly reached.
    """
    reached = sorted(set(fresh), reverse=True)
    if not reached:
        return None
    if reached[-1] == EMPTY:
        return EventType.BALANCE_EMPTY, {"previous": previous}
    return EventType.BALANCE_LOW, {
        "previous": previous,
        "threshold": reached[-1],
        "levels": reached,
    }
