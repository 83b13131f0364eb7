"""E-mail addresses, as every field that takes one reads them: a person's at sign-up and
an e-mail channel's target (R47)."""

from __future__ import annotations

import re
import unicodedata

from connects.domain.errors import InvalidRequest

_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Characters that would make the text more than one plain address in a mail header
# (a list, a display name, a comment, a route), refused rather than interpreted.
_NOT_IN_ADDRESS = frozenset('<>()[]\\,;:"')
MAX_LENGTH = 320


def email_address(value: object, field: str = "email", message: str | None = None) -> str:
    """``value`` as a plain address, trimmed and in lower case, or ``invalid_request``
    naming ``field``."""
    address = value.strip().lower() if isinstance(value, str) else ""
    if (
        len(address) > MAX_LENGTH
        or not _ADDRESS.match(address)
        or any(c in _NOT_IN_ADDRESS or unicodedata.category(c) == "Cc" for c in address)
    ):
        raise InvalidRequest(message or f"{field} is not a valid address", field=field)
    return address
