"""Running one read-only query on a user's database, with a row cap, a timeout and JSON-safe
values; failures of that database become `TargetDatabaseError` (502) or
`TargetDatabaseTimeout` (504), never with a password in them.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlglot
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlglot import exp

from backend.admin.config_keys import get_config_value
from backend.connections.dialects import Dialect, get_dialect
from backend.connections.errors import TargetDatabaseError, TargetDatabaseTimeout
from backend.connections.models import DatabaseConnection
from backend.connections.schema_cache import snapshot_for_connection
from backend.connections.target import NO_PARAMETERS, read_only_connection
from backend.core.config import Settings

__all__ = [
    "QueryLimits",
    "QueryResult",
    "ResultBudget",
    "bind_named_parameters",
    "ResultColumn",
    "RowChunk",
    "configured_limits",
    "execute_query",
    "json_safe",
    "open_sqlite_read_only",
    "run_on_connection",
    "snapshot_for_connection",
    "stream_on_connection",
]


_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True, slots=True)
class ResultColumn:
    name: str
    type: str | None


TruncatedReason = Literal["row_limit", "byte_limit", "cell_limit"]
"""Why a result holds less than the query answered: the row cap, the byte budget of the
result, or (rows all there) a value cut at the byte cap of one value."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[ResultColumn]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    execution_time_ms: float
    truncated_reason: TruncatedReason | None = None
    size_bytes: int = 0
    """About how many bytes the values take as JSON."""


MAX_INTEGER_DIGITS = 4000
"""Longest integral decimal shown as a JSON number; a longer one is shown as text."""
MAX_NESTING = 200
"""Deepest nesting of a structured value (a JSON document, an array) written as JSON text;
a deeper one is written as its plain text."""


class _TooDeep(Exception):
    pass


def _plain(value: Any, depth: int) -> Any:
    """A driver's structured value with every leaf made JSON-safe and every key text."""
    if isinstance(value, Mapping):
        if depth >= MAX_NESTING:
            raise _TooDeep
        out: dict[str, Any] = {}
        for key, item in value.items():
            safe_key = json_safe(key)
            name = safe_key if isinstance(safe_key, str) else json.dumps(safe_key)
            out[name] = _plain(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        if depth >= MAX_NESTING:
            raise _TooDeep
        return [_plain(item, depth + 1) for item in value]
    return json_safe(value)


def json_safe(value: Any) -> Any:
    """A value the API can put in JSON without losing what it means. Structured values (a
    PostgreSQL `json`/`jsonb` document or array, a DuckDB list, struct or map) become their
    JSON text, as a scalar cell, so the byte caps of a result and the CSV cell hold for them."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        try:
            return json.dumps(_plain(value, 0), ensure_ascii=False)
        except (_TooDeep, RecursionError):
            return "[nested too deeply to show]"
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():  # PostgreSQL numeric holds NaN and ±Infinity
            return None
        if value == value.to_integral_value():
            # Python writes no integer of more than 4300 digits (PostgreSQL numeric holds
            # 131072): a longer one is shown as the decimal's own text.
            return int(value) if value.adjusted() < MAX_INTEGER_DIGITS else str(value)
        number = float(value)
        return number if math.isfinite(number) else str(value)
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
            result = conn.exec_driver_sql(sql, execution_options=NO_PARAMETERS)
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


MAX_ROW_CAP = 100_000
MAX_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class QueryLimits:
    row_cap: int
    timeout_seconds: float


def configured_limits(session: Session) -> QueryLimits:
    """The row cap and timeout from system config (`query.row_cap`,
    `query.statement_timeout_seconds`), clamped to sane bounds."""
    row_cap = int(get_config_value(session, "query.row_cap"))
    timeout_seconds = float(get_config_value(session, "query.statement_timeout_seconds"))
    return QueryLimits(
        row_cap=min(max(row_cap, 1), MAX_ROW_CAP),
        timeout_seconds=min(max(timeout_seconds, 0.1), MAX_TIMEOUT_SECONDS),
    )


@dataclass(frozen=True, slots=True)
class RowChunk:
    """A slice of a streamed result; every chunk carries the columns."""

    columns: list[ResultColumn]
    rows: list[Sequence[Any]]
    """JSON-safe values (`json_safe`), or the driver's own with `raw_values=True`."""


def _column_types(
    conn: Connection, dialect: Dialect, description: Any, rows: list[Any]
) -> list[str | None]:
    types: list[str | None] = []
    for index, column in enumerate(description or []):
        name = dialect.describe_type(column[1], conn)
        if name is None:
            name = _infer_type(row[index] for row in rows)
        types.append(name)
    return types


_PY_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (decimal.Decimal, "decimal"),
    (str, "text"),
    (dt.datetime, "timestamp"),
    (dt.date, "date"),
    (dt.time, "time"),
    (bytes, "bytes"),
    (uuid.UUID, "uuid"),
)


