"""Reading what was recorded: filtered pages, CSV streams, summaries, the chain check, metrics."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from backend.core.context import ClientContext
from backend.core.errors import BadRequest
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import AuditLog, Event, PerformanceMetric, QueryAnalytics
from backend.observability.recorder import (
    LATENCY_BUCKETS_MS,
    PROMETHEUS_LABELS,
    MetricWriter,
    audit_row_content,
    compute_row_hash,
)
from backend.observability.schemas import (
    AnalyticsSummary,
    AuditChainReport,
    GroupBy,
    MetricsReport,
    MetricStat,
    SummaryGroup,
)

T = TypeVar("T")
MAX_PAGE_SIZE = 200
EXPORT_BATCH_ROWS = 1000


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The cursor is not valid; start again without one."


class InvalidTimeRange(BadRequest):
    code = "invalid_time_range"
    message = "`since` must be before `until`."


# --- keyset pagination -------------------------------------------------------------------------


def encode_cursor(timestamp: datetime, row_id: int) -> str:
    raw = json.dumps([timestamp.astimezone(UTC).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises `InvalidCursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        instant = datetime.fromisoformat(stamp)
        if instant.tzinfo is None or not isinstance(row_id, int):
            raise ValueError(cursor)
        return instant, row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidCursor() from exc


def _newest_first_page(
    session: Session,
    stmt: Select[T],
    *,
    timestamp: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[int],
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    if cursor is not None:
        after_ts, after_id = decode_cursor(cursor)
        stmt = stmt.where(or_(timestamp < after_ts, and_(timestamp == after_ts, row_id < after_id)))
    rows = list(
        session.scalars(stmt.order_by(timestamp.desc(), row_id.desc()).limit(limit + 1)).all()
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, timestamp.key), getattr(last, row_id.key))
    return rows, next_cursor


def check_time_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidTimeRange(details={"since": since.isoformat(), "until": until.isoformat()})


# --- CSV ---------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # Spreadsheets run cells that start like formulas; a leading quote keeps them text.
        return "'" + value
    return value


def stream_csv(
    session_factory: sessionmaker[Session],
    stmt: Select[T],
    columns: Sequence[str],
    *,
    row_values: Callable[[T], Sequence[Any]] | None = None,
) -> Iterator[str]:
    """CSV text in chunks, read in batches by a session of its own (the request's is closed)."""

    def values_of(row: T) -> Sequence[Any]:
        if row_values is not None:
            return row_values(row)
        return [getattr(row, c) for c in columns]

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    with session_factory() as session:
        result = session.scalars(stmt.execution_options(yield_per=EXPORT_BATCH_ROWS))
        for i, row in enumerate(result, start=1):
            writer.writerow([_csv_cell(v) for v in values_of(row)])
            if i % EXPORT_BATCH_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def record_export(
    session: Session,
    *,
    user_id: str,
    user_session_id: str | None,
    context: ClientContext,
    resource: str,
    filters: dict[str, Any],
) -> None:
    """Audit and record an export (before its first byte is streamed)."""
    used = {k: v for k, v in filters.items() if v is not None}
    recorder.audit(
        session,
        action=AuditAction.EXPORTED,
        user_id=user_id,
        context=context,
        resource_type=resource,
        new_values={"format": "csv", "filters": used},
    )
    recorder.event(
        session,
        event_type=EventType.EXPORTED,
        user_id=user_id,
        context=context,
        data={"resource": resource, "format": "csv"},
        user_session_id=user_session_id,
    )


# --- query analytics ---------------------------------------------------------------------------

ANALYTICS_CSV_COLUMNS = (
    "id",
    "query_id",
    "timestamp",
    "user_id",
    "connection_id",
    "chat_session_id",
    "source",
    "generator",
    "question",
    "sql_query",
    "success",
    "error_code",
    "error_message",
    "execution_time",
    "row_count",
    "chart_type",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "llm_model",
    "llm_cost_estimate",
)


def analytics_conditions(
    *,
    user_id: str | None = None,
    connection_id: str | None = None,
    success: bool | None = None,
    source: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    check_time_range(since, until)
    qa = QueryAnalytics
    conds: list[ColumnElement[bool]] = []
    if user_id is not None:
        conds.append(qa.user_id == user_id)
    if connection_id is not None:
        conds.append(qa.connection_id == connection_id)
    if success is not None:
        conds.append(qa.success == success)
    if source is not None:
        conds.append(qa.source == source)
    if model is not None:
        conds.append(qa.llm_model == model)
    if since is not None:
        conds.append(qa.timestamp >= since)
    if until is not None:
        conds.append(qa.timestamp < until)
    if text:
        conds.append(
            or_(
                qa.question.icontains(text, autoescape=True),
                qa.sql_query.icontains(text, autoescape=True),
                qa.error_message.icontains(text, autoescape=True),
            )
        )
    return conds


def list_queries(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[QueryAnalytics], str | None]:
    return _newest_first_page(
        session,
        select(QueryAnalytics).where(*conditions),
        timestamp=QueryAnalytics.timestamp,
        row_id=QueryAnalytics.id,
        limit=limit,
        cursor=cursor,
    )


def queries_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return (
        select(QueryAnalytics)
        .where(*conditions)
        .order_by(QueryAnalytics.timestamp.desc(), QueryAnalytics.id.desc())
    )


def _group_key(
    session: Session, group_by: GroupBy
) -> ColumnElement[Any] | InstrumentedAttribute[Any]:
    qa = QueryAnalytics
    if group_by == "user":
        return qa.user_id
    if group_by == "model":
        return qa.llm_model
    if group_by == "connection":
        return qa.connection_id
    if session.get_bind().dialect.name == "postgresql":
        # A literal (not a bound parameter), so GROUP BY matches the selected expression.
        return cast(func.timezone(literal_column("'UTC'"), qa.timestamp), Date)
    return func.date(qa.timestamp)


NULL_KEY = "\x00null"
"""Stands in for a NULL group key inside pandas, where None turns into NaN and breaks joins."""


def _key_text(value: Any) -> str:
    if value is None or (not isinstance(value, str | date) and pd.isna(value)):
        return NULL_KEY
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


_AGGREGATE_COLUMNS = [
    "count",
    "success_count",
    "timed_count",
    "avg_execution_time_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
]


def _aggregates() -> list[ColumnElement[Any]]:
    qa = QueryAnalytics
    return [
        func.count(),
        func.sum(case((qa.success.is_(True), 1), else_=0)),
        func.count(qa.execution_time),
        func.avg(qa.execution_time),
        func.coalesce(func.sum(qa.prompt_tokens), 0),
        func.coalesce(func.sum(qa.completion_tokens), 0),
        func.coalesce(func.sum(qa.total_tokens), 0),
        func.coalesce(func.sum(qa.llm_cost_estimate), 0.0),
    ]


def _frame(session: Session, stmt: Select[Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in session.execute(stmt)], columns=columns)


def _postgresql_summary(
    session: Session, group_by: GroupBy, conditions: Sequence[ColumnElement[bool]]
) -> tuple[pd.DataFrame, pd.Series]:
    """Groups and the total in one scan: GROUPING SETS, with exact percentiles in SQL."""
    qa = QueryAnalytics
    key = _group_key(session, group_by)
    stmt = (
        select(
            key,
            func.grouping(key),
            *_aggregates(),
            func.percentile_cont(0.5).within_group(qa.execution_time),
            func.percentile_cont(0.95).within_group(qa.execution_time),
        )
        .where(*conditions)
        .group_by(func.grouping_sets(tuple_(key), tuple_()))
    )
    frame = _frame(session, stmt, ["key", "is_total", *_AGGREGATE_COLUMNS, "p50", "p95"])
    is_total = frame["is_total"] == 1
    groups = frame[~is_total].drop(columns="is_total").reset_index(drop=True)
    groups["key"] = [_key_text(k) for k in groups["key"]]
    return groups, frame[is_total].iloc[0]


def _sqlite_summary(
    session: Session, group_by: GroupBy, conditions: Sequence[ColumnElement[bool]]
) -> tuple[pd.DataFrame, pd.Series]:
    """SQLite has no percentiles: it aggregates per group, pandas takes the percentiles of the
    filtered execution times (two narrow columns) and sums up the total."""
    qa = QueryAnalytics
    key = _group_key(session, group_by).label("key")
    groups = _frame(
        session,
        select(key, *_aggregates()).where(*conditions).group_by(key),
        ["key", *_AGGREGATE_COLUMNS],
    )
    groups["key"] = [_key_text(k) for k in groups["key"]]
    times = _frame(
        session,
        select(key, qa.execution_time).where(*conditions, qa.execution_time.is_not(None)),
        ["key", "ms"],
    )
    times["key"] = times["key"].astype(object).where(times["key"].notna(), NULL_KEY)
    times["ms"] = times["ms"].astype(float)
    if len(times):
        percentiles = (
            times.groupby("key")["ms"]
            .quantile([0.5, 0.95])
            .unstack()
            .rename(columns={0.5: "p50", 0.95: "p95"})
            .reset_index()
        )
        percentiles["key"] = percentiles["key"].astype(object)
        groups["key"] = groups["key"].astype(object)
        groups = groups.merge(percentiles, on="key", how="left")
    else:
        groups["p50"] = groups["p95"] = None
    timed = groups["timed_count"].sum() if len(groups) else 0
    total = pd.Series(
        {
            **{c: groups[c].sum() if len(groups) else 0 for c in _AGGREGATE_COLUMNS},
            "avg_execution_time_ms": (
                (groups["avg_execution_time_ms"].fillna(0) * groups["timed_count"]).sum() / timed
                if timed
                else None
            ),
            "p50": times["ms"].quantile(0.5) if len(times) else None,
            "p95": times["ms"].quantile(0.95) if len(times) else None,
        }
    )
    return groups, total


def summarize_queries(
    session: Session,
    *,
    group_by: GroupBy,
    since: datetime,
    until: datetime,
    conditions: Sequence[ColumnElement[bool]],
) -> AnalyticsSummary:
    """Counts, success rate, p50/p95 execution time, tokens and cost per group and in total.

    The database filters and aggregates (on PostgreSQL everything, in one scan); pandas takes
    what SQLite cannot compute (percentiles) and assembles the groups.
    """
    if session.get_bind().dialect.name == "postgresql":
        groups, total = _postgresql_summary(session, group_by, conditions)
    else:
        groups, total = _sqlite_summary(session, group_by, conditions)
    if group_by == "day":
        groups = groups.sort_values("key")
    else:
        groups = groups.sort_values(["count", "key"], ascending=[False, True])
    return AnalyticsSummary(
        group_by=group_by,
        since=since,
        until=until,
        totals=_summary_group(None, total),
        groups=[
            _summary_group(None if row["key"] == NULL_KEY else str(row["key"]), row)
            for row in groups.to_dict("records")
        ],
    )


def _number_or_none(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return round(float(value), 3)


def _summary_group(key: str | None, row: Any) -> SummaryGroup:
    count = int(row["count"] or 0)
    success_count = int(row["success_count"] or 0)
    return SummaryGroup(
        key=key,
        count=count,
        success_count=success_count,
        failure_count=count - success_count,
        success_rate=round(success_count / count, 4) if count else None,
        p50_execution_time_ms=_number_or_none(row["p50"]),
        p95_execution_time_ms=_number_or_none(row["p95"]),
        avg_execution_time_ms=_number_or_none(row["avg_execution_time_ms"]),
        prompt_tokens=int(row["prompt_tokens"] or 0),
        completion_tokens=int(row["completion_tokens"] or 0),
        total_tokens=int(row["total_tokens"] or 0),
        cost_usd=round(float(row["cost_usd"] or 0.0), 6),
    )


# --- audit log ---------------------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    "id",
    "timestamp",
    "user_id",
    "action",
    "resource_type",
    "resource_id",
    "success",
    "error_message",
    "old_values",
    "new_values",
    "ip_address",
    "user_agent",
    "request_id",
    "prev_hash",
    "row_hash",
)


def audit_conditions(
    *,
    user_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    check_time_range(since, until)
    conds: list[ColumnElement[bool]] = []
    if user_id is not None:
        conds.append(AuditLog.user_id == user_id)
    if action is not None:
        conds.append(AuditLog.action == action)
    if resource_type is not None:
        conds.append(AuditLog.resource_type == resource_type)
    if resource_id is not None:
        conds.append(AuditLog.resource_id == resource_id)
    if success is not None:
        conds.append(AuditLog.success == success)
    if since is not None:
        conds.append(AuditLog.timestamp >= since)
    if until is not None:
        conds.append(AuditLog.timestamp < until)
    if text:
        conds.append(
            or_(
                AuditLog.action.icontains(text, autoescape=True),
                AuditLog.resource_id.icontains(text, autoescape=True),
                AuditLog.error_message.icontains(text, autoescape=True),
            )
        )
    return conds


def list_audit_logs(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditLog], str | None]:
    return _newest_first_page(
        session,
        select(AuditLog).where(*conditions),
        timestamp=AuditLog.timestamp,
        row_id=AuditLog.id,
        limit=limit,
        cursor=cursor,
    )


def audit_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(AuditLog).where(*conditions).order_by(AuditLog.id.desc())


def verify_audit_chain(session: Session) -> AuditChainReport:
    """Walk the chain in id order; report the first row whose hash or link does not match.

    An edited row fails its own hash; a deleted row breaks the link of the row after it. (A
    deletion of the newest rows leaves a shorter chain that still verifies; compare
    `last_hash` with one kept elsewhere to detect it.)
    """
    prev_hash: str | None = None
    checked = 0
    rows = session.scalars(
        select(AuditLog).order_by(AuditLog.id).execution_options(yield_per=EXPORT_BATCH_ROWS)
    )
    for row in rows:
        checked += 1
        if row.row_hash is None:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="unhashed_row"
            )
        if row.prev_hash != prev_hash:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="link_broken"
            )
        if compute_row_hash(audit_row_content(row), row.prev_hash) != row.row_hash:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="row_modified"
            )
        prev_hash = row.row_hash
    return AuditChainReport(intact=True, checked_rows=checked, last_hash=prev_hash)


