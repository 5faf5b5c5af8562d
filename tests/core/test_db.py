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
