"""A short plain-English account of what the generated query does."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.data_today import today_note
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef

_AGG_WORDS = {
    "COUNT": "number",
    "SUM": "total",
    "AVG": "average",
    "MIN": "minimum",
    "MAX": "maximum",
}
_OP_WORDS = {
    "=": "is", "!=": "is not", ">": "is more than", ">=": "is at least", "<": "is less than",
    "<=": "is at most", "in": "is one of", "like": "matches", "between": "is between",
    "month<": "falls in a month before", "month>": "falls in a month after",
    "month=": "falls in month",
}  # fmt: skip


def _measure(m: Measure) -> str:
    if m.sql is not None:
        return f"{(m.label or 'measure').replace('_', ' ')} ({m.sql})"
    if m.agg == "PCT":
        met = " and ".join(_filter(f) for f in m.condition)
        return f"percentage of {m.count_table or 'rows'} where {met}"
    if m.since is not None and m.column is not None:
        span = f"{m.unit}s from {m.since.name} to {m.column.name}"
        if m.unit in ("month", "year") and not m.agg:
            span = f"calendar {span}"
        return f"{_AGG_WORDS[m.agg]} {span}" if m.agg else span
    if m.bucket and m.column is not None:
        return f"{m.bucket} of {m.column.name}"
    if m.column is None:
        return f"number of {m.count_table or 'rows'}"
    if m.agg is None and m.via is not None:
        return f"{m.column.name} of the {m.via.table} row {m.via.name} refers to"
    if m.agg is None:
        return m.column.name
    distinct = "distinct " if m.distinct else ""
    return f"{_AGG_WORDS[m.agg]} of {distinct}{m.column.name}"


def _filter(f: Filter) -> str:
    subject = _measure(f.column) if isinstance(f.column, Measure) else f.column.name
    if f.op == "same as":
        named = " and ".join(
            f"{g.column.name} is {g.values[0]}"
            for g in f.subquery_filters
            if isinstance(g.column, ColumnRef) and g.values
        )
        return f"{subject} is the {subject} of the rows where {named}"
    if f.subquery_agg and f.over_rows:
        return (
            f"{subject} {_OP_WORDS.get(f.op, f.op)} the {_AGG_WORDS[f.subquery_agg]} over all "
            "rows (not the average of the groups' figures)"
        )
    if f.subquery_agg:
        return f"{subject} {_OP_WORDS.get(f.op, f.op)} the {_AGG_WORDS[f.subquery_agg]}"
    if f.peer is not None:
        return f"{subject} {_OP_WORDS.get(f.op, f.op)} that of the row {f.peer.name} refers to"
    if f.op == "recent":
        return f"{subject} is within the last {f.values[0]} {f.unit}(s)"
    if f.op == "not recent":
        if f.anchor is not None:
            return (
                f"{subject} is more than {f.values[0]} {f.unit}(s) before the latest "
                f"{f.anchor.name} (the data's last day, standing for today)"
            )
        return f"{subject} is more than {f.values[0]} {f.unit}(s) ago"
    if f.op == "valid on" and f.until is not None:
        return (
            f"{subject} is on or before {f.values[0]} and {f.until.name} is empty or after it"
            f" (the row is running on {f.values[0]})"
        )
    if f.op == "previous":
        return f"{subject} is in the previous calendar {f.unit} (before the current one)"
    if f.op == "this":
        return f"{subject} is in the current {f.unit}"
    if f.op == "is null":
        return f"{subject} is empty (not recorded)"
    if f.op == "is not null":
        return f"{subject} is recorded"
    if f.op == "ieq":
        return f"{subject} is {f.values[0]} (ignoring case; a name not seen in the sampled data)"
    if f.op == "between":
        return f"{subject} is between {f.values[0]} and {f.values[1]}"
    values = ", ".join(str(v) for v in f.values)
    return f"{subject} {_OP_WORDS.get(f.op, f.op)} {values}"


def _group_names(keys: list[Measure]) -> list[str]:
    """Group keys as a person says them: a table's key and its labels are "each <table>"."""
    keyed = {
        k.column.table
        for k in keys
        if k.column is not None and k.column.is_primary_key and k.via is None
    }
    names: list[str] = []
    for k in keys:
        in_keyed = k.column is not None and k.column.table in keyed and k.via is None
        name = f"row of {k.column.table}" if k.column is not None and in_keyed else _measure(k)
        if k.via is not None and k.column is not None:
            name = f"{k.column.table} row {k.via.name} refers to"
        if name not in names:
            names.append(name)
    return names


def explain(intent: Intent) -> str:
    parts: list[str] = []
    shown = ", ".join(_measure(m) for m in intent.select) or "all columns"
    if intent.count_groups:
        parts.append(f"Counts the {intent.table} that pass these conditions")
    else:
        parts.append(f"Shows {'distinct ' if intent.distinct else ''}{shown} from {intent.table}")
    conditions = [_filter(f) for f in intent.filters] + [
        f"{c.name} ({c.sql})" for c in intent.conditions
    ]
    if conditions:
        parts.append("where " + " and ".join(conditions))
    for anti in intent.anti_joins:
        extra = f" with {' and '.join(_filter(f) for f in anti.filters)}" if anti.filters else ""
        related = "a related" if anti.exists else "no related"
        parts.append(f"keeping only rows with {related} {anti.table}{extra}")
    if intent.group_by:
        parts.append("for each " + ", ".join(_group_names(intent.group_by)))
    if intent.having:
        parts.append("keeping groups where " + " and ".join(_filter(h) for h in intent.having))
    if intent.order_by:
        keys = ", ".join(
            f"{_measure(m)} ({'highest' if desc else 'lowest'} first)"
            for m, desc in intent.order_by
        )
        parts.append(f"ordered by {keys}")
    if intent.limit and intent.partition_by:
        within = ", ".join(_measure(m) for m in intent.partition_by)
        parts.append(f"keeping the first (ties included) within each {within}")
    elif intent.limit and intent.offset:
        parts.append(f"only the row ranked {intent.offset + 1}")
    elif intent.limit:
        parts.append(f"top {intent.limit}" if intent.limit > 1 else "only the first row")
    joined = list(intent.extra_tables)
    if joined:
        parts.append("joined with " + ", ".join(joined))
    today = today_note(intent)
    if today is not None:
        parts.append(today)
    return ", ".join(parts) + "."
