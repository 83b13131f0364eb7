"""Paging cursors: a list takes back only a ``next_cursor`` of the shape it gives out.

Lists page either by id (``dlv_...``, ``chn_...``, ``tup_...``: ids sort by creation
time, see :mod:`connects.domain.ids`) or by a number (a ledger sequence number, an
offset into a short list). Anything else, a cursor this API never gave, is refused
with ``invalid_request`` naming the ``cursor`` field before it reaches the database:
never a 500, never a silently different page.
"""

from __future__ import annotations

from typing import Any

from connects.domain.errors import InvalidRequest
from connects.domain.ids import is_id

MAX_NUMBER_DIGITS = 18  # every 18-digit number fits a BIGINT


def refused() -> InvalidRequest:
    return InvalidRequest("cursor is not one this API gave", field="cursor")


def id_cursor(cursor: Any, prefix: str) -> str | None:
    """``cursor`` when it is an id ``new_id(prefix)`` could have made, else a 422."""
    if cursor is None:
        return None
    if not is_id(cursor, prefix):  # the exact shape: also bounds the length
        raise refused()
    return str(cursor)


def number_cursor(cursor: Any, max_digits: int = MAX_NUMBER_DIGITS) -> int | None:
    """``cursor`` as a number when it is 1 to ``max_digits`` ASCII digits, else a 422."""
    if cursor is None:
        return None
    if (
        not isinstance(cursor, str)
        or not 1 <= len(cursor) <= max_digits
        or not cursor.isascii()
        or not cursor.isdigit()
    ):
        raise refused()
    return int(cursor)


def page_limit(limit: Any, most: int) -> int:
    """``limit`` when it is a whole number from 1 to ``most``, else a 422 naming it."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise InvalidRequest(f"limit is 1 to {most}", field="limit")
    return limit
