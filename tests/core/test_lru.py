"""The shared bounded LRU mapping of the per-process caches."""

from __future__ import annotations

import threading

import pytest

from backend.core.lru import LockedLru


def test_keeps_at_most_the_bound_and_drops_the_least_recently_used() -> None:
    cache: LockedLru[str, int] = LockedLru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the least recently used
    cache.put("c", 3)
    assert len(cache) == 2
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_pop_and_clear_forget_entries() -> None:
    cache: LockedLru[tuple[str, int], str] = LockedLru(4)
    cache.put(("x", 1), "one")
    assert cache.pop(("x", 1)) == "one"
    assert cache.pop(("x", 1)) is None
    cache.put(("y", 2), "two")
    cache.clear()
    assert len(cache) == 0 and cache.get(("y", 2)) is None


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        LockedLru[str, int](0)


def test_threads_sharing_it_never_exceed_the_bound_or_mix_values() -> None:
    cache: LockedLru[int, int] = LockedLru(64)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(2_000):
                key = offset * 10_000 + i
                cache.put(key, key)
                # Other threads may have pushed it out since, but never put another value
                # under it.
                assert cache.get(key) in (key, None)
                assert len(cache) <= 64
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) == 64
