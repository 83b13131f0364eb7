"""Database URLs as operators write them, in the form SQLAlchemy reads.

libpq lets one connection string name several servers, tried in turn
(``postgresql://u@h1:5433,h2:5434/db?target_session_attrs=read-write``): with
``target_session_attrs=read-write`` a new connection goes to whichever of them is the
primary now. SQLAlchemy's URL parser reads one host and one port, so such a URL is
rewritten into the form its PostgreSQL dialects document for several hosts,
``postgresql+psycopg://u@/db?host=h1:5433&host=h2:5434&...``, which psycopg receives
as libpq's ``host=h1,h2 port=5433,5434``. Every other URL is returned unchanged.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def sqlalchemy_url(url: str) -> str:
    """``url`` with a libpq multi-host list moved into ``host=`` query parameters."""
    if not url.startswith("postgresql"):
        return url
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return url
    named = [h.strip() for h in hosts.split(",")]
    if any(not h or h.startswith("[") for h in named):
        raise ValueError("a multi-host database URL names each host as host or host:port")
    query = "&".join(f"host={quote(h, safe='')}" for h in named)
    if parts.query:
        query += "&" + parts.query
    return urlunsplit((parts.scheme, userinfo + at, parts.path, query, parts.fragment))
