"""Ready to distribute by account: every statement on an account-owned table is
constrained by ``account_id`` (docs/architecture.md, "Distributing by account").

A sharded PostgreSQL (Citus) places each account's rows on one shard by
``account_id``. A statement that names an account-owned table without a predicate on
that table's ``account_id`` (``accounts``: its ``id``) cannot be routed to one shard:
it runs on every shard. :func:`unscoped` finds such statements in the SQL SQLAlchemy
sends; :func:`watching` fails the test that runs one (a ``before_cursor_execute``
listener on every engine). Statements that must read across accounts (the worker's
claims of due work, ``verify``, retention) say so where they are built, with
``.execution_options(all_accounts=True)``: they are the list of what runs across
shards. The listener is on over the whole suite (tests/conftest.py;
``CONNECTS_TEST_ACCOUNT_SCOPE=0`` turns it off), and tests/e2e/test_account_scope.py
runs it over the purchase path whatever that says. A failure names each statement
with where in ``src/connects`` it was sent.

The check reads SQL text, not a parse tree: a table is scoped when one of its names
(the table or its alias) is followed by ``.account_id`` (``.id`` for ``accounts``) in
a ``WHERE`` or ``ON`` clause, or, alone in a statement, ``account_id`` appears there.
An ``INSERT ... VALUES`` names its row's account in the row; an ``INSERT ... SELECT``
is as scoped as its ``SELECT``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import Engine, event

from connects.db.schema import metadata

# A person's dashboard sessions, found by their cookie: their ``account_id`` is the
# account the dashboard shows, not an owner (kept apart with ``users``).
PERSONAL = frozenset({"web_sessions"})
# Tables whose rows belong to one account; ``accounts`` is distributed by its id.
OWNED = frozenset(
    t.name
    for t in metadata.sorted_tables
    if "account_id" in t.c and t.name != "accounts" and t.name not in PERSONAL
)
DISTRIBUTED = OWNED | {"accounts"}
_WORDS = "where on join left right inner outer cross full using set values select group order"
KEYWORDS = frozenset(f"{_WORDS} limit for returning union as natural lateral having".split(" "))
_REF = re.compile(  # an alias is never a keyword: "FROM a JOIN b" names b too
    rf"\b(from|join|update|into)\s+([a-z_][a-z0-9_]*)"
    rf"(?:\s+(?:as\s+)?(?!(?:{'|'.join(sorted(KEYWORDS))})\b)([a-z_]\w*))?"
)
_CREATE_AS = re.compile(r"^create (?:temp |temporary )?table \w+ .*?\bas \(?(?=select|with)")
_PREDICATES = re.compile(r"\b(where|on)\b(.*?)(?=\b(join|where|group|order|limit|returning)\b|$)")


def _scoped_names(sql: str) -> str:
    """The text of the statement's WHERE and ON clauses."""
    return " ".join(m.group(2) for m in _PREDICATES.finditer(sql))


def unscoped(statement: str) -> list[str]:
    """The account-owned tables ``statement`` reads or writes without their account."""
    sql = " ".join(statement.lower().split())
    sql = _CREATE_AS.sub("", sql, count=1)  # a table made from a query: the query
    if not sql.startswith(("select", "update", "delete", "insert", "with")):
        return []  # DDL, SET LOCAL, transaction control
    refs: dict[str, set[str]] = {}
    for verb, table, alias in _REF.findall(sql):
        if table not in DISTRIBUTED:
            continue
        names = refs.setdefault(table, {table})
        if alias and alias not in KEYWORDS:
            names.add(alias)
        if verb == "into":
            refs[table] = {"__insert__"}
    predicates = _scoped_names(sql)
    alone = len(refs) == 1
    found = []
    for table, names in refs.items():
        if names == {"__insert__"}:
            continue  # VALUES name the row's account; INSERT ... SELECT: the SELECT is checked
        column = "id" if table == "accounts" else "account_id"
        if any(re.search(rf"\b{re.escape(n)}\.{column}\b", predicates) for n in names):
            continue
        if alone and re.search(rf"(?<![.\w]){column}\b", predicates):
            continue
        found.append(table)
    return found


_ROOTS = (f"{os.sep}src{os.sep}connects{os.sep}", f"{os.sep}site-packages{os.sep}connects{os.sep}")
_MIGRATIONS = f"{os.sep}connects{os.sep}migrations{os.sep}"
_LIBRARIES = (f"{os.sep}sqlalchemy{os.sep}", f"{os.sep}alembic{os.sep}")


def _sender() -> str | None:
    """Where in the product (``src/connects``, migrations aside) the statement was
    sent from: its innermost three frames there, ``module.py:line`` each; None when a
    test sent it (reading whole tables to check them)."""
    frame = sys._getframe(2)
    while frame is not None and any(lib in frame.f_code.co_filename for lib in _LIBRARIES):
        frame = frame.f_back  # type: ignore[assignment]
    where: list[str] = []
    while frame is not None and len(where) < 3:
        path = frame.f_code.co_filename
        root = next((r for r in _ROOTS if r in path), None)
        if root is None or _MIGRATIONS in path:
            break
        where.append(f"{path.split(root, 1)[1]}:{frame.f_lineno}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(where) or None


# Modules whose statements are not checked yet, each with why. Empty is the goal.
NOT_YET: frozenset[str] = frozenset()


class Unscoped(NamedTuple):
    tables: list[str]
    statement: str
    sender: str


@contextmanager
def watching() -> Iterator[list[Unscoped]]:
    """Collect every statement any engine runs on an account-owned table without its
    account, with the tables (see the module's docstring). Collected, not raised: a
    background job would log an exception and go on, hiding it."""
    found: list[Unscoped] = []

    def check(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        options = context.execution_options if context is not None else {}
        if options.get("all_accounts"):
            return
        sender = _sender()
        if sender is None or sender.split(":", 1)[0] in NOT_YET:
            return
        tables = unscoped(statement)
        if tables:
            found.append(Unscoped(tables, statement, sender))

    event.listen(Engine, "before_cursor_execute", check)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", check)


def report(found: list[Unscoped]) -> str:
    """The distinct offending statements with where they were sent, for a failure
    message."""
    distinct = {(" ".join(f.statement.split()), f.sender): f.tables for f in found}
    return "\n\n".join(f"{', '.join(t)} (at {at}): {sql}" for (sql, at), t in distinct.items())
