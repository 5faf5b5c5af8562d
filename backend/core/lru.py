"""A bounded least-recently-used mapping that threads may share: the per-process caches of
parsed documents, snapshots and verified tokens keep their entries in one.

The entries live in `cachetools.LRUCache`; every access holds one lock, since a lookup there
reorders the entries. Nothing is computed under the lock: a caller that misses builds the value
and `put`s it, so two threads may both build one value on a cold key (the caches hold pure
functions of their keys, so either copy serves).
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K")
V = TypeVar("V")


class LockedLru(Generic[K, V]):
    """At most `max_entries` values; the least recently read or written goes first."""

    __slots__ = ("_entries", "_lock")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: LRUCache[K, V] = LRUCache(maxsize=max_entries)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value under `key` (now the most recently used), or None."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        """Remember `value` under `key`, dropping the least recently used beyond the bound."""
        with self._lock:
            self._entries[key] = value

    def pop(self, key: K) -> V | None:
        """Forget `key`; its value, or None when it was not held."""
        with self._lock:
            return self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
