"""The platform engine on SQLite: writers of one process take turns on a lock (no sleeping
busy handler), and every way a transaction ends gives the turn back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import Engine, text

from backend.core.db import create_app_engine


def _engine(tmp_path: Path) -> Engine:
    engine = create_app_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    return engine


def test_a_second_writer_waits_for_the_first_to_commit_then_writes(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    first_wrote = threading.Event()
    second_done: list[float] = []

    def second() -> None:
        first_wrote.wait()
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES ('second')"))
        second_done.append(time.monotonic())

    thread = threading.Thread(target=second)
    thread.start()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES ('first')"))
        first_wrote.set()
        time.sleep(0.3)
        committed_at = time.monotonic()
    thread.join(timeout=10)
    assert second_done and second_done[0] >= committed_at
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM t ORDER BY id")).scalars().all() == [
            "first",
            "second",
        ]
    engine.dispose()


def test_a_rolled_back_or_abandoned_write_gives_the_turn_back(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    conn = engine.connect()
    conn.execute(text("INSERT INTO t (v) VALUES ('rolled back')"))
    conn.rollback()
    conn.execute(text("INSERT INTO t (v) VALUES ('abandoned')"))
    conn.close()  # returned to the pool mid-transaction: reset, the turn is released

    started = time.monotonic()
    with engine.begin() as other:
        other.execute(text("INSERT INTO t (v) VALUES ('next')"))
    assert time.monotonic() - started < 2  # not the 10 s wait for a turn never given back
    with engine.connect() as check:
        assert check.execute(text("SELECT v FROM t")).scalars().all() == ["next"]
    engine.dispose()


def test_a_writer_waits_for_its_turn_no_longer_than_the_lock_timeout(tmp_path: Path) -> None:
    """The turn's wait follows `NLSQL_PLATFORM_LOCK_TIMEOUT_SECONDS` (it was a fixed 10 s, so a
    writer with a 0.2 s lock timeout waited for the first writer's commit and succeeded)."""
    from sqlalchemy.exc import OperationalError

    engine = create_app_engine(f"sqlite:///{tmp_path / 'short.db'}", lock_timeout_seconds=0.2)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    first_wrote, second_finished = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def second() -> None:
        first_wrote.wait()
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (v) VALUES ('second')"))
            outcome.append(None)
        except OperationalError as exc:
            outcome.append(exc)
        second_finished.set()

    thread = threading.Thread(target=second)
    thread.start()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (v) VALUES ('first')"))
        first_wrote.set()
        # The first writer holds its turn until the second has given up (or, before the
        # fix, would hold it for 1.5 s, less than the old fixed 10 s wait).
        second_finished.wait(timeout=1.5)
    thread.join(timeout=15)
    assert len(outcome) == 1
    assert isinstance(outcome[0], OperationalError)
    assert "locked" in str(outcome[0])
    engine.dispose()
