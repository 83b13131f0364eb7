"""The check the suite runs over every test (tests/account_scope.py; off with
CONNECTS_TEST_ACCOUNT_SCOPE=0): statements on account-owned tables must name the
account, so a sharded PostgreSQL routes them to one shard."""

from __future__ import annotations

import pytest

from tests.account_scope import OWNED, unscoped


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT entries.id FROM entries WHERE entries.account_id = %(a)s AND entries.seq < 5",
        "UPDATE purchases SET status=? WHERE purchases.account_id = ? AND purchases.id = ?",
        "SELECT * FROM accounts WHERE accounts.id = %(a)s FOR UPDATE",
        "SELECT p.id FROM purchases p JOIN billing_methods b ON b.account_id = p.account_id "
        "AND b.id = p.billing_method_id WHERE p.account_id = %(a)s",
        "INSERT INTO entries (id, account_id, seq) VALUES (%(id)s, %(a)s, 1)",
        "DELETE FROM lots WHERE account_id = ?",
        "CREATE TEMP TABLE bulk_due (id varchar(40)) ON COMMIT DROP",
        "CREATE TEMP TABLE t ON COMMIT DROP AS SELECT l.id FROM lots l JOIN bulk_due d"
        " ON d.id = l.account_id",
        "SELECT jobs.id FROM jobs WHERE jobs.id = ?",  # not account-owned
    ],
)
def test_statements_that_name_their_account_pass(sql: str) -> None:
    assert unscoped(sql) == []


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("UPDATE purchases SET status=? WHERE purchases.id = ?", ["purchases"]),
        ("SELECT purchases.account_id FROM purchases WHERE purchases.id = ?", ["purchases"]),
        (
            "SELECT p.id FROM purchases p JOIN billing_methods b ON b.id = p.billing_method_id "
            "WHERE p.account_id = ?",
            ["billing_methods"],
        ),
        ("SELECT count(*) FROM events", ["events"]),
        (
            "SELECT e.id FROM entries e JOIN allocations ON allocations.entry_id = e.id"
            " WHERE e.account_id = ?",
            ["allocations"],
        ),
        ("CREATE TEMP TABLE t ON COMMIT DROP AS SELECT lots.id FROM lots", ["lots"]),
        ("SELECT accounts.id FROM accounts WHERE accounts.owner_id = ?", ["accounts"]),
        (
            "INSERT INTO balance_alerts (account_id, level) SELECT l.account_id, l.level "
            "FROM low_balance_levels l WHERE l.level > 0",
            ["low_balance_levels"],
        ),
    ],
)
def test_statements_that_would_run_on_every_shard_are_found(sql: str, tables: list[str]) -> None:
    assert unscoped(sql) == tables


def test_the_account_owned_tables_come_from_the_schema() -> None:
    assert {"entries", "lots", "purchases", "topups", "idempotency_keys"} - OWNED == {
        "idempotency_keys"
    }  # keyed by the caller, not the account
    assert {"entries", "lots", "purchases", "topups", "billing_methods"} <= OWNED
    assert "web_sessions" not in OWNED  # a person's, found by cookie; it names an account
