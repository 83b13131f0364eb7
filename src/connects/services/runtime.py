"""What ``connects serve`` keeps between runs, in the ``runtime`` table.

* The base of every link the product prints (sign-in links): ``CONNECTS_BASE_URL``
  when set, else the address the last ``connects serve`` on this database listens on,
  so ``connects login-link`` in another shell names the right port.
* The demo owner's bearer token. Tokens are stored hashed, so the demo keeps the one it
  printed (dev data only) and prints it again on every restart instead of renewing it,
  which would break the token a running server's user already has.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import Connection, select, update

from connects.config import Settings
from connects.db.schema import runtime
from connects.db.sql import insert_ignore
from connects.services.accounts import person_by_email, rotate_token, user_by_token
from connects.services.context import Context

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
BASE_URL_KEY = "base_url"
DEMO_TOKEN_KEY = "demo_token"


def _get(conn: Connection, key: str) -> str | None:
    value = conn.execute(select(runtime.c.value).where(runtime.c.key == key)).scalar_one_or_none()
    return None if value is None else str(value)


def _put(ctx: Context, key: str, value: str) -> None:
    with ctx.db.begin() as conn:
        if conn.execute(update(runtime).where(runtime.c.key == key).values(value=value)).rowcount:
            return
        if not insert_ignore(conn, runtime, {"key": key, "value": value}):  # a racing writer
            conn.execute(update(runtime).where(runtime.c.key == key).values(value=value))


def listen_url(host: str, port: int) -> str:
    """The address a browser on this machine uses for a server listening on ``host``."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name such as localhost
        return f"http://{host}:{port}"
    if address.is_unspecified:  # 0.0.0.0 or :: listen everywhere, loopback included
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}"


def serving_base_url(settings: Settings, host: str, port: int) -> str:
    """What ``connects serve`` puts in links: ``CONNECTS_BASE_URL`` or its own address."""
    return (settings.base_url or listen_url(host, port)).rstrip("/")


def record_base_url(ctx: Context, url: str) -> None:
    """``connects serve``, once its port is known free: links name this address."""
    _put(ctx, BASE_URL_KEY, url.rstrip("/"))


def base_url(ctx: Context, settings: Settings) -> str:
    """The base of links made outside the server (``connects login-link``)."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    with ctx.db.read() as conn:
        return _get(conn, BASE_URL_KEY) or DEFAULT_BASE_URL


def remember_demo_token(ctx: Context, token: str) -> None:
    """Keep the token printed when the demo was played, for the next restarts."""
    _put(ctx, DEMO_TOKEN_KEY, token)


def demo_token(ctx: Context, email: str) -> str:
    """The demo owner's token: the kept one while it still works, else a new one (kept)."""
    with ctx.db.read() as conn:
        user_id = person_by_email(conn, email)
        kept = _get(conn, DEMO_TOKEN_KEY)
        holder = user_by_token(conn, kept) if kept else None
    if user_id is None:
        raise LookupError(f"no demo owner {email}")
    if kept is not None and holder is not None and holder.id == user_id:
        return kept
    token = rotate_token(ctx, user_id)
    remember_demo_token(ctx, token)
    return token
