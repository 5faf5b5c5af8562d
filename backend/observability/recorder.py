"""The one writer of analytics, audit rows, events and metrics.

Takes plain values, redacts secrets in one place, imports no other domain.

How to call it (every function takes the caller's session first, keyword-only after it):

* ``query(session, query_id=..., user_id=..., source="ask"|"sql"|"template", success=..., ...)``
  writes one ``query_analytics`` row; record failures too (``success=False, error_message=...``).
* ``event(session, event_type=EventType.ASKED, user_id=..., context=..., data=...,
  user_session_id=principal.user_session_id)`` writes one ``events`` row.
* ``audit(session, action=AuditAction..., user_id=..., context=..., old_values=..., new_values=...,
  success=..., error_message=...)`` appends one row to the tamper-evident audit chain.
  Secret-looking keys in ``old_values``/``new_values`` (password, token, secret, key ...) are
  replaced by ``"***"``. The row is one INSERT ... SELECT that reads its predecessor's hash
  and computes its own in the database. On PostgreSQL the append first takes a
  transaction-scoped advisory lock and on SQLite the database write lock, both held until the
  caller's transaction ends: audit as late in the transaction as you can.
* ``insert_rows_together(session, [(QueryAnalytics, query_values(...)), (Event, event_values(
  ...))])`` writes one row into each of several tables: one statement on PostgreSQL (data-
  modifying CTEs), one INSERT per row elsewhere. ``insert_rows`` writes rows of one table.
* ``record_stage_timings(session, timings_ms={"generate": 12.5, "guard": 0.4, "execute": 3.1,
  "record": 1.0}, query_id=..., source="ask")`` enqueues the ask's stage timings into the batch
  metric writer; nothing is written on the request path. Without a running writer (CLI, bare
  sessions) the rows are written into the session instead.
* ``enqueue_metric(session, name=..., value=..., unit="ms", data={...})`` enqueues any metric the
  same way; ``metric(session, ...)`` writes one row into the session right away.

These writes go into the caller's session (flushed, never committed), so a recorded row commits
or rolls back with the work it describes. Only the batched metrics are written by the
``MetricWriter``'s own background thread (``metric_writer.py``), in their own transactions.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, func, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from backend.core.context import ClientContext
from backend.core.db import Base, utcnow
from backend.observability.metric_writer import MetricWriter as MetricWriter
from backend.observability.metric_writer import metric_writer_for as metric_writer_for
from backend.observability.metric_writer import register_metric_writer as register_metric_writer
from backend.observability.models import AuditLog, Event, PerformanceMetric, QueryAnalytics

REDACTED = "***"
_SECRET_MARKERS = (
    "password",
    "secret",
    "token",
    "api_key",
    "apikey",
    "key_hash",
    "credential",
    "private_key",
    "authorization",
)
_EXEMPT_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens", "token_usage"})

AUDIT_CHAIN_LOCK_ID = 0x6E6C73716C  # "nlsql": the advisory lock that serialises audit appends

HTTP_REQUEST_METRIC = "http_request_duration"
ASK_STAGE_METRIC = "ask_stage_duration"


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    if lowered in _EXEMPT_KEYS:
        return False
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(values: Any) -> Any:
    """A copy of `values` with every secret-looking key's value replaced, at any depth."""
    if isinstance(values, Mapping):
        return {
            str(k): (REDACTED if is_secret_key(str(k)) and v is not None else redact(v))
            for k, v in values.items()
        }
    if isinstance(values, list | tuple):
        return [redact(v) for v in values]
    return values


def _json_safe(values: Any) -> Any:
    """Round-trip through JSON so what we hash is exactly what the JSON column gives back."""
    return json.loads(json.dumps(values, default=str))


# --- the audit chain ---------------------------------------------------------------------------


def _iso(instant: datetime) -> str:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def audit_row_content(row: AuditLog) -> dict[str, Any]:
    """The fields the row hash covers (everything but the hashes themselves)."""
    return {
        "id": row.id,
        "user_id": row.user_id,
        "action": row.action,
        "resource_type": row.resource_type,
        "resource_id": row.resource_id,
        "old_values": row.old_values,
        "new_values": row.new_values,
        "ip_address": row.ip_address,
        "user_agent": row.user_agent,
        "timestamp": _iso(row.timestamp),
        "success": bool(row.success),
        "error_message": row.error_message,
        "request_id": row.request_id,
    }


