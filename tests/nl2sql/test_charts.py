"""The chart follows the result's shape, and the spec is Vega-Lite v5 with the data inline."""

from __future__ import annotations

from typing import Any

import pytest

from backend.nl2sql.charts import (
    VEGA_LITE_SCHEMA,
    classify_column,
    suggest_chart,
    with_inline_rows,
)

Cols = list[tuple[str, str | None]]

# (columns, rows, chart_type, x field and type, y field and type)
CASES: list[tuple[Cols, list[list[Any]], str, tuple[str, str] | None, tuple[str, str] | None]] = [
    ([("count", None)], [[42]], "kpi", None, None),
    ([("revenue", "NUMERIC")], [[1234.5]], "kpi", None, None),
    ([("name", None)], [["Ada"]], "kpi", None, None),
    (
        [("month", None), ("revenue", None)],
        [["2023-01", 10.0], ["2023-02", 12.5]],
        "line",
        ("month", "temporal"),
        ("revenue", "quantitative"),
    ),
    (
        [("order_date", "TIMESTAMP"), ("n", "INTEGER")],
        [["2023-01-01 10:00:00", 3]],
        "line",
        ("order_date", "temporal"),
        ("n", "quantitative"),
    ),
    (
        [("day", None), ("orders", None)],
        [["2024-03-01", 5], ["2024-03-02", 7]],
        "line",
        ("day", "temporal"),
        ("orders", "quantitative"),
    ),
    (
        [("year", None), ("total", None)],
        [[2022, 5.0], [2023, 7.0]],
        "line",
        ("year", "temporal"),
        ("total", "quantitative"),
    ),
    (
        [("country", None), ("customers", None)],
        [["France", 10], ["Spain", 4]],
        "bar",
        ("country", "nominal"),
        ("customers", "quantitative"),
    ),
    (
        [("status", "TEXT"), ("avg_cost", None)],
        [["shipped", 3.5], [None, 1.0]],
        "bar",
        ("status", "nominal"),
        ("avg_cost", "quantitative"),
    ),
    (
        [("customer_id", None), ("orders", None)],
        [[1, 5], [2, 3]],
        "bar",
        ("customer_id", "nominal"),
        ("orders", "quantitative"),
    ),
    (
        [("unit_price", None), ("unit_cost", None)],
        [[10.0, 4.0], [20.0, 9.5]],
        "scatter",
        ("unit_price", "quantitative"),
        ("unit_cost", "quantitative"),
    ),
    (
        [("first_name", None), ("last_name", None)],
        [["Ada", "Lovelace"], ["Alan", "Turing"]],
        "table",
        None,
        None,
    ),
    ([("n", None)], [[1], [2]], "table", None, None),
    ([("country", None), ("n", None)], [], "table", None, None),
]


@pytest.mark.parametrize(("columns", "rows", "chart_type", "x", "y"), CASES)
def test_chart_follows_the_shape_of_the_result(
    columns: Cols,
    rows: list[list[Any]],
    chart_type: str,
    x: tuple[str, str] | None,
    y: tuple[str, str] | None,
) -> None:
    chart = suggest_chart(columns, rows)
    assert chart.chart_type == chart_type
    spec = chart.spec
    assert spec["$schema"] == VEGA_LITE_SCHEMA
    # The spec names the answer's rows instead of copying them; inlined, they come back whole.
    assert spec["data"] == {"name": "rows"}
    assert with_inline_rows(spec, rows)["data"]["values"] == [
        dict(zip([c for c, _ in columns], r, strict=True)) for r in rows
    ]
    encoding = spec["encoding"]
    if x is not None:
        assert (encoding["x"]["field"], encoding["x"]["type"]) == x
    if y is not None:
        assert (encoding["y"]["field"], encoding["y"]["type"]) == y
    if chart_type == "kpi":
        assert encoding["text"]["field"] == columns[0][0]


def test_duplicate_and_dotted_column_names_stay_distinct_fields() -> None:
    chart = suggest_chart([("c.name", None), ("c.name", None), ("total", None)], [["a", "b", 1]])
    assert chart.spec["usermeta"]["row_fields"] == ["c.name", "c.name_2", "total"]
    inline = with_inline_rows(chart.spec, [["a", "b", 1]])
    assert inline["data"]["values"] == [{"c.name": "a", "c.name_2": "b", "total": 1}]
    assert chart.spec["encoding"]["x"]["field"] == "c\\.name"


@pytest.mark.parametrize(
    ("name", "declared", "values", "kind"),
    [
        ("amount", None, [1, 2.5, None], "quantitative"),
        ("amount", "NUMERIC(10, 2)", [], "quantitative"),
        ("id", None, [1, 2], "nominal"),
        ("paid_at", None, ["2024-01-01T10:00:00", "2024-01-02T11:00:00"], "temporal"),
        ("hire_date", "DATE", [None], "temporal"),
        ("label", None, ["2024-13-45"], "nominal"),
        ("city", None, ["Paris", "Lyon"], "nominal"),
        ("is_active", None, [True, False], "nominal"),
        ("score", None, [1900, 2000], "quantitative"),
        ("year", None, ["2021", "2022"], "temporal"),
        ("order_year", None, [2021], "temporal"),
    ],
)
def test_columns_are_classified(
    name: str, declared: str | None, values: list[Any], kind: str
) -> None:
    assert classify_column(name, declared, values) == kind
