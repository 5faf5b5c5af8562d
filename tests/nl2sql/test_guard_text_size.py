"""Padding and formatting functions build their whole result in one call, where no statement
timeout reaches (`lpad('x', 1000000000)` held 2 GB inside the platform's process on DuckDB;
SQLite 3.40's `printf('%.*c', 2000000000, 'x')` ran half a minute past the timeout). The guard
takes their sizes only as literal numbers up to `MAX_BUILT_TEXT`; ordinary formatting passes."""

from __future__ import annotations

import pytest

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import MAX_BUILT_TEXT, guard_sql


def _snapshot(db_type: str) -> SchemaSnapshot:
    return SchemaSnapshot(
        db_type=db_type,
        database_name="shop",
        tables=[
            TableInfo(
                name="t",
                columns=[ColumnInfo(name="a", type="TEXT"), ColumnInfo(name="n", type="INTEGER")],
            )
        ],
    )


def _guard(db_type: str, sql: str) -> str:
    return guard_sql(sql, snapshot=_snapshot(db_type), dialect=db_type, row_cap=100).sql


@pytest.mark.parametrize(
    ("db_type", "sql"),
    [
        ("sqlite", "SELECT printf('%.*c', 2000000000, 'x')"),
        ("sqlite", "SELECT printf('%2000000000c', 'x')"),
        ("sqlite", "SELECT printf('%*d', n, n) FROM t"),
        ("sqlite", "SELECT printf(a, n) FROM t"),
        ("sqlite", "SELECT format('%.999999999f', 1.5)"),
        ("duckdb", "SELECT lpad('x', 1000000000, 'y')"),
        ("duckdb", "SELECT rpad(a, n * 1000, 'y') FROM t"),
        ("duckdb", "SELECT format('{:>1000000000}', a) FROM t"),
        ("duckdb", "SELECT format('{:{}}', a, n) FROM t"),
        ("postgresql", "SELECT lpad(a, n, '0') FROM t"),
        ("postgresql", f"SELECT format('%{MAX_BUILT_TEXT + 1}s', a) FROM t"),
        ("mysql", "SELECT lpad(a, 99999999999, '0') FROM t"),
    ],
)
def test_huge_or_unknown_sizes_are_refused(db_type: str, sql: str) -> None:
    with pytest.raises(GuardRefused) as refused:
        _guard(db_type, sql)
    assert refused.value.details["rule"] == "text_size"
    assert refused.value.details["max_size"] == MAX_BUILT_TEXT


@pytest.mark.parametrize(
    ("db_type", "sql"),
    [
        ("sqlite", "SELECT printf('%.2f', n) FROM t"),
        ("sqlite", "SELECT printf('%5.1f%%', n) FROM t"),
        ("sqlite", "SELECT format('%d items of %s', n, a) FROM t"),
        ("duckdb", "SELECT lpad(a, 5, '0') FROM t"),
        ("duckdb", "SELECT format('{} and {:>10}', a, n) FROM t"),
        ("duckdb", "SELECT format('{:,.2f}', n) FROM t"),
        ("postgresql", "SELECT rpad(a, 10) FROM t"),
        ("postgresql", "SELECT format('%1$s-%2$s', a, n) FROM t"),
        ("mysql", f"SELECT lpad(a, {MAX_BUILT_TEXT}, '0') FROM t"),
    ],
)
def test_ordinary_formatting_passes(db_type: str, sql: str) -> None:
    assert _guard(db_type, sql)
