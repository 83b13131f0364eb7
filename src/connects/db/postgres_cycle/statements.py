"""The bulk cycle's SQL: one statement per step, over a batch's scratch tables.

A batch copies its claimed accounts into ``bulk_due``, the plans they are on into
``bulk_plans`` and each distinct due cycle's dates into ``bulk_cal``; each step then
reads and writes those with ``INSERT ... SELECT`` / ``UPDATE ... FROM``. The entries,
allocations, lots and events are the ones the per-account path writes
(:mod:`connects.services.cycles`), kind for kind and note for note; a test compares
the two ledgers entry by entry.

Statements that make fresh ids are functions: an id's time part is the moment the
statement is built.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, literal_column, select, text
from sqlalchemy.engine.default import DefaultDialect

from connects.db.measures import lots_expired
from connects.db.schema import lots
from connects.domain.ids import new_id
from connects.domain.vocabulary import ActorKind, EntryKind, EventType, LotSource

EXPIRE = f"'{EntryKind.EXPIRE}'"
FORFEIT = f"'{EntryKind.ROLLOVER_FORFEIT}'"
GRANT = f"'{EntryKind.GRANT}'"
REFUND = f"'{EntryKind.REFUND}'"
GRANT_LOT = f"'{LotSource.GRANT}'"
SYSTEM = f"'{ActorKind.SYSTEM}'"


def run(conn: Connection, sql: str, *, across: bool = False, **params: Any) -> Any:
    """Execute ``sql`` with named ``:params``; ``across``: it claims due accounts from
    every shard (docs/architecture.md, "Distributing by account")."""
    statement = text(sql).execution_options(all_accounts=True) if across else text(sql)
    return conn.execute(statement, params)


def new_ids(prefix: str) -> str:
    """SQL for a fresh id per row, shaped like :func:`connects.domain.ids.new_id`:
    the prefix, 10 characters of the current millisecond, then 16 random characters
    (64 random bits in hexadecimal, a subset of the id alphabet). Time-ordered ids
    land at the right edge of the primary-key indexes, where the pages are in memory;
    random ids scatter every insert (and every foreign-key check) across the whole
    index, so the cycle slows down as the ledger grows.

    The random part comes from ``random()``, each server process's own generator,
    which PostgreSQL seeds from a strong random source when the process starts:
    ids must be unique, not secret, and the primary key refuses a repeat. It is
    cheaper than ``gen_random_uuid()`` (the operating system's strong random source,
    through OpenSSL), and a batch makes four ids per account."""
    millis = new_id("x")[2:12]  # the time part, in the id alphabet: no quoting needed
    word = "lpad(to_hex(floor(random() * 4294967296)::bigint), 8, '0')"
    return f"'{prefix}_{millis}' || {word} || {word}"


def drop(table: str) -> str:
    """Drop a scratch table an earlier round of the batch made."""
    return f"DROP TABLE IF EXISTS {table}"


# --- Claiming a batch ---------------------------------------------------------------

COUNT_DUE = """
    SELECT count(*) FROM (SELECT 1 FROM accounts WHERE next_cycle_at <= :now
                          LIMIT :enough) s
"""

CREATE_DUE = """
    CREATE TEMP TABLE bulk_due (
        id varchar(40) COLLATE "C" PRIMARY KEY, plan varchar(64), balance bigint, seq bigint,
        anchor_day int, timezone varchar(64), next_cycle_at timestamp, start_balance bigint
    ) ON COMMIT DROP
"""

# Accounts with auto top-up on are left to the per-account path: its balance-drop hook
# decides top-ups; so are accounts holding Connects, whose expiry may cut a hold (R34).
CLAIM_DUE = """
    WITH claimed AS (
        SELECT a.id, a.plan, a.balance, a.seq, a.anchor_day, a.timezone,
               a.next_cycle_at, a.balance
        FROM accounts a
        WHERE a.next_cycle_at <= :now
          AND a.held = 0
          AND NOT EXISTS (SELECT 1 FROM auto_topup_settings t
                          WHERE t.account_id = a.id AND t.enabled)
        ORDER BY a.next_cycle_at
        LIMIT :batch
        FOR UPDATE OF a SKIP LOCKED
    )
    INSERT INTO bulk_due SELECT * FROM claimed ORDER BY id
