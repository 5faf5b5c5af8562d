"""Padding and formatting functions build their whole result in one call, where no statement
timeout reaches (`lpad('x', 1000000000)` held 2 GB inside the platform's process on DuckDB;
SQLite 3.40's `printf('%.*c', 2000000000, 'x')` ran half a minute past the timeout). The guard
takes their sizes only as literal numbers up to `MAX_BUILT_TEXT`; ordinary formatting passes.
The same for text replacing, whose growth multiplies when nested (eight tenfold `replace` calls
held 1 GB in DuckDB, outside its memory limit), and DuckDB's list-building `range` (7 GB and
40 s past the timeout for `range(100000000)`)."""

from __future__ import annotations

import pytest

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import MAX_BUILT_LIST, MAX_BUILT_TEXT, MAX_TEXT_GROWTH, guard_sql


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


def _nested_replace(levels: int, replacement: str = "aaaaaaaaaa") -> str:
    sql = "a"
    for _ in range(levels):
        sql = f"replace({sql}, 'a', '{replacement}')"
    return f"SELECT {sql} FROM t"


@pytest.mark.parametrize(
    ("db_type", "sql", "rule"),
    [
        ("duckdb", _nested_replace(8), "text_size"),
        ("sqlite", _nested_replace(2), "text_size"),  # 100 times longer
        ("postgresql", "SELECT replace(a, 'x', a) FROM t", "text_size"),  # its own size, squared
        ("mysql", f"SELECT replace(a, n, '{'x' * (MAX_TEXT_GROWTH + 1)}') FROM t", "text_size"),
        (
            "duckdb",
            f"SELECT regexp_replace(a, '', '{'b' * MAX_TEXT_GROWTH}', 'g') FROM t",
            "text_size",
        ),
        (
            "duckdb",
            "WITH s AS (SELECT replace(a, 'a', 'aaaaaaaa') AS a FROM t), "
            "u AS (SELECT replace(a, 'a', 'aaaaaaaa') AS a FROM s), "
            "v AS (SELECT replace(a, 'a', 'aaaaaaaa') AS a FROM u), "
            "w AS (SELECT replace(a, 'a', 'aaaaaaaa') AS a FROM v) "
            "SELECT replace(a, 'a', 'aaaaaaaa') FROM w",
            "text_size",  # 8 ** 5 through CTEs, no chain above 8
        ),
        ("duckdb", "SELECT range(100000000)", "list_size"),
        ("duckdb", "SELECT len(generate_series(1, 20000))", "list_size"),
        ("duckdb", "SELECT range(n) FROM t", "list_size"),
        ("duckdb", "SELECT unnest(range(0, 1000000000, 1)) FROM t", "list_size"),
    ],
)
def test_text_replacing_that_multiplies_and_huge_lists_are_refused(
    db_type: str, sql: str, rule: str
) -> None:
    with pytest.raises(GuardRefused) as refused:
        _guard(db_type, sql)
    assert refused.value.details["rule"] == rule


@pytest.mark.parametrize(
    ("db_type", "sql", "expected"),
    [
        (
            "duckdb",
            "SELECT replace(replace(a, '&', '&amp;'), '<', '&lt;') FROM t",
            [("x&amp;&lt;",)],
        ),
        ("duckdb", "SELECT regexp_replace(a, '[^a-z]', '', 'g') FROM t", [("x",)]),
        ("duckdb", "SELECT len(range(-5, 5)) FROM t", [(10,)]),
        ("duckdb", f"SELECT len(generate_series(1, {MAX_BUILT_LIST})) FROM t", [(MAX_BUILT_LIST,)]),
        ("duckdb", "SELECT count(*) FROM range(1000000000) r(i) WHERE i < 3", [(3,)]),
        ("sqlite", "SELECT replace(a, '&', ' and ') FROM t", [("x and <",)]),
        ("sqlite", "SELECT replace(a, '<', '') FROM t", [("x&",)]),
    ],
)
def test_ordinary_replacing_and_small_lists_pass_and_run(
    db_type: str, sql: str, expected: list[tuple[object, ...]], tmp_path: object
) -> None:
    guarded = _guard(db_type, sql)
    if db_type == "duckdb":
        import duckdb

        with duckdb.connect() as con:
            con.execute("CREATE TABLE t AS SELECT 'x&<' AS a, 1 AS n")
            if "1000000000" in guarded:
                return  # accepted in FROM: read row by row (not run here: a billion rows)
            assert con.execute(guarded).fetchall() == expected
    else:
        import sqlite3

        con = sqlite3.connect(":memory:")
        con.execute("CREATE TABLE t AS SELECT 'x&<' AS a, 1 AS n")
        assert con.execute(guarded).fetchall() == expected
        con.close()
