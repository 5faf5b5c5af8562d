"""Choosing a chart for a result and writing it as a Vega-Lite v5 spec.

The spec does not copy the rows: its data is the named data set `rows`, which a client fills
from the answer's own `rows` (one object per row, keyed by `usermeta.row_fields`), so every
value is carried once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
ROWS_DATA_NAME = "rows"
"""The name of the spec's data set: the answer's rows."""

ChartType = Literal["kpi", "line", "bar", "scatter", "table"]
FieldType = Literal["quantitative", "temporal", "nominal"]

_TEMPORAL_TYPE_WORDS = ("DATE", "TIME")
_NUMERIC_TYPE_WORDS = ("INT", "NUM", "DEC", "FLOAT", "REAL", "DOUBLE", "MONEY")
_TEMPORAL_NAME_WORDS = ("date", "month", "year", "day", "week", "quarter", "time", "period")
_TEMPORAL_NAME_SUFFIXES = ("_at", "_on")
_SAMPLE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Chart:
    chart_type: ChartType
    spec: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    """The key in `data.values` (unique across the result)."""
    kind: FieldType


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_date_text(value: Any) -> bool:
    if not isinstance(value, str) or not 4 <= len(value) <= 40 or not value[:4].isdigit():
        return False
    for fmt in ("%Y-%m", "%Y-%m-%d"):
        try:
            dt.datetime.strptime(value, fmt)
            return True
        except ValueError:
            pass
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_year(value: Any) -> bool:
    """A year as a number or as text (SQLite's strftime('%Y') answers text)."""
    if isinstance(value, str) and len(value) == 4 and value.isdigit():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2200


def _name_says_time(name: str) -> bool:
    lowered = name.lower()
    words = lowered.replace("-", "_").replace(" ", "_").split("_")
    return any(w in _TEMPORAL_NAME_WORDS for w in words) or lowered.endswith(
        _TEMPORAL_NAME_SUFFIXES
    )


def _name_says_identifier(name: str) -> bool:
    lowered = name.lower()
    return lowered == "id" or lowered.endswith("_id")


def classify_column(name: str, declared_type: str | None, values: Sequence[Any]) -> FieldType:
    """What a column is on a chart: a measure, a time axis or a category."""
    present = [v for v in values[:_SAMPLE_SIZE] if v is not None]
    upper = (declared_type or "").upper()
    if any(w in upper for w in _TEMPORAL_TYPE_WORDS):
        return "temporal"
    if present and all(_is_date_text(v) for v in present):
        return "temporal"
    if present and _name_says_time(name) and all(_is_year(v) for v in present):
        return "temporal"
    if present and all(_is_number(v) for v in present):
        return "nominal" if _name_says_identifier(name) else "quantitative"
    if not present and any(w in upper for w in _NUMERIC_TYPE_WORDS):
        return "quantitative"
    return "nominal"


def _field_ref(name: str) -> str:
    # Vega-Lite reads dots and brackets in a field name as nested access.
    return name.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[").replace("]", "\\]")


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for raw in names:
        name = raw or "column"
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count + 1}")
    return unique


def _encoding(field: _Field, **extra: Any) -> dict[str, Any]:
    encoding: dict[str, Any] = {"field": _field_ref(field.name), "type": field.kind}
    if field.kind == "temporal" and _name_says_time(field.name) and "year" in field.name.lower():
        encoding["timeUnit"] = "year"
    encoding.update(extra)
    return encoding


def suggest_chart(
    columns: Sequence[tuple[str, str | None]], rows: Sequence[Sequence[Any]]
) -> Chart:
    """Pick a chart for the result and return it with its Vega-Lite spec (data by name).

    `columns` are (name, declared type or None) pairs; `rows` are JSON-safe value lists.
    """
    names = _unique_names([name for name, _ in columns])
    fields = [
        _Field(name, classify_column(name, declared, [row[i] for row in rows if i < len(row)]))
        for i, (name, (_, declared)) in enumerate(zip(names, columns, strict=True))
    ]
    base: dict[str, Any] = {
        "$schema": VEGA_LITE_SCHEMA,
        "data": {"name": ROWS_DATA_NAME},
        "usermeta": {"row_fields": names},
    }

    measures = [f for f in fields if f.kind == "quantitative"]
    times = [f for f in fields if f.kind == "temporal"]
    categories = [f for f in fields if f.kind == "nominal"]

    if len(rows) == 1 and len(fields) == 1:
        only = fields[0]
        spec = {
            **base,
            "mark": {"type": "text", "fontSize": 48},
            "encoding": {"text": _encoding(only)},
            "title": only.name,
        }
        return Chart("kpi", spec)
    if rows and times and measures:
        x, y = times[0], measures[0]
        encoding: dict[str, Any] = {"x": _encoding(x), "y": _encoding(y)}
        if categories:
            encoding["color"] = _encoding(categories[0])
        return Chart(
            "line", {**base, "mark": {"type": "line", "point": True}, "encoding": encoding}
        )
    if rows and categories and measures:
        x, y = categories[0], measures[0]
        # sort: null keeps the query's own ORDER BY.
        encoding = {"x": _encoding(x, sort=None), "y": _encoding(y)}
        if len(categories) > 1:
            encoding["color"] = _encoding(categories[1])
        return Chart("bar", {**base, "mark": "bar", "encoding": encoding})
    if rows and len(measures) >= 2:
        encoding = {"x": _encoding(measures[0]), "y": _encoding(measures[1])}
        return Chart("scatter", {**base, "mark": "point", "encoding": encoding})
    return Chart("table", _table_spec(base, names))


def _table_spec(base: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A grid of text marks: one row per result row, one column per result column."""
    refs = [_field_ref(n) for n in names]
    return {
        **base,
        "transform": [
            {"window": [{"op": "row_number", "as": "__row"}]},
            {"fold": refs, "as": ["__column", "__value"]},
        ],
        "mark": {"type": "text", "align": "left"},
        "encoding": {
            "x": {"field": "__column", "type": "nominal", "sort": names, "axis": {"orient": "top"}},
            "y": {"field": "__row", "type": "ordinal", "axis": None},
            "text": {"field": "__value", "type": "nominal"},
        },
    }


def with_inline_rows(spec: dict[str, Any], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The spec with the rows inline (`data.values`), for tools that render a spec alone."""
    fields = spec.get("usermeta", {}).get("row_fields", [])
    values = [dict(zip(fields, row, strict=False)) for row in rows]
    return {**spec, "data": {"values": values}}
