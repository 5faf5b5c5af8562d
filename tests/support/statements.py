"""The platform statements a request runs, as the app's engine sends them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event

BACKGROUND_THREADS = ("nlsql-metric-writer", "nlsql-sqlite-checkpoint")
"""Threads of the app's own that use the platform database on their own schedule."""


@contextmanager
def platform_statements(engine: Engine) -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent meanwhile, apart from the app's background threads': its first
    keyword (`SELECT`, `INSERT`, `WITH`, ...) and whether its connection was in autocommit."""
    seen: list[tuple[str, bool]] = []

    def heard(conn: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any) -> None:
        if threading.current_thread().name in BACKGROUND_THREADS:
            return
        autocommit = bool(getattr(conn.connection.dbapi_connection, "autocommit", False))
        seen.append((statement.lstrip().split(None, 1)[0].upper(), autocommit))

    event.listen(engine, "before_cursor_execute", heard)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", heard)
