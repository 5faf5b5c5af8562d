"""Fixtures of the auth tests: the real password functions, observed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event

from backend.auth import service as auth_service


class ThreadCheckouts:
    """Platform connections checked out per thread, from the pool's own events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_thread: dict[int, int] = {}

    def checkout(self, *_args: Any) -> None:
        with self._lock:
            ident = threading.get_ident()
            self._by_thread[ident] = self._by_thread.get(ident, 0) + 1

    def checkin(self, *_args: Any) -> None:
        with self._lock:
            ident = threading.get_ident()
            self._by_thread[ident] = self._by_thread.get(ident, 0) - 1

    def of_this_thread(self) -> int:
        with self._lock:
            return self._by_thread.get(threading.get_ident(), 0)


@pytest.fixture
def held_while_hashing(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Connections the hashing thread held at each call of the real verify/hash functions."""
    checkouts = ThreadCheckouts()
    pool = app.state.engine.pool
    event.listen(pool, "checkout", checkouts.checkout)
    event.listen(pool, "checkin", checkouts.checkin)
    seen: list[int] = []

    def observed(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(checkouts.of_this_thread())
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(auth_service, "verify_password", observed(auth_service.verify_password))
    monkeypatch.setattr(auth_service, "hash_password", observed(auth_service.hash_password))
    yield seen
    event.remove(pool, "checkout", checkouts.checkout)
    event.remove(pool, "checkin", checkouts.checkin)
