"""The asks' CPU slots: at most N threads at once, re-entrant, given back while waiting."""

from __future__ import annotations

import threading

from backend.core.cpu_slots import cpu_work, waiting

SLOTS = 2


def test_no_more_than_the_slots_work_at_once() -> None:
    inside, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()
    entered = threading.Semaphore(0)

    def work() -> None:
        nonlocal inside, most
        with cpu_work(SLOTS):
            with lock:
                inside += 1
                most = max(most, inside)
            entered.release()
            release.wait(10)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    for _ in range(SLOTS):
        assert entered.acquire(timeout=10)
    # The others wait for a slot: none enters while the first two hold theirs.
    assert not entered.acquire(timeout=0.3)
    release.set()
    for thread in threads:
        thread.join(10)
    assert most == SLOTS


def test_a_thread_keeps_its_slot_when_it_reenters_and_gives_it_back_while_waiting() -> None:
    other_worked = threading.Event()

    def other() -> None:
        with cpu_work(1):
            other_worked.set()

    with cpu_work(1), cpu_work(1):  # re-entering does not wait for itself
        thread = threading.Thread(target=other)
        thread.start()
        assert not other_worked.wait(0.3)
        with waiting():
            assert other_worked.wait(10)
    thread.join(10)


def test_zero_slots_means_no_limit() -> None:
    done = threading.Event()

    def other() -> None:
        with cpu_work(0):
            done.set()

    with cpu_work(0):
        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(10)
    thread.join(10)