def _infer_type(values: Iterator[Any]) -> str | None:
    """A type name from the first non-null value (SQLite reports none)."""
    for value in values:
        if value is None:
            continue
        for python_type, name in _PY_TYPES:
            if isinstance(value, python_type):
                return name
        return type(value).__name__
    return None


_PYFORMAT_DB_TYPES = frozenset({"postgresql", "mysql"})


def bind_named_parameters(
    sql: str, params: Mapping[str, Any], *, db_type: str, sqlglot_dialect: str
) -> tuple[str, dict[str, Any]]:
    """`sql` with its `:name` placeholders in the driver's own named style, and the values.

    The statement is parsed (sqlglot), so a `:word` inside a string literal is left alone;
    each placeholder becomes a random marker, the text is rendered, `%` is doubled where the
    driver formats the text (pyformat), and the markers become `%(name)s` / `:name` / `$name`.
    Values never enter the text. Raises `TargetDatabaseError` for a placeholder without a value.
    """
    tree = sqlglot.parse_one(sql, read=sqlglot_dialect)
    nonce = secrets.token_hex(8)
    used: list[str] = []

    def to_marker(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder | exp.Var) and (
            isinstance(node, exp.Placeholder) or str(node.this).startswith(":")
        ):
            name = str(node.name if isinstance(node, exp.Placeholder) else node.this)
            name = name.lstrip(":")
            if not _PARAMETER_NAME.fullmatch(name):
                raise TargetDatabaseError(
                    "Only named parameters (:name) can be bound.", details={"parameter": name}
                )
            if name not in used:
                used.append(name)
            return exp.Var(this=f"nlsqlp{nonce}x{name}x{nonce}")
        return node

    rendered = tree.transform(to_marker).sql(dialect=sqlglot_dialect, comments=False)
    missing = [name for name in used if name not in params]
    if missing:
        raise TargetDatabaseError(
            "A parameter of the query has no value.", details={"missing": missing}
        )
    if db_type in _PYFORMAT_DB_TYPES:
        rendered = rendered.replace("%", "%%")
        style = "%({})s"
    elif db_type == "duckdb":
        style = "${}"
    else:
        style = ":{}"
    for name in used:
        rendered = rendered.replace(f"nlsqlp{nonce}x{name}x{nonce}", style.format(name))
    return rendered, {name: params[name] for name in used}


def _execute(conn: Connection, sql: str, params: Mapping[str, Any] | None, db_type: str) -> Any:
    if params is None:
        return conn.exec_driver_sql(sql, execution_options=NO_PARAMETERS)
    driver_sql, values = bind_named_parameters(
        sql, params, db_type=db_type, sqlglot_dialect=get_dialect(db_type).SQLGLOT_DIALECT
    )
    return conn.exec_driver_sql(driver_sql, values)


DEFAULT_MAX_CELL_BYTES = 262_144
DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024
_FIRST_BATCH_ROWS = 8
_MAX_BATCH_ROWS = 256
_CELL_OVERHEAD_BYTES = 2
"""A separator and some slack per value, so many tiny values still count."""


@dataclass(frozen=True, slots=True)
class ResultBudget:
    """How much of a result the API may hold: rows, bytes of all values, bytes of one value."""

    row_cap: int
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    max_cell_bytes: int = DEFAULT_MAX_CELL_BYTES


def _cut_text(text: str, max_bytes: int) -> tuple[str, int, bool]:
    if text.isascii():
        if len(text) <= max_bytes:
            return text, len(text), False
        return text[:max_bytes], max_bytes, True
    # At most 4 bytes a character: a prefix that long always holds max_bytes of UTF-8.
    head = text[: max_bytes + 1]
    encoded = head.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes and len(head) == len(text):
        return text, len(encoded), False
    cut = encoded[:max_bytes].decode("utf-8", "ignore")
    return cut, len(cut.encode("utf-8", "surrogatepass")), True


