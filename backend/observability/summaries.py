"""Summaries of what was recorded: analytics per day/user/model/connection, metric percentiles.

The database filters and aggregates as far as it can; pandas does the rest (percentiles on
SQLite, which has none) and assembles the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Date, Select, case, cast, func, literal_column, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from backend.observability.metric_writer import PROMETHEUS_LABELS
from backend.observability.models import PerformanceMetric, QueryAnalytics
from backend.observability.schemas import (
    AnalyticsSummary,
    GroupBy,
    MetricsReport,
    MetricStat,
    SummaryGroup,
)
from backend.observability.service import check_time_range

# --- query analytics ---------------------------------------------------------------------------


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
