"""Channel secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived
from ``CONNECTS_SECRET_KEY`` (R28).

The key is derived with HKDF-SHA256, so any long random string works as the setting.
In production the placeholder key is refused: the settings refuse it already, and
:func:`cipher` refuses it again for a context built without settings.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connects.config import PLACEHOLDER

_INFO = b"connects/notify/channel-secrets/v1"
MIN_KEY_LENGTH = 16


class SecretKeyMissing(RuntimeError):
    """Production was started without a real ``CONNECTS_SECRET_KEY``."""


def check_key(secret_key: str, *, production: bool) -> None:
    """Refuse the placeholder (or a short key) in production."""
    if production and (secret_key == PLACEHOLDER or len(secret_key) < MIN_KEY_LENGTH):
        raise SecretKeyMissing("set CONNECTS_SECRET_KEY (16+ characters) in production")


@lru_cache(maxsize=8)
def cipher(secret_key: str, *, production: bool = False) -> Fernet:
    """The Fernet cipher for ``secret_key`` (cached: derivation runs once per key)."""
    check_key(secret_key, production=production)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(secret_key: str, plain: str) -> str:
    """``plain`` encrypted and authenticated, as URL-safe text for a Text column."""
    return cipher(secret_key).encrypt(plain.encode()).decode("ascii")


def decrypt(secret_key: str, token: str) -> str:
    """The plain text back; ``ValueError`` when the key is wrong or the text was altered."""
    try:
        return cipher(secret_key).decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise ValueError("a channel secret cannot be decrypted with this key") from exc
