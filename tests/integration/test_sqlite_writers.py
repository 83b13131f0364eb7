"""SQLite writers queue on a lock, not in SQLite's busy handler: the threads of one
process on a lock in memory, processes on a lock of the file ``<database>-writers``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
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
        got = db._writer._threads.acquire(blocking=False)
        free.append(got)
        if got:
            db._writer._threads.release()

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
        with db._writer.turn():  # holds the queue, not the database
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

    assert db.inline_lookups  # so the API runs token lookups on its event loop
    event.listen(db.read_engine, "before_cursor_execute", note)
    with db.lookup() as conn:
        assert conn.execute(text("SELECT n FROM counter")).scalar_one() == 0
    assert sent == ["SELECT"]
    sent.clear()
    assert _count(db) == 0  # read(): BEGIN, SELECT
    assert sent == ["BEGIN", "SELECT"]
    event.remove(db.read_engine, "before_cursor_execute", note)
    db.dispose()


# Another process that holds the writers' turn, as ``connects serve --workers 2`` or a
# ``connects worker`` beside the API would. It holds the queue, not the database, so
# only the file lock can keep this process's writers waiting.
_HOLDER = textwrap.dedent(
    """
    import sys, time
    from connects.db.engine import WriterQueue
    queue = WriterQueue(sys.argv[1])
    with queue.turn():
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _hold_turn(db_path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(db_path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _end(proc: subprocess.Popen[str], *, kill: bool = False) -> int:
    if kill:
        proc.send_signal(signal.SIGKILL)
    code = proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()
    return code


def test_a_writer_waits_for_another_process_s_turn(tmp_path: Path) -> None:
    db = _counter(tmp_path)
    holder = _hold_turn(tmp_path / "writers.db", 0.5)
    started = time.monotonic()
    with db.begin() as conn:
        waited = time.monotonic() - started
        conn.execute(text("UPDATE counter SET n = n + 1"))
    assert _end(holder) == 0
    assert waited >= 0.3  # the other process had the turn for 0.5 s; SQLite was free
    assert (tmp_path / "writers.db-writers").exists()
    assert _count(db) == 1
    db.dispose()


def test_a_killed_process_does_not_keep_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel drops the file lock with its process: the next writer gets its turn
    (the file lock, not the way around it after the wait)."""
    db = _counter(tmp_path)
    monkeypatch.setattr(engine_module, "WRITER_WAIT_SECONDS", 30.0)
    holder = _hold_turn(tmp_path / "writers.db", 60)
    _end(holder, kill=True)
    assert db._writer is not None
    assert db._writer._lock_file() is True
    fd = db._writer._fd
    assert fd is not None
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
    db.dispose()


def test_a_writer_goes_on_when_another_process_keeps_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _counter(tmp_path)
    monkeypatch.setattr(engine_module, "WRITER_WAIT_SECONDS", 0.2)
    holder = _hold_turn(tmp_path / "writers.db", 60)
    try:
        with db.begin() as conn:  # SQLite's own lock is free: the write lands
            conn.execute(text("UPDATE counter SET n = n + 1"))
    finally:
        _end(holder, kill=True)
    assert _count(db) == 1
    db.dispose()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_takes_its_own_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked child shares its parent's open files, and with them a lock taken
    through one: it must open the lock file again, or it would think it held the turn
    the parent holds."""
    db = _counter(tmp_path)
    monkeypatch.setattr(engine_module, "WRITER_WAIT_SECONDS", 0.2)
    assert db._writer is not None
    with db._writer.turn():
        pid = os.fork()
        if pid == 0:  # the child: its try must fail while the parent holds the turn
            code = 0
            try:
                code = 0 if db._writer._lock_file() is False else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    db.dispose()


def test_processes_writing_side_by_side_lose_nothing(tmp_path: Path) -> None:
    """Two processes x 200 read-modify-write transactions, besides this one's."""
    db = _counter(tmp_path)
    script = textwrap.dedent(
        """
        import sys
        from sqlalchemy import text
        from connects.db.engine import Database
        db = Database(f"sqlite:///{sys.argv[1]}")
        for _ in range(200):
            with db.begin() as conn:
                n = conn.execute(text("SELECT n FROM counter")).scalar_one()
                conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        db.dispose()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "writers.db")])
        for _ in range(2)
    ]
    for _ in range(200):
        with db.begin() as conn:
            n = conn.execute(text("SELECT n FROM counter")).scalar_one()
            conn.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
    assert [p.wait(60) for p in procs] == [0, 0]
    assert _count(db) == 600
    db.dispose()


def test_a_turn_that_fails_to_start_leaves_the_queue_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _counter(tmp_path)
    queue = db._writer
    assert queue is not None

    def broken() -> bool:
        raise OSError("no locks left")

    monkeypatch.setattr(queue, "_lock_file", broken)
    with pytest.raises(OSError), queue.turn():
        pass
    monkeypatch.undo()
    assert queue._depth == 0
    with queue.turn():  # the next turn takes the file lock again
        assert queue._depth == 1
        child = _hold_turn_nowait(tmp_path / "writers.db")
        assert child.wait(10) == 1  # the file lock is held: another process can't have it
    db.dispose()


def _hold_turn_nowait(db_path: Path) -> subprocess.Popen[bytes]:
    """A process that tries the file lock once: exit 0 if it got it, 1 if not."""
    script = textwrap.dedent(
        """
        import fcntl, os, sys
        fd = os.open(sys.argv[1] + "-writers", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(1)
        """
    )
    return subprocess.Popen([sys.executable, "-c", script, str(db_path)])