def bounded_value(value: Any, max_bytes: int) -> tuple[Any, int, bool]:
    """`json_safe(value)` cut to about `max_bytes` of JSON text: (value, its size, was it cut).

    Binary values are cut before they are base64-encoded, so a huge blob is never copied whole.
    """
    if value is None or isinstance(value, bool):
        return value, 5, False
    if isinstance(value, int | float | decimal.Decimal):
        safe = json_safe(value)
        return safe, len(str(safe)) if isinstance(value, decimal.Decimal) else 8, False
    if isinstance(value, bytes | bytearray | memoryview):
        raw = value if isinstance(value, bytes) else bytes(value)
        limit = max_bytes // 4 * 3
        cut = len(raw) > limit
        encoded = json_safe(raw[:limit] if cut else raw)
        return encoded, len(encoded), cut
    safe = json_safe(value)
    if isinstance(safe, str):
        return _cut_text(safe, max_bytes)
    return safe, 8, False


def _deadline_passed(timeout_seconds: float) -> TargetDatabaseTimeout:
    return TargetDatabaseTimeout(
        "The query ran past the time limit and was stopped.",
        details={"kind": "timeout", "timeout_seconds": timeout_seconds},
    )


@dataclass(slots=True)
class _Collected:
    rows: list[list[Any]] = field(default_factory=list)
    size_bytes: int = 0
    reason: TruncatedReason | None = None
    cells_cut: bool = False
    first_batch: list[Any] = field(default_factory=list)


