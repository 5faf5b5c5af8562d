"""A process-wide allowance of threads that do CPU-bound Python work at once.

One process runs Python on one core at a time (the GIL). With many asks in flight, each on a
worker thread, every thread that wants the GIL back after a statement or a read waits behind
all the others that are busy computing; a thread that holds SQLite's write turn (or a
PostgreSQL row lock) then holds it that much longer, and everyone behind it waits too. The
asks' CPU-bound stages (reading what the ask needs, generating with the offline engine,
guarding) take one of a few slots; waiting on a user's database gives the slot back, and
recording takes none, so a recording competes with at most the slot holders and finishes
promptly. Throughput does not suffer: the work is CPU-bound, so more threads at once could
not finish it sooner.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