# --- events ------------------------------------------------------------------------------------

EVENT_CSV_COLUMNS = (
    "id",
    "timestamp",
    "event_type",
    "user_id",
    "session_id",
    "event_data",
    "ip_address",
    "user_agent",
)


def event_conditions(
    *,
    event_type: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    check_time_range(since, until)
    conds: list[ColumnElement[bool]] = []
    if text:
        conds.append(
            or_(
                Event.event_type.icontains(text, autoescape=True),
                cast(Event.event_data, String).icontains(text, autoescape=True),
            )
        )
    if event_type is not None:
        conds.append(Event.event_type == event_type)
    if user_id is not None:
        conds.append(Event.user_id == user_id)
    if session_id is not None:
        conds.append(Event.session_id == session_id)
    if since is not None:
        conds.append(Event.timestamp >= since)
    if until is not None:
        conds.append(Event.timestamp < until)
    return conds


def list_events(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[Event], str | None]:
    return _newest_first_page(
        session,
        select(Event).where(*conditions),
        timestamp=Event.timestamp,
        row_id=Event.id,
        limit=limit,
        cursor=cursor,
    )


def events_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(Event).where(*conditions).order_by(Event.timestamp.desc(), Event.id.desc())


# --- performance metrics -----------------------------------------------------------------------


def summarize_metrics(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    metric_name: str | None = None,
) -> MetricsReport:
    """count, p50, p95, p99, mean and max per metric name and label set over the window.

    The labels (route, method, status, stage, source) are extracted from the JSON column and
    grouped on in SQL; PostgreSQL computes the percentiles too, for SQLite pandas takes them
    from the grouped values.
    """
    check_time_range(since, until)
    pm = PerformanceMetric
    conditions = [pm.timestamp >= since, pm.timestamp < until]
    if metric_name is not None:
        conditions.append(pm.metric_name == metric_name)
    rows = (
        select(
            pm.metric_name.label("name"),
            pm.metric_unit.label("unit"),
            *[pm.additional_data[label].as_string().label(label) for label in PROMETHEUS_LABELS],
            pm.metric_value.label("value"),
        )
        .where(*conditions)
        .subquery()
    )
    keys = [rows.c.name, *[rows.c[label] for label in PROMETHEUS_LABELS]]
    key_names = ["name", *PROMETHEUS_LABELS]
    stat_names = ["unit", "count", "mean", "max"]
    stats = [func.max(rows.c.unit), func.count(), func.avg(rows.c.value), func.max(rows.c.value)]
    if session.get_bind().dialect.name == "postgresql":
        frame = _frame(
            session,
            select(
                *keys,
                *stats,
                *[func.percentile_cont(q).within_group(rows.c.value) for q in (0.5, 0.95, 0.99)],
            ).group_by(*keys),
            [*key_names, *stat_names, "p50", "p95", "p99"],
        )
    else:
        frame = _frame(session, select(*keys, *stats).group_by(*keys), [*key_names, *stat_names])
        values = _frame(session, select(*keys, rows.c.value), [*key_names, "value"])
        for name in key_names:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), "")
            values[name] = values[name].astype(object).where(values[name].notna(), "")
            frame[name] = frame[name].map(str)
            values[name] = values[name].map(str)
        if len(values):
            quantiles = (
                values.groupby(key_names)["value"]
                .quantile([0.5, 0.95, 0.99])
                .unstack()
                .rename(columns={0.5: "p50", 0.95: "p95", 0.99: "p99"})
                .reset_index()
            )
            frame = frame.merge(quantiles, on=key_names, how="left")
    metrics = [
        MetricStat(
            metric_name=str(row["name"]),
            labels={
                label: str(row[label])
                for label in PROMETHEUS_LABELS
                if row[label] is not None and str(row[label]) != ""
            },
            unit=None if row["unit"] is None or pd.isna(row["unit"]) else str(row["unit"]),
            count=int(row["count"]),
            p50=round(float(row["p50"]), 3),
            p95=round(float(row["p95"]), 3),
            p99=round(float(row["p99"]), 3),
            mean=round(float(row["mean"]), 3),
            max=round(float(row["max"]), 3),
        )
        for row in frame.to_dict("records")
    ]
    metrics.sort(key=lambda m: (m.metric_name, sorted(m.labels.items())))
    return MetricsReport(since=since, until=until, metrics=metrics)


