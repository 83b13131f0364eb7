"""The set-based monthly cycle writes the same ledger as the per-account one (R8-R10,
R27, R30)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, make_url, select, text
from sqlalchemy.exc import IntegrityError

from connects.db.postgres_cycle import batch as bulk_batch
from connects.db.postgres_cycle import may_skip_fk_checks
from connects.db.postgres_cycle.tuning import probe
from connects.db.schema import accounts, allocations, entries, events, lots
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    EndJob,
    SetNotificationSettings,
)
from connects.services import cycles
from connects.services.context import Context
from connects.services.cycles import run_cycles_bulk
from connects.services.verify import verify
from tests.conftest import PG_SKIP_REASON, PG_URL, MakeCtx, pg_schema_url
from tests.world import World

pytestmark = pytest.mark.postgres


@pytest.fixture
def second_pg_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def plain_role_url() -> Iterator[str]:
    """A schema owned by a login role that is not a superuser, and its URL."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    role = f"t_plain_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar_one():
            pytest.skip("creating a second role needs the test database's user to be a superuser")
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"CREATE SCHEMA {role} AUTHORIZATION {role}"))
    url = make_url(PG_URL).set(username=role, password=None)
    sep = "&" if url.query else "?"
    try:
        yield f"{url.render_as_string(hide_password=False)}{sep}options=-csearch_path%3D{role}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :r"),
                {"r": role},
            )
            conn.execute(text(f"DROP SCHEMA {role} CASCADE"))
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def _cast(ctx: Context) -> World:
    w = World(ctx)
    big = w.agency("olga")
    pete = w.agency("pete")
    # R45: a cycle that ends below levels it started above alerts once from the cycle
    # itself (Pete's 100 bought expire in the 14-month gap: 340 -> 240 crosses 300 and
    # 250); one that ends above them (a forfeit, then the grant) alerts nobody.
    ctx.handle(AddBillingMethod(w.actor("pete"), pete, "tok_visa"))
    ctx.handle(BuyConnects(w.actor("pete"), pete, 100, "default"))
    ctx.handle(SetNotificationSettings(w.actor("pete"), pete, {"low_balance_levels": [250, 300]}))
    w.agency("quinn", plan="agency-basic")
    w.freelancer("rita")
    w.freelancer("sam", plan="freelancer-plus")
    w.submit("olga", w.job(30, client="c1"), big)
    refunded = w.job(20, client="c2")
    w.submit("olga", refunded, big)
    ctx.handle(EndJob(w.actor("c2"), refunded, "cancelled"))  # R15: back into grants
    return w


def _key(e: Any) -> str | None:
    """The dedupe key without the random ids (refund:<proposal id>, purchase:<id>)."""
    key: str | None = e.dedupe_key
    return key.split(":")[0] if key and e.kind in ("refund", "purchase") else key


def _runs(ents: list[Any]) -> list[Any]:
    """Entries in order; a sweep's expire entries follow lot-id order, and lot ids are
    random per database, so each run of them compares as a set with its final balance."""
    out: list[Any] = []
    run: list[Any] = []

    def flush() -> None:
        if run:
            notes = sorted((e.amount, e.note) for e in run)
            out.append(("expire", run[0].seq, run[-1].seq, run[0].at, notes, run[-1].balance_after))
            run.clear()

    for e in ents:
        if e.kind == "expire" and (not run or run[-1].at == e.at):
            run.append(e)
            continue
        flush()
        if e.kind == "expire":
            run.append(e)
            continue
        out.append((e.seq, e.at, e.kind, e.amount, e.balance_after, e.actor_kind, e.note, _key(e)))
    flush()
    return out


def _snapshot(ctx: Context) -> dict[str, Any]:
    """Every account's ledger by account name, without the random ids."""
    out: dict[str, Any] = {}
    with ctx.db.read() as conn:
        for acct in conn.execute(select(accounts).order_by(accounts.c.name)):
            lot_rows = conn.execute(
                select(lots).where(lots.c.account_id == acct.id).order_by(lots.c.issued_at)
            ).all()
            lot_key = {r.id: (r.source, r.issued_at, r.expires_at, r.amount) for r in lot_rows}
            ents = conn.execute(
                select(entries).where(entries.c.account_id == acct.id).order_by(entries.c.seq)
            ).all()
            allocs = conn.execute(
                select(allocations.c.entry_id, allocations.c.lot_id, allocations.c.amount).where(
                    allocations.c.account_id == acct.id
                )
            ).all()
            kind_of = {e.id: (e.kind, e.at) for e in ents}
            evs = conn.execute(
                select(events.c.kind, events.c.payload).where(events.c.account_id == acct.id)
            ).all()
            out[acct.name] = {
                "account": (acct.balance, acct.seq, acct.next_cycle_at),
                "entries": _runs(ents),
                "lots": sorted((*lot_key[r.id], r.remaining) for r in lot_rows),
                "allocations": sorted(
                    (kind_of[a.entry_id], lot_key[a.lot_id], a.amount) for a in allocs
                ),
                "events": sorted(
                    (
                        k,
                        json.loads(p).get("balance"),
                        json.loads(p).get("previous"),
                        json.loads(p).get("threshold"),
                        tuple(json.loads(p).get("levels", ())),
                    )
                    for k, p in evs
                ),
            }
    return out


