"""Multi-host database URLs and the errors that mean "the primary is gone"
(connects.db.urls, connects.db.failover)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DisconnectionError, IntegrityError, OperationalError

from connects.config import Settings
from connects.db.failover import Retry, lost_primary
from connects.db.urls import sqlalchemy_url

MULTI = "postgresql+psycopg://u@h1:5433,h2:5434/db?target_session_attrs=read-write"


def test_a_libpq_multi_host_url_becomes_sqlalchemys_host_parameters() -> None:
    url = sqlalchemy_url(MULTI)
    assert url == (
        "postgresql+psycopg://u@/db?host=h1%3A5433&host=h2%3A5434&target_session_attrs=read-write"
    )
    args = create_engine(url).dialect.create_connect_args(create_engine(url).url)[1]
    assert (args["host"], args["port"]) == ("h1,h2", "5433,5434")
    assert args["target_session_attrs"] == "read-write" and args["dbname"] == "db"


def test_the_settings_keep_the_url_in_the_form_sqlalchemy_reads() -> None:
    assert Settings(database_url=MULTI).database_url == sqlalchemy_url(MULTI)
    secret = "postgresql+psycopg://u:p%40ss@a,b/db"
    assert sqlalchemy_url(secret) == "postgresql+psycopg://u:p%40ss@/db?host=a&host=b"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///./connects.db",
        "postgresql+psycopg://u@h:5432/db",
        "postgresql+psycopg://u@/db?host=h1&host=h2",
    ],
)
def test_other_urls_are_left_alone(url: str) -> None:
    assert sqlalchemy_url(url) == url


def test_an_empty_host_in_the_list_is_refused() -> None:
    with pytest.raises(ValueError, match="multi-host"):
        sqlalchemy_url("postgresql+psycopg://u@h1,,h2/db")


class _PgError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _op(state: str | None) -> OperationalError:
    return OperationalError("SELECT 1", {}, _PgError(state))


@pytest.mark.parametrize("state", [None, "08006", "08001", "57P01", "57P03", "25006"])
def test_lost_primary_errors(state: str | None) -> None:
    assert lost_primary(_op(state))


def test_other_errors_are_not_a_lost_primary() -> None:
    assert not lost_primary(IntegrityError("INSERT", {}, _PgError("23505")))
    assert not lost_primary(_op("40P01"))  # a deadlock is no failover
    assert not lost_primary(ValueError("no"))
    assert lost_primary(DisconnectionError("gone"))


def test_retry_runs_again_only_while_time_is_left_and_only_for_a_lost_primary() -> None:
    slept: list[float] = []
    retry = Retry(0.5, sleep=slept.append)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _op(None)
        return "ok"

    assert retry.run(flaky) == "ok" and slept == [0.05, 0.1]
    with pytest.raises(IntegrityError):
        Retry(5, sleep=slept.append).run(
            lambda: (_ for _ in ()).throw(IntegrityError("x", {}, _PgError("23505")))
        )
    never = Retry(0, sleep=slept.append)
    assert not never.again(_op(None))