def compute_row_hash(content: Mapping[str, Any], prev_hash: str | None) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256()
    digest.update((prev_hash or "").encode())
    digest.update(b"\n")
    digest.update(canonical.encode())
    return digest.hexdigest()


def _lock_audit_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(AUDIT_CHAIN_LOCK_ID)))


_ID_MARK = -7_306_454_411_093_311
"""Stands for the row's id in its canonical content until the database has chosen the id."""
_SQLITE_HASH_FUNCTION = "nlsql_audit_chain_hash"


def _chain_hash_of_parts(prev_hash: str | None, before_id: str, row_id: int, after_id: str) -> str:
    """`compute_row_hash` of a row whose canonical content is `before_id + id + after_id`."""
    canonical = f"{before_id}{row_id}{after_id}"
    digest = hashlib.sha256()
    digest.update((prev_hash or "").encode())
    digest.update(b"\n")
    digest.update(canonical.encode())
    return digest.hexdigest()


def _content_around_id(row: AuditLog) -> tuple[str, str]:
    """The row's canonical content (as `compute_row_hash` serialises it), split where the id
    goes. Keys are sorted, so only `action` and `error_message` (strings, whose quotes JSON
    escapes) come before `"id"`: the first `"id":<mark>` is the row's own."""
    row.id = _ID_MARK
    canonical = json.dumps(
        audit_row_content(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    before, mark, after = canonical.partition(f'"id":{_ID_MARK}')
    if not mark:  # pragma: no cover - the content always holds its id
        raise RuntimeError("the audit row's content has no id")
    return before + '"id":', after


def _chain_hash_sql(session: Session, prev: Any, row_id: Any, before: str, after: str) -> Any:
    """The row hash as a SQL expression, computed by the database from the predecessor it
    reads in the same statement: PostgreSQL's sha256(); on SQLite, `_chain_hash_of_parts`
    registered as a function on the connection."""
    if session.get_bind().dialect.name == "postgresql":
        text_hashed = func.concat(func.coalesce(prev, ""), "\n", before, row_id, after)
        return func.encode(func.sha256(func.convert_to(text_hashed, "UTF8")), "hex")
    connection = session.connection()
    if not connection.info.get(_SQLITE_HASH_FUNCTION):
        raw = connection.connection.dbapi_connection
        assert raw is not None  # noqa: S101 - a checked-out connection has one
        raw.create_function(_SQLITE_HASH_FUNCTION, 4, _chain_hash_of_parts, deterministic=True)
        connection.info[_SQLITE_HASH_FUNCTION] = True
    return getattr(func, _SQLITE_HASH_FUNCTION)(prev, before, row_id, after)


def audit(
    session: Session,
    *,
    action: str,
    user_id: str | None,
    context: ClientContext | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    old_values: Mapping[str, Any] | None = None,
    new_values: Mapping[str, Any] | None = None,
    success: bool = True,
    error_message: str | None = None,
) -> AuditLog:
    """Append one row to the audit chain (does not commit); returns the row as written (not
    attached to the session).

    One statement (PostgreSQL: after taking the chain's lock): an INSERT ... SELECT that
    reads the predecessor's hash, picks the id and computes the row's hash in the database,
    in the statement that writes the row. Correct under concurrent writers: on SQLite the
    statement holds the database write lock from its start, on PostgreSQL the advisory
    transaction lock is taken first, so no two rows ever claim the same predecessor, and ids
    grow in chain order.
    """
    context = context or ClientContext()
    _lock_audit_chain(session)
    row = AuditLog(
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        old_values=_json_safe(redact(dict(old_values))) if old_values is not None else None,
        new_values=_json_safe(redact(dict(new_values))) if new_values is not None else None,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        request_id=context.request_id,
        success=success,
        error_message=error_message,
        timestamp=utcnow(),
    )
    before, after = _content_around_id(row)
    table = cast("Table", AuditLog.__table__)
    if session.get_bind().dialect.name == "postgresql":
        next_id: Any = func.nextval(func.pg_get_serial_sequence(table.name, "id"))
    else:
        next_id = func.coalesce(func.max(table.c.id), 0) + 1
    chosen = select(next_id.label("id")).subquery("chosen")
    prev = select(table.c.row_hash).order_by(table.c.id.desc()).limit(1).scalar_subquery()
    values = {
        name: literal(getattr(row, name), table.c[name].type) for name in _AUDIT_VALUE_COLUMNS
    }
    written = session.execute(
        insert(table)
        .from_select(
            ["id", *values, "prev_hash", "row_hash"],
            select(
                chosen.c.id,
                *values.values(),
                prev,
                _chain_hash_sql(session, prev, chosen.c.id, before, after),
            ).select_from(chosen),
        )
        .returning(table.c.id, table.c.prev_hash, table.c.row_hash)
    ).one()
    row.id, row.prev_hash, row.row_hash = written.id, written.prev_hash, written.row_hash
    return row


_AUDIT_VALUE_COLUMNS = (
    "user_id",
    "action",
    "resource_type",
    "resource_id",
    "old_values",
    "new_values",
    "ip_address",
    "user_agent",
    "request_id",
    "success",
    "error_message",
    "timestamp",
)


# --- events and analytics ----------------------------------------------------------------------


def event_values(
    *,
    event_type: str,
    user_id: str | None,
    context: ClientContext | None = None,
    data: Mapping[str, Any] | None = None,
    user_session_id: str | None = None,
) -> dict[str, Any]:
    """The column values of one `events` row (secrets in `data` redacted), for `event` or for
    `insert_rows`."""
    context = context or ClientContext()
    return {
        "event_type": event_type,
        "user_id": user_id,
        "event_data": _json_safe(redact(dict(data))) if data is not None else None,
        "ip_address": context.ip_address,
        "user_agent": context.user_agent,
        "session_id": user_session_id,
    }


def event(
    session: Session,
    *,
    event_type: str,
    user_id: str | None,
    context: ClientContext | None = None,
    data: Mapping[str, Any] | None = None,
    user_session_id: str | None = None,
    flush: bool = True,
) -> Event:
    """One `events` row. `flush=False` only adds it, to be written with the session's next
    statement."""
    row = Event(
        **event_values(
            event_type=event_type,
            user_id=user_id,
            context=context,
            data=data,
            user_session_id=user_session_id,
        )
    )
    session.add(row)
    if flush:
        session.flush()
    return row


def query_values(
    *,
    query_id: str,
    user_id: str | None,
    source: str,
    success: bool,
    question: str | None = None,
    sql_query: str | None = None,
    execution_time_ms: float | None = None,
    row_count: int | None = None,
    error_message: str | None = None,
    error_code: str | None = None,
    chart_type: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    llm_model: str | None = None,
    llm_cost_estimate: float | None = None,
    generator: str | None = None,
    connection_id: str | None = None,
    chat_session_id: str | None = None,
) -> dict[str, Any]:
    """The column values of one `query_analytics` row, for `query` or for `insert_rows`."""
    return {
        "query_id": query_id,
        "user_id": user_id,
        "source": source,
        "success": success,
        "question": question,
        "sql_query": sql_query,
        "execution_time": execution_time_ms,
        "row_count": row_count,
        "error_message": error_message,
        "error_code": error_code,
        "chart_type": chart_type,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "llm_model": llm_model,
        "llm_cost_estimate": llm_cost_estimate,
        "generator": generator,
        "connection_id": connection_id,
        "chat_session_id": chat_session_id,
    }


def query(session: Session, *, flush: bool = True, **values: Any) -> QueryAnalytics:
    """One `query_analytics` row for an ask, a SQL run or a template run, given the keywords of
    `query_values`; record failures too (`success=False, error_message=...`). `flush=False`:
    only added, as `event`."""
    row = QueryAnalytics(**query_values(**values))
    session.add(row)
    if flush:
        session.flush()
    return row


def insert_rows(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Write rows built by `query_values` / `event_values` (or any model's column values) with
    one Core INSERT (executemany for several): no unit of work, no identity map, no refresh
    round trip. For a recording that needs no ORM object back; the statement is compiled once
    per process and cached, and Core applies the columns' defaults (timestamps)."""
    if rows:
        session.execute(insert(cast("Table", model.__table__)), rows)


def row_with_defaults(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with the Python-side defaults of the columns it leaves out filled in (an INSERT
    inside a common table expression gets no defaults applied for it)."""
    full = dict(row)
    for column in table.columns:
        default = column.default
        if column.key in full or default is None:
            continue
        if isinstance(default, ScalarElementColumnDefault):
            full[column.key] = default.arg
        elif isinstance(default, CallableColumnDefault):
            full[column.key] = cast("Any", default.arg)(None)
    return full


def insert_rows_together(
    session: Session, rows: Sequence[tuple[type[Base], dict[str, Any]]]
) -> None:
    """Write one row into each of several tables (a run's analytics row and its event).

    On PostgreSQL one statement: the rows but the last as data-modifying common table
    expressions of the last one's INSERT (one round trip; sent outside a transaction it is
    atomic on its own). Elsewhere one INSERT per row (`insert_rows`)."""
    if session.get_bind().dialect.name != "postgresql" or len(rows) < 2:
        for model, values in rows:
            insert_rows(session, model, [values])
        return
    tables = [cast("Table", model.__table__) for model, _ in rows]
    full = [
        row_with_defaults(table, values) for table, (_, values) in zip(tables, rows, strict=True)
    ]
    shape = tuple(
        (table, tuple(sorted(values))) for table, values in zip(tables, full, strict=True)
    )
    parameters = {
        f"r{index}_{key}": value
        for index, values in enumerate(full)
        for key, value in values.items()
    }
    session.execute(_together(shape), parameters)


@lru_cache(maxsize=64)
def _together(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> Insert:
    """`WITH r0 AS (INSERT ...), ... INSERT ...`, built once per shape (tables and columns);
    values bound by name, `r{i}_{column}`."""

    def values(index: int, table: Table, keys: tuple[str, ...]) -> dict[str, Any]:
        return {key: bindparam(f"r{index}_{key}", type_=table.c[key].type) for key in keys}

    *along, (last_table, last_keys) = shape
    writes = [
        insert(table).values(values(index, table, keys)).cte(f"r{index}")
        for index, (table, keys) in enumerate(along)
    ]
    return insert(last_table).values(values(len(along), last_table, last_keys)).add_cte(*writes)


def estimate_llm_cost(
    price_table: Mapping[str, Any], *, model: str | None, prompt_tokens: int, completion_tokens: int
) -> float | None:
    """USD cost from the `llm.price_table` config (USD per 1,000 tokens); None if unpriced."""
    if model is None or model not in price_table:
        return None
    prices = price_table[model]
    prompt = float(prices.get("prompt", 0.0))
    completion = float(prices.get("completion", 0.0))
    return round((prompt_tokens * prompt + completion_tokens * completion) / 1000.0, 6)


# --- metrics -----------------------------------------------------------------------------------


def metric(
    session: Session,
    *,
    name: str,
    value: float,
    unit: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> PerformanceMetric:
    """Write one metric row into the session now; prefer `enqueue_metric` on a request path."""
    row = PerformanceMetric(
        metric_name=name,
        metric_value=value,
        metric_unit=unit,
        additional_data=_json_safe(dict(data)) if data is not None else None,
    )
    session.add(row)
    session.flush()
    return row


def enqueue_metric(
    session: Session,
    *,
    name: str,
    value: float,
    unit: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> None:
    """Queue a metric for the batch writer; without one, write it into the session now."""
    writer = metric_writer_for(session)
    if writer is None:
        metric(session, name=name, value=value, unit=unit, data=data)
    else:
        writer.enqueue(name, value, unit=unit, data=data)


def record_stage_timings(
    session: Session,
    *,
    timings_ms: Mapping[str, float],
    query_id: str | None = None,
    source: str = "ask",
) -> None:
    """Queue one `ask_stage_duration` metric (ms) per stage: generate, guard, execute, record."""
    for stage, value in timings_ms.items():
        data: dict[str, Any] = {"stage": stage, "source": source}
        if query_id is not None:
            data["query_id"] = query_id
        enqueue_metric(session, name=ASK_STAGE_METRIC, value=float(value), unit="ms", data=data)


class Stopwatch:
    """Times named stages in ms: `with watch.stage("generate"): ...`, then `watch.timings_ms`."""

    def __init__(self) -> None:
        self.timings_ms: dict[str, float] = {}

    def stage(self, name: str) -> _StageTimer:
        return _StageTimer(self, name)


class _StageTimer:
    def __init__(self, watch: Stopwatch, name: str) -> None:
        self._watch = watch
        self._name = name
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        elapsed = (time.perf_counter() - self._start) * 1000.0
        self._watch.timings_ms[self._name] = self._watch.timings_ms.get(self._name, 0.0) + elapsed
