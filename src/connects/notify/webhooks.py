"""Webhook deliveries as Standard Webhooks v1 describes them (R46).

Every delivery is a JSON POST of :func:`body` carrying three headers:

* ``webhook-id``: the event's id, the same on every retry (receivers dedupe on it, R29);
* ``webhook-timestamp``: when this attempt was signed, in unix seconds, read from the
  one clock (R33);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under the
  key a ``whsec_<base64>`` secret encodes.

A receiver verifies with any Standard Webhooks library, e.g. Python's
``standardwebhooks.Webhook(secret).verify(body, headers)``, which also refuses a
timestamp more than five minutes away from its own clock, so a captured delivery
cannot be replayed later. The algorithm is written here once rather than taken from
that package at run time: it is a few lines, and signing must read our clock, not
the machine's. The tests verify every delivery with the package itself.

Channels made before R46 kept a secret of any form, used as its own UTF-8 bytes for
the old ``X-Connects-Signature``. Migration 0014 marks them (``secret_raw``) and
:func:`open_secret` gives them as ``whsec_`` + the base64 of those bytes: the same
HMAC key, so their receiver keeps its secret and verifies with
``Webhook(old_secret.encode())`` or ``Webhook("whsec_" + b64encode(old_secret))``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from connects.domain.errors import InvalidRequest
from connects.notify import crypto

PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
# Standard Webhooks: a key of 24 to 64 random bytes; ours are 32.
MIN_KEY_BYTES, MAX_KEY_BYTES, NEW_KEY_BYTES = 24, 64, 32


def new_secret() -> str:
    """A fresh ``whsec_<base64>`` signing secret (shown once, when a channel is made)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_KEY_BYTES)).decode("ascii")


def _key(secret: str) -> bytes | None:
    """The HMAC key a ``whsec_`` secret encodes, or None when it is not one."""
    if not secret.startswith(PREFIX):
        return None
    part = secret[len(PREFIX) :]
    try:  # standard base64, padded or not (as the Standard Webhooks libraries read it)
        return base64.b64decode(part + "=" * (-len(part) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def check_secret(value: object) -> str:
    """A secret the caller chose, if it is ``whsec_`` + the base64 of 24 to 64 bytes;
    otherwise ``invalid_request`` naming ``secret``."""
    key = _key(value.strip()) if isinstance(value, str) else None
    if key is None or not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise InvalidRequest(
            f"secret is {PREFIX} followed by the base64 of {MIN_KEY_BYTES} to "
            f"{MAX_KEY_BYTES} random bytes (leave it out to have one generated)",
            field="secret",
        )
    assert isinstance(value, str)
    return value.strip()


def open_secret(secret_key: str, encrypted: str | None, raw: bool) -> str | None:
    """A channel's stored signing secret in ``whsec_`` form (``raw``: a secret from
    before R46, whose own bytes are the key). ``ValueError`` if it cannot be decrypted."""
    if encrypted is None:
        return None
    plain = crypto.decrypt(secret_key, encrypted)
    return PREFIX + base64.b64encode(plain.encode()).decode("ascii") if raw else plain


def body(event_id: str, kind: str, account_id: str, at: datetime | None, data: Any) -> bytes:
    """The exact bytes POSTed (and signed): ``{id, type, created_at, account_id, data}``."""
    doc = {
        "id": event_id,
        "type": kind,
        "created_at": at.isoformat().replace("+00:00", "Z") if at else None,
        "account_id": account_id,
        "data": data,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, msg_id: str, timestamp: int, content: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under ``secret``'s key."""
    key = _key(secret)
    if key is None:
        raise ValueError("a signing secret is whsec_<base64>")
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, content)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str | None, msg_id: str, at: datetime, content: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt signed at ``at``."""
    timestamp = int(at.timestamp())
    out = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        out[SIGNATURE_HEADER] = sign(secret, msg_id, timestamp, content)
    return out
