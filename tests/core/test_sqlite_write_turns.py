"""Writers of the embedded database in several processes take turns on its lock file
(`<database>-writeturn`): a writer that finds the turn taken waits in the kernel for it,
bounded by the engine's lock timeout.

* Two writer processes, several threads each, writing at once: nothing is lost, no write
  fails, and a counter both update ends equal to the rows written.
* A writer that gave up waiting (its lock timeout passed, and SQLite's busy timeout after it)
  leaves nothing held: the turn is free again once its holder lets go.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from backend.core.db import create_app_engine

PROCESSES = 2
THREADS = 4
WRITES_PER_THREAD = 60

_WRITER = """
import json, sys, threading
from sqlalchemy import text
from backend.core.db import create_app_engine

url, name, threads, writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
engine = create_app_engine(url)
failures = []

def write(thread):
    for i in range(writes):
        try:
            with engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO written (writer, n) VALUES (:w, :n)"),
                    {"w": f"{name}-{thread}", "n": i},
                )
                conn.execute(text("UPDATE counter SET n = n + 1"))
        except Exception as exc:
            failures.append(repr(exc))

workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
engine.dispose()
print(json.dumps(failures))
"""


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = create_app_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE written (writer TEXT, n INTEGER)"))
            conn.execute(text("CREATE TABLE counter (n INTEGER)"))
            conn.execute(text("INSERT INTO counter VALUES (0)"))
        repo = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        writers = [
            subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
                [
                    sys.executable,
                    "-c",
                    _WRITER,
                    url,
                    f"p{index}",
                    str(THREADS),
                    str(WRITES_PER_THREAD),
                ],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for index in range(PROCESSES)
        ]
        outputs = [writer.communicate(timeout=120)[0] for writer in writers]
        assert [writer.returncode for writer in writers] == [0] * PROCESSES, outputs
        assert [json.loads(out.strip().splitlines()[-1]) for out in outputs] == [[]] * PROCESSES
        expected = PROCESSES * THREADS * WRITES_PER_THREAD
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT writer, n FROM written")).all()
            counter = conn.execute(text("SELECT n FROM counter")).scalar_one()
        assert len(rows) == expected
        assert len(set(rows)) == expected
        assert counter == expected
    finally:
        engine.dispose()


def test_a_writer_that_gave_up_waiting_leaves_the_turn_free(tmp_path: Path) -> None:
    """Two engines on one file stand for two processes (their lock file descriptors exclude
    each other as those of two processes do)."""
    database = tmp_path / "turns.db"
    url = f"sqlite:///{database}"
    holder = create_app_engine(url, lock_timeout_seconds=30.0)
    waiter = create_app_engine(url, lock_timeout_seconds=0.3)
    try:
        with holder.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        outcome: dict[str, Any] = {}

        def give_up() -> None:
            try:
                with waiter.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (2)"))
                outcome["written"] = True
            except OperationalError as exc:
                outcome["error"] = str(exc)

        with holder.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            thread = threading.Thread(target=give_up)
            thread.start()
            thread.join(30)
            assert not thread.is_alive()
        assert "database is locked" in outcome.get("error", ""), outcome

        # The holder let go: the turn is free for anyone (the waiter's helper, which may get it
        # after its writer gave up, lets go of it at once).
        deadline = time.monotonic() + 10
        fd = os.open(database.with_name("turns.db-writeturn"), os.O_RDWR)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        pytest.fail("the turn stayed taken after its holder let go")
                    time.sleep(0.01)
        finally:
            os.close(fd)
        with waiter.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (3)"))
        with holder.connect() as conn:
            assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 3]
    finally:
        holder.dispose()
        waiter.dispose()
