"""SQLite writers of one process queue on a lock, not in SQLite's busy handler."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from connects.db import engine as engine_module
from connects.db.engine import Database


def _counter(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'writers.db'}")
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    return db


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT n FROM counter")).scalar_one())


def test_concurrent_writers_all_land(tmp_path: Path) -> None:
    """16 threads x 25 read-modify-write transactions: none lost, none refused."""
    db = _counter(tmp_path)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(25):
                with db.begin() as conn:
                    n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                    conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert _count(db) == 16 * 25
    db.dispose()


def test_a_rolled_back_writer_frees_the_queue(tmp_path: Path) -> None:
    db = _counter(tmp_path)
    with pytest.raises(RuntimeError), db.begin() as conn:
        conn.execute(text("UPDATE counter SET n = 99"))
        raise RuntimeError("boom")
    free: list[bool] = []

    def probe() -> None:  # another thread: the lock is reentrant for this one
        assert db._writer is not None
        got = db._writer.acquire(blocking=False)
        free.append(got)
        if got:
            db._writer.release()

    t = threading.Thread(target=probe)
    t.start()
    t.join()
    assert free == [True]
    assert _count(db) == 0
    db.dispose()


def test_a_writer_goes_on_without_the_queue_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the queue is held past the wait (a stuck thread), a writer still writes, with
    SQLite's own locking as before."""
    db = _counter(tmp_path)
    monkeypatch.setattr(engine_module, "WRITER_WAIT_SECONDS", 0.05)
    held = threading.Event()
    release = threading.Event()

    def hog() -> None:
        assert db._writer is not None
        with db._writer:  # holds the queue, not the database
            held.set()
            release.wait(10)

    t = threading.Thread(target=hog)
    t.start()
    held.wait(10)
    try:
        with db.begin() as conn:
            conn.execute(text("UPDATE counter SET n = n + 1"))
    finally:
        release.set()
        t.join()
    assert _count(db) == 1
    db.dispose()


def test_a_lookup_is_one_statement(tmp_path: Path) -> None:
    """``Database.lookup`` runs its one read with no BEGIN and ROLLBACK around it, and
    the connection it used serves a full read transaction afterwards."""
    db = _counter(tmp_path)
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split()[0].upper())

    event.listen(db.read_engine, "before_cursor_execute", note)
    with db.lookup() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 0
    assert sent == ["SELECT"]
    sent.clear()
    assert _count(db) == 0  # read(): BEGIN, SELECT
    assert sent == ["BEGIN", "SELECT"]
    event.remove(db.read_engine, "before_cursor_execute", note)
    db.dispose()