"""

CREATE_PLANS = """
    CREATE TEMP TABLE bulk_plans (id varchar(64) PRIMARY KEY, monthly int, cap int)
    ON COMMIT DROP
"""
DUE_PLANS = "SELECT DISTINCT plan FROM bulk_due"
INSERT_PLAN = "INSERT INTO bulk_plans VALUES (:id, :monthly, :cap)"

# Where the batch's accounts stand after its last round: bulk_due when rounds wrote
# back to it, else bulk_next, the one round's outcome.
SETTLED_BY_ROUNDS = "bulk_due"
SETTLED_IN_ONE = """(SELECT account_id AS id, balance_after AS balance, seq,
                            next_at AS next_cycle_at FROM bulk_next)"""


def settle(settled: str) -> str:
    """The batch's accounts take their new balance, seq and next cycle."""
    return f"""
        UPDATE accounts a SET balance = s.balance, seq = s.seq, next_cycle_at = s.next_cycle_at
        FROM {settled} s WHERE a.id = s.id
    """


# --- The expiry sweep (R10, R12) ----------------------------------------------------

# A due account's open lots past their expiry: the measure's own condition
# (db.measures.lots_expired), correlated to the batch's account ``d``.
_EXPIRED_LOTS = str(
    select(lots.c.id, lots.c.remaining, lots.c.cost_left_cents, lots.c.issued_at, lots.c.expires_at)
    .where(*lots_expired(literal_column("d.id"), literal_column(":now")))
    .compile(dialect=DefaultDialect(), compile_kwargs={"literal_binds": True})
)


def expired_lots() -> str:
    """bulk_exp: ``AccountBook.sweep_expired`` for every due account, one entry per
    expired lot in lot-id order, each with its own seq and balance after. Run as a
    probe (:func:`~connects.db.postgres_cycle.tuning.probe`): joined as a set, the
    planner read every expired open lot of the whole table through the expiry index,
    once per batch (it flattens the ``LATERAL`` into such a join while the statistics
    say most lots are expired)."""
    return f"""
        CREATE TEMP TABLE bulk_exp ON COMMIT DROP AS
        SELECT {new_ids("ent")} AS entry_id, x.*
        FROM (
            SELECT l.id AS lot_id, d.id AS account_id, l.remaining, l.cost_left_cents,
                   l.issued_at, l.expires_at,
                   d.seq + row_number() OVER w AS seq,
                   d.balance - sum(l.remaining) OVER w AS balance_after
            FROM bulk_due d
            CROSS JOIN LATERAL ({_EXPIRED_LOTS}) l
            WINDOW w AS (PARTITION BY d.id ORDER BY l.id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ) x
    """


INSERT_EXPIRE_ENTRIES = f"""
    INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                         actor_kind, note)
    SELECT entry_id, account_id, seq, :now, {EXPIRE}, -remaining, balance_after, {SYSTEM},
           'lot issued ' || to_char(issued_at, 'YYYY-MM-DD') || ' expired '
           || to_char(expires_at, 'YYYY-MM-DD')
    FROM bulk_exp ORDER BY account_id, seq
"""
INSERT_EXPIRE_ALLOCATIONS = """
    INSERT INTO allocations (account_id, entry_id, lot_id, amount, cost_cents)
    SELECT account_id, entry_id, lot_id, remaining, cost_left_cents FROM bulk_exp
"""
# An expired lot's cost goes with its last Connects (R39: the draw that empties a lot
# takes all its cost left, domain.lots.cost_share); grant lots cost 0, so a forfeit
# or a grant carries none and leaves the columns at their default.
EMPTY_EXPIRED_LOTS = """
    UPDATE lots l SET remaining = 0, cost_left_cents = 0
    FROM bulk_exp e WHERE l.account_id = e.account_id AND l.id = e.lot_id
"""

# --- A round: one cycle for every account still due (R8, R9) ------------------------

