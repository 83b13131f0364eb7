"""The monthly cycle for many accounts at once, as set-based SQL (PostgreSQL).

:func:`run_cycles_bulk` does what :func:`connects.services.cycles.catch_up` does for
every account whose cycle day has come: sweep expired lots, then for each due cycle
forfeit plan grants above the rollover cap (R9), grant the plan's Connects (R8) and
move ``next_cycle_at`` on. It writes the same entries (kind, amount, seq,
balance_after, note, dedupe key), allocations, lots and threshold events, but with a
few ``INSERT ... SELECT`` / ``UPDATE ... FROM`` statements per batch of accounts
instead of a transaction per account.

Accounts are locked with ``FOR UPDATE SKIP LOCKED``, so a per-account runner or a
second bulk runner never works on the same account at once. Calendar arithmetic
(cycle days clamped to the month, time zones, Feb 29) stays in Python, in
:mod:`connects.domain.calendar`: it is computed once per distinct
(anchor day, time zone, cycle start), a handful per batch, and joined in.

Accounts with auto top-up on are left to the per-account path, whose balance-drop
hook decides top-ups; so are all accounts on SQLite.

Foreign-key checks. Every row a batch inserts names an account that the batch itself
locked ``FOR UPDATE`` in the same transaction, so each foreign-key check (a lookup
of that account row per inserted entry, lot and event, a quarter of the database's
time at a million accounts) can only succeed. Where the database role may set
``session_replication_role`` (a superuser, or on PostgreSQL 15+ a role given
``GRANT SET ON PARAMETER session_replication_role``), a batch sets it to ``replica``
for its own transaction (``SET LOCAL``), which skips those triggers for the batch's
statements alone. The constraints stay declared and guard every other writer;
without the privilege the checks simply run. ``replica`` skips every ordinary
trigger: a trigger an operator adds to these tables (an audit log, say) must be
``ENABLE ALWAYS`` to fire for the batches too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from connects.domain.calendar import cycle_after, cycle_key, lot_expiry, zone
from connects.domain.ids import new_id
from connects.services import cycles
from connects.services.context import Context


def _new_id(prefix: str) -> str:
    """SQL for a fresh id per row, shaped like :func:`connects.domain.ids.new_id`:
    the prefix, 10 characters of the current millisecond, then 16 random characters
    (64 random bits in hexadecimal, a subset of the id alphabet). Time-ordered ids
    land at the right edge of the primary-key indexes, where the pages are in memory;
    random ids scatter every insert (and every foreign-key check) across the whole
    index, so the cycle slows down as the ledger grows.

    The random part comes from ``random()``, each server process's own generator,
    which PostgreSQL seeds from a strong random source when the process starts:
    ids must be unique, not secret, and the primary key refuses a repeat. It is
    0.4 us a row, where ``gen_random_uuid()`` (the operating system's strong random
    source, through OpenSSL) took 1.7 us, and a batch makes four ids per account."""
    millis = new_id("x")[2:12]  # the time part, in the id alphabet: no quoting needed
    word = "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0')"
    return f"'{prefix}_{millis}' || {word} || {word}"


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run_cycles_bulk(ctx: Context, batch: int = 5_000, workers: int = 2) -> int:
    """Apply every due cycle, set-based; returns how many cycles ran. On SQLite this
    is :func:`cycles.run_due_cycles`.

    ``workers`` connections drain the due accounts side by side, each a batch of
    ``batch`` accounts per transaction; ``SKIP LOCKED`` hands each batch to one of them
    (and keeps other processes running this job off it). The work is CPU-bound inside
    PostgreSQL, so a second connection uses a second core. Accounts the bulk path leaves
    (auto top-up on) are then caught up one by one."""
    if ctx.db.dialect != "postgresql":
        return cycles.run_due_cycles(ctx)
    with ctx.db.read() as conn:  # most ticks find nothing due: no temp tables, no threads
        due = _exec(
            conn,
            """
            SELECT count(*) FROM (SELECT 1 FROM accounts WHERE next_cycle_at <= :now
                                  LIMIT :enough) s
            """,
            now=_naive(ctx.now()),
            enough=batch + 1,
        ).scalar_one()
        skip_fk = may_skip_fk_checks(conn) if due else False
    if not due:
        ran = 0
    elif workers <= 1 or due <= batch:
        ran = _drain(ctx, batch, skip_fk)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="cycles") as pool:
            drains = [pool.submit(_drain, ctx, batch, skip_fk) for _ in range(workers)]
            ran = sum(drain.result() for drain in drains)
    return ran + cycles.run_due_cycles(ctx)


def may_skip_fk_checks(conn: Connection) -> bool:
    """Whether this role may set ``session_replication_role`` (module docstring)."""
    version, superuser = _exec(
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
        _exec(
            conn, "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        ).scalar_one()
    )


def _drain(ctx: Context, batch: int, skip_fk: bool) -> int:
    """Batches until fewer than ``batch`` due accounts were free to take."""
    total = 0
    while True:
        with ctx.db.begin() as conn:
            if skip_fk:  # the batch's own accounts, locked by it: see the module docstring
                _exec(conn, "SET LOCAL session_replication_role = replica")
            took, ran = _batch(ctx, conn, _naive(ctx.now()), batch)
        total += ran
        if took < batch:
            return total


def _exec(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params)


def _probe(conn: Connection, sql: str, **params: Any) -> Any:
    """A statement that joins a batch's few thousand rows to a whole table by its key,
    run with hash and merge joins off, so each row is looked up in the table's index.
    Left to cost estimates, the planner preferred reading the whole table (a hash join
    over a sequential scan, or a merge join along the primary key from its start), so
    each batch cost more than the last as the table grew: at 200,000 accounts the
    sweep's lot update took 140 ms a batch that way and about 50 ms by the index."""
    _exec(conn, "SET LOCAL enable_hashjoin = off")
    _exec(conn, "SET LOCAL enable_mergejoin = off")
    result = _exec(conn, sql, **params)  # on an error the transaction ends: nothing to undo
    _exec(conn, "SET LOCAL enable_hashjoin TO DEFAULT")
    _exec(conn, "SET LOCAL enable_mergejoin TO DEFAULT")
    return result