def _collect_rows(
    result: Any, budget: ResultBudget, *, deadline: float, timeout_seconds: float
) -> _Collected:
    """Fetch rows in small batches until the row cap or the byte budget is reached.

    The batch size follows the rows' sizes, so at most about one budget's worth of rows is in
    memory beyond what is kept; the deadline is checked between batches (a driver that buffered
    the whole result would otherwise let conversion run past the statement timeout).
    """
    collected = _Collected()
    batch_rows = _FIRST_BATCH_ROWS
    while collected.reason is None:
        batch = result.fetchmany(max(1, min(batch_rows, budget.row_cap + 1 - len(collected.rows))))
        if not batch:
            break
        if not collected.first_batch:
            collected.first_batch = list(batch[:_FIRST_BATCH_ROWS])
        for raw_row in batch:
            if len(collected.rows) >= budget.row_cap:
                collected.reason = "row_limit"
                break
            row: list[Any] = []
            row_size = 0
            for raw in raw_row:
                value, size, cut = bounded_value(raw, budget.max_cell_bytes)
                row.append(value)
                row_size += size + _CELL_OVERHEAD_BYTES
                collected.cells_cut |= cut
            if collected.size_bytes + row_size > budget.max_result_bytes:
                collected.reason = "byte_limit"
                break
            collected.rows.append(row)
            collected.size_bytes += row_size
        del batch
        if time.monotonic() > deadline:
            raise _deadline_passed(timeout_seconds)
        average = collected.size_bytes / max(1, len(collected.rows))
        left = budget.max_result_bytes - collected.size_bytes
        batch_rows = int(max(1, min(_MAX_BATCH_ROWS, left // max(average, 1.0))))
    if collected.reason is None and collected.cells_cut:
        collected.reason = "cell_limit"
    return collected


def _streams_safely(sql: str, dialect: Dialect) -> bool:
    """Whether the rows may come through a server-side cursor: always, except on PostgreSQL,
    whose cursors (DECLARE) take only a query; anything else runs as sent, so the server
    itself still refuses a write."""
    if dialect.DB_TYPE != "postgresql":
        return True
    try:
        return isinstance(sqlglot.parse_one(sql, read=dialect.SQLGLOT_DIALECT), exp.Query)
    except (sqlglot.errors.SqlglotError, RecursionError):
        return False


def run_on_connection(
    connection: DatabaseConnection,
    sql: str,
    *,
    settings: Settings,
    row_cap: int,
    timeout_seconds: float,
    params: Mapping[str, Any] | None = None,
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
    max_cell_bytes: int = DEFAULT_MAX_CELL_BYTES,
) -> QueryResult:
    """Run one statement read-only and fetch at most `row_cap` rows and `max_result_bytes` of
    values (each value cut at `max_cell_bytes`); the result says which limit cut it.

    Rows are fetched in batches (server-side cursors where the driver has them) and the
    timeout covers fetching as well as running. `params` binds `:name` placeholders through
    the driver (see `bind_named_parameters`). Raises `TargetDatabaseError` (502),
    `TargetDatabaseTimeout` (504), and for a file path no longer allowed
    `ConnectionPathNotAllowed` (422).
    """
    budget = ResultBudget(
        row_cap=row_cap, max_result_bytes=max_result_bytes, max_cell_bytes=max_cell_bytes
    )
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_seconds
    with read_only_connection(
        connection,
        settings=settings,
        timeout_seconds=timeout_seconds,
        max_value_bytes=budget.max_result_bytes,
    ) as (conn, dialect):
        if _streams_safely(sql, dialect):
            conn = conn.execution_options(stream_results=True, max_row_buffer=_MAX_BATCH_ROWS)
            sql = dialect.bound_row_size(sql, budget.max_result_bytes)
        result = _execute(conn, sql, params, connection.db_type)
        if not result.returns_rows:
            names: list[str] = []
            collected = _Collected()
            description = None
        else:
            names = list(result.keys())
            description = result.cursor.description if result.cursor is not None else None
            collected = _collect_rows(
                result, budget, deadline=deadline, timeout_seconds=timeout_seconds
            )
            result.close()
        types = _column_types(conn, dialect, description, collected.first_batch)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if len(types) != len(names):
        types = [None] * len(names)
    return QueryResult(
        columns=[ResultColumn(name=n, type=t) for n, t in zip(names, types, strict=True)],
        rows=collected.rows,
        row_count=len(collected.rows),
        truncated=collected.reason is not None,
        truncated_reason=collected.reason,
        size_bytes=collected.size_bytes,
        execution_time_ms=round(elapsed_ms, 3),
    )


def stream_on_connection(
    connection: DatabaseConnection,
    sql: str,
    *,
    settings: Settings,
    timeout_seconds: float,
    chunk_size: int = 1000,
    max_rows: int | None = None,
    params: Mapping[str, Any] | None = None,
    raw_values: bool = False,
) -> Iterator[RowChunk]:
    """Yield the rows of one read-only statement in chunks of `chunk_size`, holding at most one
    chunk in memory (server-side cursors where the driver has them). The whole stream must end
    within `timeout_seconds`; errors as `run_on_connection`. Values are made JSON-safe unless
    `raw_values`: then the rows are the driver's own tuples, not wrapped in SQLAlchemy rows (a
    CSV export formats whole columns at once and pays for nothing per row it does not need)."""
    sent = 0
    with read_only_connection(connection, settings=settings, timeout_seconds=timeout_seconds) as (
        conn,
        dialect,
    ):
        result = _execute(
            conn.execution_options(stream_results=True, max_row_buffer=chunk_size),
            sql,
            params,
            connection.db_type,
        )
        if not result.returns_rows:
            return
        names = list(result.keys())
        description = result.cursor.description if result.cursor is not None else None
        columns: list[ResultColumn] | None = None
        while True:
            size = chunk_size if max_rows is None else min(chunk_size, max_rows - sent)
            if size <= 0:
                break
            # The fetch strategy hands out the DBAPI rows (buffered ones first) and turns driver
            # errors into SQLAlchemy's, as `fetchmany` does before it wraps each row. It is read
            # anew each time: once the cursor runs dry (a server-side cursor's buffer may still
            # hold rows then) the result closes its cursor and swaps in a strategy that has none.
            batch = (
                result.cursor_strategy.fetchmany(result, result.cursor, size)
                if raw_values
                else result.fetchmany(size)
            )
            if columns is None:
                types = _column_types(conn, dialect, description, list(batch))
                if len(types) != len(names):
                    types = [None] * len(names)
                columns = [ResultColumn(name=n, type=t) for n, t in zip(names, types, strict=True)]
            if not batch:
                if sent == 0:
                    yield RowChunk(columns=columns, rows=[])
                break
            sent += len(batch)
            if raw_values:
                yield RowChunk(columns=columns, rows=list(batch))
            else:
                yield RowChunk(columns=columns, rows=[[json_safe(v) for v in row] for row in batch])
        result.close()
