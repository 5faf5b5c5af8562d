"""The guard with a layer's hidden items: one line per case, SQL in, verdict out."""

from __future__ import annotations

import pytest

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.errors import SqlReadsHidden
from backend.nl2sql.guard import guard_sql, names_hidden
from backend.semantic.visibility import HiddenItems


def _table(name: str, *columns: str) -> TableInfo:
    return TableInfo(name=name, columns=[ColumnInfo(name=c, type="TEXT") for c in columns])


SNAPSHOT = SchemaSnapshot(
    db_type="postgresql",
    database_name="crm",
    tables=[
        _table("accounts", "id", "name", "ssn"),
        _table("orders", "id", "account_id", "ssn", "total"),
        _table("payroll", "id", "salary"),
    ],
)
HIDDEN = HiddenItems(tables=frozenset({"payroll"}), columns={"accounts": frozenset({"ssn"})})

REFUSED = [
    ("SELECT ssn FROM accounts", "hidden_column"),
    ("SELECT a.ssn FROM accounts AS a", "hidden_column"),
    ('SELECT "SSN" FROM accounts', "hidden_column"),
    ("SELECT id FROM accounts WHERE ssn LIKE '1%'", "hidden_column"),
    ("SELECT COUNT(*) FROM accounts GROUP BY ssn", "hidden_column"),
    ("SELECT accounts FROM accounts", "hidden_column"),
    ("SELECT to_jsonb(a) FROM accounts AS a", "hidden_column"),
    ("SELECT * FROM accounts NATURAL JOIN orders", "hidden_column"),
    ("SELECT a.id FROM accounts AS a JOIN orders USING (ssn)", "hidden_column"),
    ("SELECT x.ssn FROM (SELECT ssn FROM accounts) AS x", "hidden_column"),
    ("SELECT array_agg(a.*) FROM accounts AS a", "hidden_column"),
    ("SELECT * FROM payroll", "hidden_table"),
    ("SELECT COUNT(*) FROM public.payroll", "hidden_table"),
    ("SELECT id FROM orders WHERE id IN (SELECT id FROM payroll)", "hidden_table"),
    ("WITH p AS (SELECT salary FROM payroll) SELECT * FROM p", "hidden_table"),
]

NARROWED = [
    ("SELECT * FROM accounts", 'SELECT accounts."id", accounts."name" FROM accounts'),
    ("SELECT a.* FROM accounts AS a", 'SELECT a."id", a."name" FROM accounts AS a'),
    (
        "WITH c AS (SELECT * FROM accounts) SELECT * FROM c",
        'WITH c AS (SELECT accounts."id", accounts."name" FROM accounts) SELECT * FROM c',
    ),
    (
        "SELECT * FROM accounts AS a JOIN orders AS o ON o.account_id = a.id",
        'SELECT a."id", a."name", o."id", o."account_id", o."ssn", o."total" FROM accounts AS a '
        "JOIN orders AS o ON o.account_id = a.id",
    ),
    ("SELECT COUNT(*) FROM accounts", "SELECT COUNT(*) FROM accounts"),
    (
        "SELECT l.* FROM accounts AS a, LATERAL (SELECT a.*) AS l",
        'SELECT l.* FROM accounts AS a, LATERAL (SELECT a."id", a."name") AS l',
    ),
    ("SELECT o.ssn FROM orders AS o", "SELECT o.ssn FROM orders AS o"),
    ("SELECT ssn FROM orders", "SELECT ssn FROM orders"),
]


# Unqualified and aliased names are resolved against the tables in their scope: only a name that
# may read a hidden column (also an ambiguous one) is refused.
RESOLVED_VISIBLE = [
    "SELECT ssn FROM orders WHERE account_id IN (SELECT id FROM accounts)",
    "SELECT o.id FROM orders AS o WHERE EXISTS "
    "(SELECT 1 FROM accounts AS a WHERE a.id = o.account_id) AND ssn = '1'",
    "WITH a AS (SELECT id FROM accounts) SELECT ssn FROM orders JOIN a ON a.id = orders.account_id",
    "SELECT a.id FROM accounts AS a WHERE EXISTS (SELECT 1 FROM orders AS a WHERE a.ssn = '1')",
    "SELECT (SELECT ssn FROM orders LIMIT 1) FROM accounts",
    "SELECT ssn FROM orders UNION SELECT name FROM accounts",
    "SELECT a.name AS ssn FROM accounts AS a ORDER BY ssn",
    "SELECT ssn FROM orders UNION SELECT name FROM accounts ORDER BY ssn",
    # the derived table has `ssn` (orders' own), so the name stops there
    "SELECT id FROM accounts AS a WHERE EXISTS "
    "(SELECT 1 FROM (SELECT * FROM orders) AS x WHERE ssn = '1')",
    "SELECT id FROM accounts AS a WHERE EXISTS "
    "(SELECT 1 FROM (SELECT o.* FROM orders AS o) AS x WHERE ssn = '1')",
]
RESOLVED_HIDDEN = [
    ("SELECT ssn FROM orders JOIN accounts ON accounts.id = orders.account_id", "accounts.ssn"),
    ("SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM accounts WHERE ssn = '1')", "accounts.ssn"),
    (
        "SELECT id FROM accounts AS a WHERE EXISTS (SELECT 1 FROM orders AS o WHERE o.ssn = a.ssn)",
        "accounts.ssn",
    ),
    ("SELECT (SELECT ssn LIMIT 1) FROM accounts", "accounts.ssn"),
    ("SELECT name FROM accounts UNION SELECT ssn FROM accounts", "accounts.ssn"),
    ("SELECT a.name AS ssn FROM accounts AS a ORDER BY ssn || ''", "accounts.ssn"),
    ("SELECT x FROM accounts AS x", "accounts"),
    # `*` over accounts is narrowed, so `ssn` is not the derived table's: it is the outer one's
    (
        "SELECT id FROM accounts AS a WHERE EXISTS "
        "(SELECT 1 FROM (SELECT * FROM accounts) AS x WHERE ssn = '1')",
        "accounts.ssn",
    ),
    (
        "WITH c AS (SELECT * FROM accounts) "
        "SELECT id FROM accounts AS a WHERE EXISTS (SELECT 1 FROM c WHERE ssn = '1')",
        "accounts.ssn",
    ),
    (
        "SELECT id FROM accounts AS a WHERE EXISTS "
        "(SELECT 1 FROM generate_series(1, 3) AS g WHERE ssn = '1')",
        "accounts.ssn",
    ),
]