def _batch(ctx: Context, conn: Connection, now: datetime, batch: int) -> tuple[int, int]:
    _exec(
        conn,
        """
        CREATE TEMP TABLE bulk_due (
            id varchar(40) COLLATE "C" PRIMARY KEY, plan varchar(64), balance bigint, seq bigint,
            anchor_day int, timezone varchar(64), next_cycle_at timestamp, threshold int
        ) ON COMMIT DROP
        """,
    )
    took = _exec(
        conn,
        """
        WITH claimed AS (
            SELECT a.id, a.plan, a.balance, a.seq, a.anchor_day, a.timezone,
                   a.next_cycle_at, a.low_balance_threshold
            FROM accounts a
            WHERE a.next_cycle_at <= :now
              AND NOT EXISTS (SELECT 1 FROM auto_topup_settings t
                              WHERE t.account_id = a.id AND t.enabled)
            ORDER BY a.next_cycle_at
            LIMIT :batch
            FOR UPDATE OF a SKIP LOCKED
        )
        INSERT INTO bulk_due SELECT * FROM claimed ORDER BY id
        """,
        now=now,
        batch=batch,
    ).rowcount
    if not took:
        return 0, 0
    _exec(conn, "ANALYZE bulk_due")
    _plans(ctx, conn)
    _sweep(conn, now)
    ran, more = _round(conn, now, first=True)
    if ran != took:  # the sweep's balance and seq are added in round one
        raise RuntimeError(f"{took} accounts claimed as due, {ran} had a cycle to run")
    if more:  # some accounts are more than a cycle behind: bulk_due carries them on
        while n := _round(conn, now, first=False)[0]:
            ran += n
        settled = "bulk_due"
    else:  # one cycle each, the common case: bulk_next holds every account's new state
        settled = """(SELECT account_id AS id, balance_after AS balance, seq,
                             next_at AS next_cycle_at FROM bulk_next)"""
    _probe(
        conn,
        f"""
        UPDATE accounts a SET balance = s.balance, seq = s.seq, next_cycle_at = s.next_cycle_at
        FROM {settled} s WHERE a.id = s.id
        """,
    )
    return took, ran