def test_bulk_and_per_account_cycles_write_the_same_ledger(
    make_ctx: MakeCtx, pg_url: str, second_pg_url: str, clock: SimulatedClock
) -> None:
    # R8 R9 R10 R30: grants, rollover forfeits above the cap and expiry, over a
    # 14-month gap (many cycles per account, lots issued already expired).
    per_account, bulk = make_ctx(pg_url), make_ctx(second_pg_url)
    for ctx in (per_account, bulk):
        _cast(ctx)
    clock.advance(timedelta(days=70))
    for ctx in (per_account, bulk):
        cycles.run_due_cycles(ctx)
    ran_a = ran_b = 0
    # Day 95: 210 Connects in grant lots, 20 of them refunded: 30 forfeit, not 50.
    # Then a 14-month gap: many cycles per account, grant lots issued already expired.
    for days in (25, 430):
        clock.advance(timedelta(days=days))
        ran_a += cycles.run_due_cycles(per_account)
        ran_b += run_cycles_bulk(bulk)
    assert ran_a == ran_b > 0
    a, b = _snapshot(per_account), _snapshot(bulk)
    assert a.keys() == b.keys()
    for name in a:
        for part in a[name]:
            assert a[name][part] == b[name][part], (name, part)
    kinds = {e[0] if e[0] == "expire" else e[2] for acct in b.values() for e in acct["entries"]}
    assert {"grant", "rollover_forfeit", "expire"} <= kinds
    lows = [e for e in b["Pete Agency"]["events"] if e[0] == "balance_low"]
    assert lows == [("balance_low", 240, 340, 250, (300, 250))], b["Pete Agency"]["events"]
    assert verify(bulk) == []
    assert run_cycles_bulk(bulk) == 0  # nothing due twice


@pytest.fixture
def batch_roles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``session_replication_role`` as each bulk batch saw it."""
    seen: list[str] = []
    run_batch = bulk_batch.run_batch

    def watched(catalog: Any, conn: Any, *args: Any) -> Any:
        seen.append(conn.execute(text("SHOW session_replication_role")).scalar_one())
        return run_batch(catalog, conn, *args)

    monkeypatch.setattr(bulk_batch, "run_batch", watched)
    return seen


def _next_cycle(ctx: Context, clock: SimulatedClock, roles: list[str], seen: str) -> None:
    """A month on: the bulk cycle runs with ``session_replication_role`` = ``seen`` in
    every batch, the ledger verifies, and the foreign key still refuses an entry of
    an account that does not exist."""
    roles.clear()
    clock.advance(timedelta(days=31))
    assert run_cycles_bulk(ctx) > 0
    assert roles and set(roles) == {seen}
    assert verify(ctx) == []
    orphan = insert(entries).values(
        id="ent_orphan",
        account_id="acct_nobody",
        seq=1,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        kind="grant",
        amount=1,
        balance_after=1,
        actor_kind="system",
    )
    with (
        pytest.raises(IntegrityError, match="fk_entries_account_id_accounts"),
        ctx.db.begin() as conn,
    ):
        conn.execute(orphan)


def test_the_bulk_cycle_skips_foreign_key_checks_only_inside_its_own_batches(
    make_ctx: MakeCtx, pg_url: str, clock: SimulatedClock, batch_roles: list[str]
) -> None:
    # R8 R30: grants still land as ledger entries of existing accounts. Every row a
    # batch inserts names an account the batch locked: where the role may, the batch
    # turns the (then redundant) foreign-key triggers off with SET LOCAL.
    ctx = make_ctx(pg_url)
    _cast(ctx)
    with ctx.db.read() as conn:
        if not may_skip_fk_checks(conn):
            pytest.skip("the test database's user may not set session_replication_role")
    _next_cycle(ctx, clock, batch_roles, "replica")
    # The setting ended with the batch's transaction.
    with ctx.db.begin() as conn:
        assert conn.execute(text("SHOW session_replication_role")).scalar_one() == "origin"


def test_without_the_privilege_the_bulk_cycle_runs_the_checks(
    make_ctx: MakeCtx, plain_role_url: str, clock: SimulatedClock, batch_roles: list[str]
) -> None:
    # R8 R30, as a role that may not set session_replication_role, then may.
    ctx = make_ctx(plain_role_url)
    _cast(ctx)
    with ctx.db.read() as conn:
        assert not may_skip_fk_checks(conn)
        version = conn.execute(text("SHOW server_version_num")).scalar_one()
    _next_cycle(ctx, clock, batch_roles, "origin")
    if int(version) < 150000:
        return  # no per-parameter privileges before PostgreSQL 15
    role = make_url(plain_role_url).username
    admin = create_engine(PG_URL or "", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"GRANT SET ON PARAMETER session_replication_role TO {role}"))
    admin.dispose()
    with ctx.db.read() as conn:
        assert may_skip_fk_checks(conn)
    _next_cycle(ctx, clock, batch_roles, "replica")
    ctx.db.dispose()


def test_a_probe_turns_hash_and_merge_joins_off_for_its_statement_alone(
    make_ctx: MakeCtx, pg_url: str
) -> None:
    # A batch's joins to a whole table go by index (postgres_cycle.tuning.probe); the joins
    # between its own scratch tables, which have no index, keep hash joins.
    ctx = make_ctx(pg_url)
    settings = "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
    with ctx.db.begin() as conn:
        before = conn.execute(text(settings)).one()
        assert tuple(probe(conn, settings).one()) == ("off", "off")
        assert conn.execute(text(settings)).one() == before == ("on", "on")
