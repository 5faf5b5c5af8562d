"""Running one read-only query on a user's database, with a row cap and JSON-safe values."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from backend.connections.errors import TargetDatabaseError


@dataclass(frozen=True, slots=True)
class ResultColumn:
    name: str
    type: str | None


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[ResultColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    execution_time_ms: float


def json_safe(value: Any) -> Any:
    """A value the API can put in JSON without losing what it means."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def open_sqlite_read_only(path: Path) -> Engine:
    """An engine that cannot write: the file is opened `mode=ro` and `query_only` is on."""
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = ON")

    return engine


def execute_query(engine: Engine, sql: str, *, row_cap: int) -> QueryResult:
    """Run `sql` and fetch at most `row_cap` rows; raises `TargetDatabaseError`."""
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            result = conn.execute(text(sql))
            description = result.cursor.description if result.cursor is not None else None
            names = list(result.keys())
            fetched = result.fetchmany(row_cap + 1)
    except OperationalError as exc:
        raise TargetDatabaseError(details={"reason": str(exc.orig).splitlines()[0]}) from exc
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", exc)
        raise TargetDatabaseError(details={"reason": str(orig).splitlines()[0]}) from exc
    elapsed_ms = (time.perf_counter() - started) * 1000
    truncated = len(fetched) > row_cap
    rows = [[json_safe(v) for v in row] for row in fetched[:row_cap]]
    types = (
        [(str(d[1]) if d[1] is not None else None) for d in description]
        if description
        else [None] * len(names)
    )
    return QueryResult(
        columns=[ResultColumn(name=n, type=t) for n, t in zip(names, types, strict=False)],
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        execution_time_ms=round(elapsed_ms, 3),
    )