def _plans(ctx: Context, conn: Connection) -> None:
    _exec(
        conn,
        """
        CREATE TEMP TABLE bulk_plans (
            id varchar(64) PRIMARY KEY, monthly int, cap int
        ) ON COMMIT DROP
        """,
    )
    used = [r[0] for r in _exec(conn, "SELECT DISTINCT plan FROM bulk_due")]
    rows = []
    for plan_id in used:
        plan = ctx.catalog.get(plan_id)
        rows.append({"id": plan_id, "monthly": plan.monthly_connects, "cap": plan.rollover_cap})
    if rows:
        conn.execute(text("INSERT INTO bulk_plans VALUES (:id, :monthly, :cap)"), rows)


def _sweep(conn: Connection, now: datetime) -> None:
    """``AccountBook.sweep_expired`` for every due account: one entry per expired lot,
    in lot-id order, each with its own seq and balance after. The first round adds
    what it took to the accounts' balance and seq.

    The lots are looked up account by account (the open lots' index on account and
    expiry, :func:`_probe`): joined as a set, the planner read every expired open lot
    of the whole table through the expiry index, once per batch (it flattens the
    ``LATERAL`` into such a join while the statistics say most lots are expired)."""
    _probe(
        conn,
        f"""
        CREATE TEMP TABLE bulk_exp ON COMMIT DROP AS
        SELECT {_new_id("ent")} AS entry_id, x.*
        FROM (
            SELECT l.id AS lot_id, d.id AS account_id, l.remaining, l.issued_at,
                   l.expires_at,
                   d.seq + row_number() OVER w AS seq,
                   d.balance - sum(l.remaining) OVER w AS balance_after
            FROM bulk_due d
            CROSS JOIN LATERAL (
                SELECT l.id, l.remaining, l.issued_at, l.expires_at FROM lots l
                WHERE l.account_id = d.id AND l.remaining > 0 AND l.expires_at <= :now
            ) l
            WINDOW w AS (PARTITION BY d.id ORDER BY l.id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ) x
        """,
        now=now,
    )
    # Row counts for the planner, which joins this to the batch's accounts in round one
    # (without them it guessed a few rows and aggregated them again for every account).
    _exec(conn, "ANALYZE bulk_exp")
    _exec(
        conn,
        """
        INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                             actor_kind, note)
        SELECT entry_id, account_id, seq, :now, 'expire', -remaining, balance_after, 'system',
               'lot issued ' || to_char(issued_at, 'YYYY-MM-DD') || ' expired '
               || to_char(expires_at, 'YYYY-MM-DD')
        FROM bulk_exp ORDER BY account_id, seq
        """,
        now=now,
    )
    _exec(
        conn,
        """
        INSERT INTO allocations (account_id, entry_id, lot_id, amount)
        SELECT account_id, entry_id, lot_id, remaining FROM bulk_exp
        """,
    )
    _probe(conn, "UPDATE lots l SET remaining = 0 FROM bulk_exp e WHERE l.id = e.lot_id")
    _events(conn, now, "SELECT account_id, -remaining AS amount, balance_after FROM bulk_exp")


def _calendar(conn: Connection, now: datetime) -> bool:
    """Next cycle start and grant expiry for each distinct due cycle, from the domain;
    whether any next cycle is due too (an account more than a cycle behind)."""
    _exec(conn, "DROP TABLE IF EXISTS bulk_cal")
    _exec(
        conn,
        """
        CREATE TEMP TABLE bulk_cal (
            anchor_day int, timezone varchar(64), cycle_at timestamp,
            next_at timestamp, lot_expires timestamp, cycle_key varchar(20)
        ) ON COMMIT DROP
        """,
    )
    rows = []
    for anchor, tz, cycle_at in _exec(
        conn,
        """
        SELECT DISTINCT anchor_day, timezone, next_cycle_at FROM bulk_due
        WHERE next_cycle_at <= :now
        """,
        now=now,
    ):
        at = _aware(cycle_at)
        rows.append(
            {
                "a": anchor,
                "tz": tz,
                "c": cycle_at,
                "n": _naive(cycle_after(anchor, at, zone(tz))),
                "e": _naive(lot_expiry(at)),
                "k": cycle_key(anchor, at, zone(tz)),
            }
        )
    if rows:
        conn.execute(text("INSERT INTO bulk_cal VALUES (:a, :tz, :c, :n, :e, :k)"), rows)
    return any(row["n"] <= now for row in rows)