CREATE_CALENDAR = """
    CREATE TEMP TABLE bulk_cal (
        anchor_day int, timezone varchar(64), cycle_at timestamp,
        next_at timestamp, lot_expires timestamp, cycle_key varchar(20)
    ) ON COMMIT DROP
"""
DUE_CYCLES = """
    SELECT DISTINCT anchor_day, timezone, next_cycle_at FROM bulk_due
    WHERE next_cycle_at <= :now
"""
INSERT_CALENDAR = "INSERT INTO bulk_cal VALUES (:a, :tz, :c, :n, :e, :k)"


def current_round(first: bool) -> str:
    """bulk_cur: each account due in this round with its cycle's dates and plan, and
    fresh ids for its forfeit, grant and lot. The first round starts from the balance
    and seq the expiry sweep left."""
    swept = (
        """
        LEFT JOIN (SELECT account_id, count(*) AS n, sum(remaining) AS total
                   FROM bulk_exp GROUP BY account_id) x ON x.account_id = d.id
        """
        if first
        else "CROSS JOIN (SELECT 0 AS n, 0 AS total) x"
    )
    return f"""
        CREATE TEMP TABLE bulk_cur ON COMMIT DROP AS
        SELECT d.id, d.plan, d.next_cycle_at AS cycle_at, c.next_at, c.lot_expires,
               c.cycle_key, p.monthly, p.cap, d.seq + coalesce(x.n, 0) AS seq,
               d.balance - coalesce(x.total, 0) AS balance,
               {new_ids("ent")} AS forfeit_id, {new_ids("ent")} AS grant_id,
               {new_ids("lot")} AS lot_id
        FROM bulk_due d
        JOIN bulk_cal c ON c.anchor_day = d.anchor_day AND c.timezone = d.timezone
                       AND c.cycle_at = d.next_cycle_at
        JOIN bulk_plans p ON p.id = d.plan
        {swept}
        WHERE d.next_cycle_at <= :now
        ORDER BY d.id
    """


CARRY_ROUND = """
    UPDATE bulk_due d SET next_cycle_at = n.next_at, seq = n.seq, balance = n.balance_after
    FROM bulk_next n WHERE d.id = n.account_id
"""

# bulk_takes: plan-grant Connects live at the cycle start above the cap, taken
# soonest-expiring first (domain.lots.rollover_forfeit); a row per lot taken, the
# first of each account's also standing for its forfeit entry. Connects refunded into
# a grant lot are never forfeited (R9, R15: services.cycles.refunded_into_lots).
TAKES = f"""
    CREATE TEMP TABLE bulk_takes ON COMMIT DROP AS
    WITH refunded AS (
        SELECT al.account_id, al.lot_id, sum(al.amount) AS amount
        FROM entries e
        JOIN bulk_cur c ON c.id = e.account_id AND c.cap IS NOT NULL
        JOIN allocations al ON al.account_id = e.account_id AND al.entry_id = e.id
        WHERE e.kind = {REFUND}
        GROUP BY al.account_id, al.lot_id
    ), grant_lots AS (
        SELECT l.id AS lot_id, l.account_id, l.expires_at, l.issued_at, c.cap,
               c.cycle_key, c.forfeit_id, c.seq, c.balance,
               l.remaining - least(l.remaining, coalesce(r.amount, 0)) AS remaining
        FROM lots l JOIN bulk_cur c ON c.id = l.account_id
        LEFT JOIN refunded r ON r.account_id = l.account_id AND r.lot_id = l.id
        WHERE c.cap IS NOT NULL AND l.source = {GRANT_LOT} AND l.remaining > 0
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
"""
INSERT_FORFEIT_ENTRIES = f"""
    INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                         actor_kind, note, dedupe_key)
    SELECT forfeit_id, account_id, seq, :now, {FORFEIT}, -excess, balance_after,
           {SYSTEM}, 'plan grants above the rollover cap of ' || cap,
           'forfeit:' || cycle_key
    FROM bulk_takes WHERE first
"""
INSERT_FORFEIT_ALLOCATIONS = """
    INSERT INTO allocations (account_id, entry_id, lot_id, amount)
    SELECT account_id, forfeit_id, lot_id, take FROM bulk_takes
"""
TAKE_FROM_LOTS = """
    UPDATE lots l SET remaining = l.remaining - t.take
    FROM bulk_takes t WHERE l.account_id = t.account_id AND l.id = t.lot_id
"""