def _prometheus_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(writer: MetricWriter) -> str:
    """The writer's histograms (cumulative since the process started), in Prometheus format."""
    writer.flush()
    lines: list[str] = []
    by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], Any]]] = {}
    for (name, labels), histogram in sorted(writer.histogram_snapshot().items()):
        by_name.setdefault(name, []).append((labels, histogram))
    for name, series in by_name.items():
        metric = f"nlsql_{name}_seconds"
        lines.append(f"# HELP {metric} {name.replace('_', ' ')} in seconds.")
        lines.append(f"# TYPE {metric} histogram")
        for labels, histogram in series:
            base = ",".join(f'{k}="{_prometheus_label_value(v)}"' for k, v in labels)
            prefix = base + "," if base else ""
            cumulative = 0
            for bound, bucket in zip(LATENCY_BUCKETS_MS, histogram.bucket_counts, strict=True):
                cumulative += bucket
                lines.append(f'{metric}_bucket{{{prefix}le="{bound / 1000:g}"}} {cumulative}')
            lines.append(f'{metric}_bucket{{{prefix}le="+Inf"}} {histogram.count}')
            braces = f"{{{base}}}" if base else ""
            lines.append(f"{metric}_sum{braces} {histogram.total / 1000:.6f}")
            lines.append(f"{metric}_count{braces} {histogram.count}")
    for counter, value, help_text in (
        ("nlsql_metrics_written_total", writer.written, "Metric rows the batch writer stored."),
        ("nlsql_metrics_dropped_total", writer.dropped, "Metrics dropped (queue full or error)."),
    ):
        lines.append(f"# HELP {counter} {help_text}")
        lines.append(f"# TYPE {counter} counter")
        lines.append(f"{counter} {value}")
    lines.append("# HELP nlsql_metrics_pending Metrics waiting for the batch writer.")
    lines.append("# TYPE nlsql_metrics_pending gauge")
    lines.append(f"nlsql_metrics_pending {writer.pending}")
    return "\n".join(lines) + "\n"
