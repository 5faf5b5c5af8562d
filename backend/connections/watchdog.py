"""One watchdog thread per process for every query's time limit.

A query on a user's database is stopped at its deadline even when the server does not stop
it itself (a driver without a statement timeout, a server that ignores it). Starting a
`threading.Timer` per query cost a thread start and teardown on every ask; instead every
deadline goes into one heap served by one daemon thread, which sleeps until the earliest.
Scheduling is a heap push under a lock; cancelling sets a flag (cancelled alarms are dropped
when they reach the top, or all at once when they make up most of the heap). An alarm that
fires runs its callback on a short-lived thread of its own, so a slow cancellation (MySQL's
`KILL QUERY` opens a connection) never delays another deadline.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger("nlsql.connections")

THREAD_NAME = "nlsql-query-watchdog"
_PURGE_AT_LEAST = 64


class Alarm:
    """One scheduled callback; `cancel` before it fires and it never runs."""

    __slots__ = ("_callback", "_lock", "cancelled", "fired")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.cancelled = False
        self.fired = False

    def cancel(self) -> bool:
        """Stop the alarm; False when it had already fired."""
        with self._lock:
            if self.fired:
                return False
            self.cancelled = True
            return True

    def _claim(self) -> bool:
        with self._lock:
            if self.cancelled:
                return False
            self.fired = True
            return True

    def _run(self) -> None:
        try:
            self._callback()
        except Exception:
            logger.exception("a query watchdog callback failed")


class Watchdog:
    """Fires callbacks at their deadlines from one thread (started on first use, and again in
    a forked child, which does not inherit threads)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Alarm]] = []
        self._order = itertools.count()
        self._cancelled = 0
        self._pid = 0
        self._thread: threading.Thread | None = None

    def schedule(self, delay_seconds: float, callback: Callable[[], None]) -> Alarm:
        alarm = Alarm(callback)
        deadline = time.monotonic() + max(0.0, delay_seconds)
        with self._cond:
            self._ensure_thread()
            heapq.heappush(self._heap, (deadline, next(self._order), alarm))
            if self._heap[0][2] is alarm:
                self._cond.notify()
        return alarm

    def cancel(self, alarm: Alarm) -> None:
        if not alarm.cancel():
            return
        with self._cond:
            self._cancelled += 1
            if self._cancelled >= _PURGE_AT_LEAST and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """Alarms neither fired nor cancelled (for tests and diagnostics)."""
        with self._cond:
            return sum(1 for entry in self._heap if not entry[2].cancelled)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        if self._pid != os.getpid():
            # A forked child: the parent's alarms belong to the parent's queries.
            self._heap, self._cancelled = [], 0
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _next_due(self) -> Alarm:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled = max(0, self._cancelled - 1)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(wait)

    def _serve(self) -> None:
        while True:
            alarm = self._next_due()
            if alarm._claim():
                threading.Thread(target=alarm._run, name=f"{THREAD_NAME}-fire", daemon=True).start()


WATCHDOG = Watchdog()
"""The process's one watchdog for queries on users' databases."""
