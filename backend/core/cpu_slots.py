"""A process-wide allowance of threads that do an ask's CPU-bound Python work at once.

One process runs Python on one core at a time (the GIL). With many asks in flight, each on a
worker thread, every thread that wants the GIL back after a statement waits behind all the
others that are busy computing; a thread that holds SQLite's write turn (or a PostgreSQL row
lock) then holds it that much longer, and everyone behind it waits too: recording an ask took
hundreds of milliseconds at 32 clients while taking 3 at one. An ask takes one of a few slots
for its platform work and CPU-bound stages (read, offline generation, guard, record) and
gives it back while it waits on a user's database or an LLM. Asks beyond the slots queue
before they start, not while holding a lock. Throughput does not suffer: the work is
CPU-bound, so more threads at once could not finish it sooner.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import anyio

_local = threading.local()
_registry: dict[int, CpuSlots] = {}
_registry_lock = threading.Lock()


class CpuSlots:
    """`slots` threads at a time inside `work()`; a thread re-entering keeps its slot."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphore = threading.Semaphore(slots)

    @contextmanager
    def work(self) -> Iterator[None]:
        if getattr(_local, "held", None) is self:
            yield
            return
        self._semaphore.acquire()
        _local.held = self
        try:
            yield
        finally:
            _local.held = None
            self._semaphore.release()


@contextmanager
def waiting() -> Iterator[None]:
    """Give this thread's slot back while it waits on something outside the process (a user's
    database), and take one again afterwards."""
    held: CpuSlots | None = getattr(_local, "held", None)
    if held is None:
        yield
        return
    _local.held = None
    held._semaphore.release()  # noqa: SLF001 - the module's own class
    try:
        yield
    finally:
        held._semaphore.acquire()  # noqa: SLF001
        _local.held = held


def default_slots() -> int:
    """One per core, and at least two (one computes while the other waits on a statement)."""
    return max(2, os.cpu_count() or 1)


@contextmanager
def cpu_work(slots: int | None) -> Iterator[None]:
    """Hold one of the process's `slots` (0: no limit; None: `default_slots()`) meanwhile."""
    count = default_slots() if slots is None else slots
    if count <= 0:
        yield
        return
    with _registry_lock:
        shared = _registry.get(count)
        if shared is None:
            shared = _registry[count] = CpuSlots(count)
    with shared.work():
        yield


ASK_THREADS = 64
"""Worker threads one process lends asks at once (apart from the default pool of 40 that sync
endpoints such as sign-ins share): an ask waiting for a CPU slot waits on one of these, so a
burst of asks never leaves a sign-in without a thread."""
_ask_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def ask_threads() -> anyio.CapacityLimiter:
    """The asks' own thread allowance on the running event loop (`ASK_THREADS`)."""
    loop = asyncio.get_running_loop()
    limiter = _ask_limiters.get(loop)
    if limiter is None:
        limiter = _ask_limiters[loop] = anyio.CapacityLimiter(ASK_THREADS)
    return limiter
