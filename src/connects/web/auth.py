"""Dashboard sign-in: one-time links printed by the CLI, and server-side sessions.

A self-hosted product has no mail server to count on, so the operator runs
``connects login-link EMAIL`` and opens the link it prints. The link is single use and
short-lived; the session it opens is a random id in an ``HttpOnly`` cookie. Both are
stored only as SHA-256 hashes, so a copy of the database signs nobody in.

Expiry is measured on the wall clock, not the ledger's clock: moving the simulated
clock a month forward (R33) must not sign everybody out **(decision)**.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, insert, select, update

from connects.db.schema import login_links, users, web_sessions
from connects.domain.errors import ConnectsError, NotFound
from connects.services.accounts import person_by_email
from connects.services.context import Context

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(days=14)
COOKIE = "connects_session"


class LinkInvalid(ConnectsError):
    """The sign-in link is unknown, used already, or expired."""

    code, status = "login_link_invalid", 400


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def wall_now() -> datetime:
    return datetime.now(UTC)


def user_id_by_email(ctx: Context, email: str) -> str:
    """The address's first holder (case-insensitive, R49), or ``not_found``."""
    with ctx.db.read() as conn:
        found = person_by_email(conn, email)
    if found is None:
        raise NotFound("no person has this email", email=email)
    return found


def create_login_link(ctx: Context, email: str, base_url: str) -> str:
    """A one-time sign-in URL for the person with ``email`` (valid 15 minutes), under
    ``base_url`` (the server's: :func:`connects.services.runtime.base_url`)."""
    user_id = user_id_by_email(ctx, email)
    token = secrets.token_urlsafe(32)
    now = wall_now()
    with ctx.db.begin() as conn:
        conn.execute(
            insert(login_links),
            {
                "token_hash": _hash(token),
                "user_id": user_id,
                "created_at": now,
                "expires_at": now + LINK_LIFETIME,
                "used_at": None,
            },
        )
    return f"{base_url.rstrip('/')}/login/{token}"


@dataclass(frozen=True, slots=True)
class NewSession:
    """What the browser gets once: the raw session id (the cookie's value)."""

    cookie_value: str
    user_id: str
    expires_at: datetime


def _open_session(conn: Connection, user_id: str, now: datetime) -> NewSession:
    raw = secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    conn.execute(
        insert(web_sessions),
        {
            "id_hash": _hash(raw),
            "user_id": user_id,
            "csrf_token": secrets.token_urlsafe(32),
            "account_id": None,
            "created_at": now,
            "expires_at": expires,
        },
    )
    return NewSession(raw, user_id, expires)


def redeem_login_link(ctx: Context, token: str) -> NewSession:
    """Use a sign-in link once and open a session; ``login_link_invalid`` otherwise."""
    now = wall_now()
    with ctx.db.begin() as conn:
        # The conditional update is the single-use guard: of two racing clicks only one
        # changes the row.
        row = conn.execute(
            select(login_links.c.user_id, login_links.c.expires_at, login_links.c.used_at).where(
                login_links.c.token_hash == _hash(token)
            )
        ).one_or_none()
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise LinkInvalid("this sign-in link is not valid any more; ask for a new one")
        used = conn.execute(
            update(login_links)
            .where(login_links.c.token_hash == _hash(token), login_links.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if not used:
            raise LinkInvalid("this sign-in link was used already; ask for a new one")
        return _open_session(conn, row.user_id, now)


def open_session_for(ctx: Context, user_id: str) -> NewSession:
    """A session for ``user_id`` without a link (the dev-mode demo sign-in)."""
    with ctx.db.begin() as conn:
        return _open_session(conn, user_id, wall_now())


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: who, their CSRF token and the account they are looking at."""

    id_hash: str
    user_id: str
    user_name: str
    user_email: str
    csrf_token: str
    account_id: str | None


def session_for_cookie(ctx: Context, cookie_value: str | None) -> WebSession | None:
    """The live session behind a cookie value, or None."""
    if not cookie_value or len(cookie_value) > 200:
        return None
    with ctx.db.read() as conn:
        row = conn.execute(
            select(
                web_sessions.c.id_hash,
                web_sessions.c.user_id,
                web_sessions.c.csrf_token,
                web_sessions.c.account_id,
                web_sessions.c.expires_at,
                users.c.name,
                users.c.email,
            )
            .join(users, users.c.id == web_sessions.c.user_id)
            .where(web_sessions.c.id_hash == _hash(cookie_value))
        ).one_or_none()
    if row is None or row.expires_at <= wall_now():
        return None
    return WebSession(row.id_hash, row.user_id, row.name, row.email, row.csrf_token, row.account_id)


def csrf_ok(session: WebSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf_token.encode(), str(given).encode())


def set_account(ctx: Context, session: WebSession, account_id: str) -> None:
    """Remember which account (pool) this browser is looking at."""
    with ctx.db.begin() as conn:
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.id_hash == session.id_hash)
            .values(account_id=account_id)
        )


def end_session(ctx: Context, session: WebSession) -> None:
    """Sign out: the session row is deleted, so the cookie is worthless everywhere."""
    now = wall_now()
    with ctx.db.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == session.id_hash))
        # Housekeeping while we are here: drop what has expired.
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
        conn.execute(delete(login_links).where(login_links.c.expires_at <= now))
