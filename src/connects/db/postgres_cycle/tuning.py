"""How a batch's statements run on PostgreSQL: joins to whole tables by index, and
foreign-key checks skipped where they can only succeed.

Foreign-key checks. Every row a batch inserts names an account that the batch itself
locked ``FOR UPDATE`` in the same transaction, so each foreign-key check (a lookup of
that account row per inserted entry, lot and event, a large share of the database's
work in a big cycle) can only succeed. Where the database role may set
``session_replication_role`` (a superuser, or on PostgreSQL 15+ a role given
``GRANT SET ON PARAMETER session_replication_role``), a batch sets it to ``replica``
for its own transaction (``SET LOCAL``), which skips those triggers for the batch's
statements alone. The constraints stay declared and guard every other writer;
without the privilege the checks simply run. ``replica`` skips every ordinary
trigger: a trigger an operator adds to these tables (an audit log, say) must be
``ENABLE ALWAYS`` to fire for the batches too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from connects.db.postgres_cycle.statements import run


def may_skip_fk_checks(conn: Connection) -> bool:
    """Whether this role may set ``session_replication_role`` (module docstring)."""
    version, superuser = run(
        conn,
        """
        SELECT current_setting('server_version_num')::int, rolsuper
        FROM pg_roles WHERE rolname = current_user
        """,
    ).one()
    if superuser:
        return True
    if version < 150000:  # no per-parameter privileges before PostgreSQL 15
        return False
    return bool(
        run(conn, "SELECT has_parameter_privilege('session_replication_role', 'SET')").scalar_one()
    )


def skip_fk_checks(conn: Connection) -> None:
    """Foreign-key triggers off until this transaction ends (module docstring)."""
    run(conn, "SET LOCAL session_replication_role = replica")


def probe(conn: Connection, sql: str, **params: Any) -> Any:
    """Run a statement that joins a batch's few thousand rows to a whole table by its
    key with hash and merge joins off, so each row is looked up in the table's index.
    Left to cost estimates, the planner preferred reading the whole table (a hash join
    over a sequential scan, or a merge join along the primary key from its start), so
    each batch cost more than the last as the table grew."""
    run(conn, "SET LOCAL enable_hashjoin = off")
    run(conn, "SET LOCAL enable_mergejoin = off")
    result = run(conn, sql, **params)  # on an error the transaction ends: nothing to undo
    run(conn, "SET LOCAL enable_hashjoin TO DEFAULT")
    run(conn, "SET LOCAL enable_mergejoin TO DEFAULT")
    return result