def _round(conn: Connection, now: datetime, first: bool) -> tuple[int, bool]:
    """One cycle for every account still due: rollover forfeit, grant, next date. The
    first round (every claimed account is due) starts from the balance and seq the
    expiry sweep left. Returns how many accounts had a cycle, and whether another
    round follows; from then on each round's outcome is written back to bulk_due."""
    more = _calendar(conn, now)
    _exec(conn, "DROP TABLE IF EXISTS bulk_cur")
    swept = (
        """
        LEFT JOIN (SELECT account_id, count(*) AS n, sum(remaining) AS total
                   FROM bulk_exp GROUP BY account_id) x ON x.account_id = d.id
        """
        if first
        else "CROSS JOIN (SELECT 0 AS n, 0 AS total) x"
    )
    count = _exec(
        conn,
        f"""
        CREATE TEMP TABLE bulk_cur ON COMMIT DROP AS
        SELECT d.id, d.plan, d.next_cycle_at AS cycle_at, c.next_at, c.lot_expires,
               c.cycle_key, p.monthly, p.cap, d.seq + coalesce(x.n, 0) AS seq,
               d.balance - coalesce(x.total, 0) AS balance,
               {_new_id("ent")} AS forfeit_id, {_new_id("ent")} AS grant_id,
               {_new_id("lot")} AS lot_id
        FROM bulk_due d
        JOIN bulk_cal c ON c.anchor_day = d.anchor_day AND c.timezone = d.timezone
                       AND c.cycle_at = d.next_cycle_at
        JOIN bulk_plans p ON p.id = d.plan
        {swept}
        WHERE d.next_cycle_at <= :now
        ORDER BY d.id
        """,
        now=now,
    ).rowcount
    if not count:
        return 0, False
    _forfeit(conn, now)
    _grant(conn, now)
    if more or not first:
        _exec(
            conn,
            """
            UPDATE bulk_due d
            SET next_cycle_at = n.next_at, seq = n.seq, balance = n.balance_after
            FROM bulk_next n WHERE d.id = n.account_id
            """,
        )
    return int(count), more


def _forfeit(conn: Connection, now: datetime) -> None:
    """Plan-grant Connects live at the cycle start above the cap, taken soonest-expiring
    first (``domain.lots.rollover_forfeit``). bulk_takes has a row per lot taken; the
    first of each account's also stands for its forfeit entry."""
    _exec(conn, "DROP TABLE IF EXISTS bulk_takes")
    _exec(
        conn,
        """
        CREATE TEMP TABLE bulk_takes ON COMMIT DROP AS
        WITH refunded AS (
            -- Connects refunded into a grant lot are never forfeited (R9, R15).
            SELECT al.lot_id, sum(al.amount) AS amount
            FROM entries e
            JOIN bulk_cur c ON c.id = e.account_id AND c.cap IS NOT NULL
            JOIN allocations al ON al.entry_id = e.id
            WHERE e.kind = 'refund'
            GROUP BY al.lot_id
        ), grant_lots AS (
            SELECT l.id AS lot_id, l.account_id, l.expires_at, l.issued_at, c.cap,
                   c.cycle_key, c.forfeit_id, c.seq, c.balance,
                   l.remaining - least(l.remaining, coalesce(r.amount, 0)) AS remaining
            FROM lots l JOIN bulk_cur c ON c.id = l.account_id
            LEFT JOIN refunded r ON r.lot_id = l.id
            WHERE c.cap IS NOT NULL AND l.source = 'grant' AND l.remaining > 0
              AND l.expires_at > c.cycle_at
        ), live AS (
            SELECT lot_id, account_id, remaining, cap, cycle_key, forfeit_id, seq, balance,
                   sum(remaining) OVER (PARTITION BY account_id) - cap AS excess,
                   row_number() OVER w AS nth,
                   coalesce(sum(remaining) OVER (
                       w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS taken_before
            FROM grant_lots WHERE remaining > 0
            WINDOW w AS (PARTITION BY account_id ORDER BY expires_at, issued_at, lot_id)
        )
        SELECT lot_id, account_id, cap, cycle_key, excess, forfeit_id, nth = 1 AS first,
               seq + 1 AS seq, balance - excess AS balance_after,
               least(remaining, excess - taken_before) AS take
        FROM live WHERE excess > 0 AND excess - taken_before > 0
        ORDER BY account_id, nth
        """,
    )
    _exec(
        conn,
        """
        INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                             actor_kind, note, dedupe_key)
        SELECT forfeit_id, account_id, seq, :now, 'rollover_forfeit', -excess, balance_after,
               'system', 'plan grants above the rollover cap of ' || cap,
               'forfeit:' || cycle_key
        FROM bulk_takes WHERE first
        """,
        now=now,
    )
    _exec(
        conn,
        """
        INSERT INTO allocations (account_id, entry_id, lot_id, amount)
        SELECT account_id, forfeit_id, lot_id, take FROM bulk_takes
        """,
    )
    _probe(
        conn,
        """
        UPDATE lots l SET remaining = l.remaining - t.take
        FROM bulk_takes t WHERE l.id = t.lot_id
        """,
    )
    _events(
        conn,
        now,
        "SELECT account_id, -excess AS amount, balance_after FROM bulk_takes WHERE first",
    )


