"""The query watchdog: one thread for every query's deadline, no thread started per query."""

from __future__ import annotations

import threading
from pathlib import Path

from backend.connections.target import read_only_connection
from backend.connections.watchdog import THREAD_NAME, WATCHDOG, Watchdog
from backend.core.config import Settings
from tests.connections.conftest import build_sqlite, connection_for

WAIT_SECONDS = 30.0


def _watchdog_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_queries_share_one_watchdog_thread_and_start_none_of_their_own(
    plain_settings: Settings, db_dir: Path
) -> None:
    connection = connection_for(plain_settings, "sqlite", path=build_sqlite(db_dir / "w.sqlite"))
    for _ in range(20):
        with read_only_connection(connection, settings=plain_settings, timeout_seconds=30) as (
            conn,
            _dialect,
        ):
            # While a query runs, its deadline waits in the one shared watchdog: no timer
            # thread of its own.
            assert conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one() > 0
            assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
            assert len(_watchdog_threads()) == 1
            assert WATCHDOG.pending() >= 1
    assert len(_watchdog_threads()) == 1


def test_an_alarm_fires_at_its_deadline_and_a_cancelled_one_never_does() -> None:
    watchdog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    late = watchdog.schedule(0.3, lambda: (fired.append("late"), done.set()))
    cancelled = [watchdog.schedule(0.05, lambda: fired.append("cancelled")) for _ in range(100)]
    early = watchdog.schedule(0.1, lambda: fired.append("early"))
    for alarm in cancelled:
        watchdog.cancel(alarm)
    assert done.wait(WAIT_SECONDS)
    assert fired == ["early", "late"]
    assert not late.cancel() and not early.cancel()  # already fired
    assert watchdog.pending() == 0