# bulk_next: every account of the round as the round leaves it (next cycle, seq,
# balance), with its grant where the plan has one: a new lot issued at the cycle
# start (R8, R10).
NEXT_ROUND = """
    CREATE TEMP TABLE bulk_next ON COMMIT DROP AS
    SELECT c.grant_id AS entry_id, c.lot_id, c.id AS account_id, c.plan, c.monthly,
           c.cycle_at, c.lot_expires, c.cycle_key, c.next_at,
           c.seq + (f.account_id IS NOT NULL)::int + (c.monthly > 0)::int AS seq,
           c.balance - coalesce(f.excess, 0) + c.monthly AS balance_after
    FROM bulk_cur c LEFT JOIN bulk_takes f ON f.account_id = c.id AND f.first
    ORDER BY c.id
"""
INSERT_GRANT_LOTS = f"""
    INSERT INTO lots (id, account_id, source, issued_at, expires_at, amount, remaining)
    SELECT lot_id, account_id, {GRANT_LOT}, cycle_at, lot_expires, monthly, monthly
    FROM bulk_next WHERE monthly > 0
"""
INSERT_GRANT_ENTRIES = f"""
    INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                         actor_kind, note, dedupe_key)
    SELECT entry_id, account_id, seq, :now, {GRANT}, monthly, balance_after, {SYSTEM},
           plan || ' cycle grant', 'grant:' || cycle_key
    FROM bulk_next WHERE monthly > 0
"""
INSERT_GRANT_ALLOCATIONS = """
    INSERT INTO allocations (account_id, entry_id, lot_id, amount)
    SELECT account_id, entry_id, lot_id, monthly FROM bulk_next WHERE monthly > 0
"""


# --- Balance alerts (R27, R45) -----------------------------------------------------
# ``services.balance_alerts.on_save`` for the whole batch, on each account's balance
# before the batch and after it is settled: a drop sends the alert of the levels it
# newly reached (one message per account: ``balance_empty`` at zero, else one
# ``balance_low`` naming the lowest level), a rise re-arms the levels it is above.


def balance_alerts() -> str:
    """Record the levels newly reached and write each account's one alert event."""
    empty, low = f"'{EventType.BALANCE_EMPTY}'", f"'{EventType.BALANCE_LOW}'"
    return f"""
        WITH ends AS (
            SELECT d.id, d.start_balance AS before, a.balance AS after
            FROM bulk_due d JOIN accounts a ON a.id = d.id
            WHERE a.balance < d.start_balance
        ), reached AS (
            INSERT INTO balance_alerts (account_id, level, sent_at)
            SELECT e.id, l.level, :now
            FROM ends e JOIN low_balance_levels l
              ON l.account_id = e.id AND l.level >= e.after
            UNION ALL
            SELECT e.id, 0, :now FROM ends e WHERE e.after = 0
            ON CONFLICT DO NOTHING
            RETURNING account_id, level
        ), alerts AS (
            SELECT account_id, min(level) AS lowest,
                   array_agg(level ORDER BY level DESC) AS levels
            FROM reached GROUP BY account_id
        )
        INSERT INTO events (id, account_id, kind, payload, created_at)
        SELECT {new_ids("evt")}, e.id,
               CASE WHEN x.lowest = 0 THEN {empty} ELSE {low} END,
               CASE WHEN x.lowest = 0
                 THEN json_build_object('account_id', e.id, 'balance', e.after,
                        'previous', e.before)::text
                 ELSE json_build_object('account_id', e.id, 'balance', e.after,
                        'levels', to_json(x.levels), 'previous', e.before,
                        'threshold', x.lowest)::text
               END,
               :now
        FROM alerts x JOIN ends e ON e.id = x.account_id
        ORDER BY e.id
    """


REARM_ALERTS = """
    DELETE FROM balance_alerts b
    USING bulk_due d JOIN accounts a ON a.id = d.id
    WHERE b.account_id = d.id AND a.balance > d.start_balance AND b.level < a.balance
"""
