"""Identifiers: a short type prefix and a time-ordered random part (like a ULID).

Ids sort by creation time, so lists page by id; they are unique without a central
sequence, so accounts can live on different shards.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_CHARS = frozenset(_ALPHABET)
_BODY = 26  # characters after "<prefix>_": 10 of time, 16 random


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A new id such as ``acct_01j9...``: 10 chars of milliseconds, 16 random."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_b32(millis, 10)}{_b32(rand, 16)}"


def is_id(value: object, prefix: str) -> bool:
    """Whether ``value`` has the shape ``new_id(prefix)`` gives (e.g. a paging cursor)."""
    if not isinstance(value, str) or len(value) != len(prefix) + 1 + _BODY:
        return False
    return value.startswith(f"{prefix}_") and _CHARS.issuperset(value[len(prefix) + 1 :])