# DuckDB's star modifiers keep their meaning when `*` is narrowed to the visible columns.
STAR_MODIFIERS = [
    ("SELECT * EXCLUDE (name) FROM accounts", 'SELECT accounts."id" FROM accounts'),
    ("SELECT * EXCLUDE (ssn) FROM accounts", 'SELECT accounts."id", accounts."name" FROM accounts'),
    (
        "SELECT * REPLACE (UPPER(name) AS name) FROM accounts",
        'SELECT accounts."id", UPPER(name) AS name FROM accounts',
    ),
    ("SELECT a.* EXCLUDE (name) FROM accounts AS a", 'SELECT a."id" FROM accounts AS a'),
    (
        "SELECT * RENAME (name AS n) FROM accounts",
        'SELECT accounts."id", accounts."name" AS n FROM accounts',
    ),
    (
        "SELECT * EXCLUDE (o.ssn) FROM accounts AS a JOIN orders AS o ON o.account_id = a.id",
        'SELECT a."id", a."name", o."id", o."account_id", o."total" '
        "FROM accounts AS a JOIN orders AS o ON o.account_id = a.id",
    ),
    (
        "SELECT * EXCLUDE (total) FROM accounts AS a "
        "JOIN (SELECT id, total FROM orders) AS o ON o.id = a.id",
        'SELECT a."id", a."name", o.* EXCLUDE (total) FROM accounts AS a '
        "JOIN (SELECT id, total FROM orders) AS o ON o.id = a.id",
    ),
    ("SELECT * EXCLUDE (ssn) FROM orders", "SELECT * EXCLUDE (ssn) FROM orders"),
]


@pytest.mark.parametrize("sql", RESOLVED_VISIBLE)
def test_a_name_that_resolves_to_a_visible_column_passes(sql: str) -> None:
    guard_sql(sql, snapshot=SNAPSHOT, row_cap=None, hidden=HIDDEN)


@pytest.mark.parametrize(("sql", "column"), RESOLVED_HIDDEN)
def test_a_name_that_may_read_a_hidden_column_is_refused(sql: str, column: str) -> None:
    with pytest.raises(SqlReadsHidden) as refused:
        guard_sql(sql, snapshot=SNAPSHOT, row_cap=None, hidden=HIDDEN)
    assert refused.value.details == {"rule": "hidden_column", "column": column}


@pytest.mark.parametrize(("sql", "expected"), STAR_MODIFIERS)
def test_star_modifiers_survive_narrowing(sql: str, expected: str) -> None:
    guarded = guard_sql(sql, snapshot=SNAPSHOT, dialect="duckdb", row_cap=None, hidden=HIDDEN)
    assert guarded.sql == expected


@pytest.mark.parametrize(
    "sql",
    ["SELECT * REPLACE (ssn AS name) FROM accounts", "SELECT * RENAME (ssn AS s) FROM accounts"],
)
def test_star_modifiers_that_read_a_hidden_column_are_refused(sql: str) -> None:
    with pytest.raises(SqlReadsHidden):
        guard_sql(sql, snapshot=SNAPSHOT, dialect="duckdb", row_cap=None, hidden=HIDDEN)


@pytest.mark.parametrize(("sql", "rule"), REFUSED)
def test_reading_a_hidden_item_is_refused(sql: str, rule: str) -> None:
    with pytest.raises(SqlReadsHidden) as refused:
        guard_sql(sql, snapshot=SNAPSHOT, row_cap=None, hidden=HIDDEN)
    assert refused.value.details["rule"] == rule
    assert refused.value.code == "sql_reads_hidden" and refused.value.status_code == 400


@pytest.mark.parametrize(("sql", "expected"), NARROWED)
def test_stars_are_narrowed_to_the_visible_columns(sql: str, expected: str) -> None:
    assert guard_sql(sql, snapshot=SNAPSHOT, row_cap=None, hidden=HIDDEN).sql == expected


@pytest.mark.parametrize("sql", [sql for sql, _ in REFUSED if "payroll" not in sql][:4])
def test_without_a_layer_the_same_sql_passes(sql: str) -> None:
    guard_sql(sql, snapshot=SNAPSHOT, row_cap=None)


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT ssn FROM orders", True),  # by name alone: errs on yes
        ("SELECT id FROM payroll", True),
        ("SELECT id FROM accounts WHERE name = :name", False),
        ("SELECT * FROM accounts", False),
        ("SELECT (", True),
    ],
)
def test_names_hidden_reads_the_text_for_what_a_generator_would_see(sql: str, names: bool) -> None:
    assert names_hidden(sql, dialect="postgresql", hidden=HIDDEN) is names
