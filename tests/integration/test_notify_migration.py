"""Migration 0003 (notifications) goes up and down on SQLite and PostgreSQL (R29)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from connects.db.migrate import alembic_config, current_heads, downgrade, upgrade
from connects.db.schema import metadata

NEW_TABLES = {"channels", "notification_settings", "deliveries", "delivery_attempts"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url"))


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_schema_and_downgrade_removes_it(url: str) -> None:
    # R29
    upgrade(url)
    assert current_heads(url) == {
        ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    }
    assert _tables(url) >= NEW_TABLES
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []
    downgrade(url, "0002")
    assert current_heads(url) == {"0002"}
    assert not NEW_TABLES & _tables(url)
    upgrade(url)
    assert _tables(url) >= NEW_TABLES