def _grant(conn: Connection, now: datetime) -> None:
    """The plan's Connects as a new lot issued at the cycle start (R8, R10). bulk_next
    holds every account of the round as the round leaves it (next cycle, seq, balance),
    with its grant where the plan has one."""
    _exec(conn, "DROP TABLE IF EXISTS bulk_next")
    _exec(
        conn,
        """
        CREATE TEMP TABLE bulk_next ON COMMIT DROP AS
        SELECT c.grant_id AS entry_id, c.lot_id, c.id AS account_id, c.plan, c.monthly,
               c.cycle_at, c.lot_expires, c.cycle_key, c.next_at,
               c.seq + (f.account_id IS NOT NULL)::int + (c.monthly > 0)::int AS seq,
               c.balance - coalesce(f.excess, 0) + c.monthly AS balance_after
        FROM bulk_cur c LEFT JOIN bulk_takes f ON f.account_id = c.id AND f.first
        ORDER BY c.id
        """,
    )
    _exec(
        conn,
        """
        INSERT INTO lots (id, account_id, source, issued_at, expires_at, amount, remaining)
        SELECT lot_id, account_id, 'grant', cycle_at, lot_expires, monthly, monthly
        FROM bulk_next WHERE monthly > 0
        """,
    )
    _exec(
        conn,
        """
        INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                             actor_kind, note, dedupe_key)
        SELECT entry_id, account_id, seq, :now, 'grant', monthly, balance_after, 'system',
               plan || ' cycle grant', 'grant:' || cycle_key
        FROM bulk_next WHERE monthly > 0
        """,
        now=now,
    )
    _exec(
        conn,
        """
        INSERT INTO allocations (account_id, entry_id, lot_id, amount)
        SELECT account_id, entry_id, lot_id, monthly FROM bulk_next WHERE monthly > 0
        """,
    )


def _events(conn: Connection, now: datetime, debits: str) -> None:
    """``balance_empty`` / ``balance_low`` for the ``debits`` (account_id, amount,
    balance_after) that crossed the thresholds, as ``AccountBook._after_debit`` emits
    them (R27)."""
    _exec(
        conn,
        f"""
        INSERT INTO events (id, account_id, kind, payload, created_at)
        SELECT {_new_id("evt")}, b.account_id,
               CASE WHEN b.balance_after = 0 THEN 'balance_empty' ELSE 'balance_low' END,
               CASE WHEN b.balance_after = 0
                 THEN json_build_object('account_id', b.account_id,
                        'balance', b.balance_after,
                        'previous', b.balance_after - b.amount)::text
                 ELSE json_build_object('account_id', b.account_id,
                        'balance', b.balance_after,
                        'previous', b.balance_after - b.amount,
                        'threshold', d.threshold)::text
               END,
               :now
        FROM ({debits}) b JOIN bulk_due d ON d.id = b.account_id
        WHERE (b.balance_after - b.amount > 0 AND b.balance_after = 0)
           OR (b.balance_after - b.amount > d.threshold AND d.threshold >= b.balance_after
               AND b.balance_after > 0)
        """,
        now=now,
    )
