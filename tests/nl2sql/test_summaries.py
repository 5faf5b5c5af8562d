"""The plain-language summary of a result: one line per case, rows in, sentence out."""

from __future__ import annotations

from typing import Any

import pytest

from backend.nl2sql.summaries import format_number, format_value, summarize_result

MONTHLY = [["2024-01", 100.5], ["2024-02", 50.25], ["2024-10", 48073.4], ["2024-11", 300.0]]

CASES: list[tuple[list[tuple[str, str | None]], list[list[Any]], bool, str | None]] = [
    ([], [], False, None),
    ([("n", "INTEGER")], [], False, "No rows matched."),
    ([("total_revenue", "REAL")], [[18328.409999999996]], False, "Total revenue: 18,328."),
    ([("average", "REAL")], [[12.3456]], False, "Average: 12.35."),
    (
        [("month", "TEXT"), ("revenue", "REAL")],
        MONTHLY,
        False,
        "Revenue peaked in October 2024 at 48,073; the lowest month was February 2024 (50.25)."
        " Overall up 199% from January 2024 to November 2024.",
    ),
    (
        [("country", "TEXT"), ("customers", "INTEGER")],
        [["DE", 10], ["FR", 30], ["US", 120]],
        False,
        "Customers is highest for US (120) and lowest for DE (10), across 3 countries.",
    ),
    (
        [("status", "TEXT"), ("n", "INTEGER")],
        [["a", 1], ["b", 1]],
        False,
        "N is 1 for every status.",
    ),
    (
        [("name", "TEXT"), ("city", "TEXT")],
        [["Ann", "Oslo"], ["Bo", "Rome"], ["Cy", "Lima"], ["Di", "Kyiv"]],
        True,
        "4 rows: Ann, Bo, Cy and 1 more. Only the first 4 rows are shown.",
    ),
    (
        [("name", "TEXT"), ("orders", "INTEGER")],
        [["Ann", 3]],
        False,
        "One row: name Ann, orders 3.",
    ),
]


@pytest.mark.parametrize(("columns", "rows", "truncated", "expected"), CASES)
def test_summary(
    columns: list[tuple[str, str | None]], rows: list[list[Any]], truncated: bool, expected: str
) -> None:
    assert summarize_result(columns, rows, truncated=truncated) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (18328.409999999996, "18,328"),
        (3200, "3,200"),
        (0.5, "0.5"),
        (2.0, "2"),
        (-1234.5, "-1,234"),
        ("2024-10", "October 2024"),
        ("2024-02-09", "9 February 2024"),
        (None, "nothing"),
    ],
)
def test_values_are_formatted_for_people(value: Any, shown: str) -> None:
    assert format_value(value) == shown
    if isinstance(value, float | int):
        assert format_number(value) == shown
