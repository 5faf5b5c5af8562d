"""The offline engine on the demo shop database, checked against hand-written gold SQL."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood, Turn
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import has_top_level_order, results_match
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.connections.conftest import mysql_admin_url  # noqa: F401 - the MariaDB fixture
from tests.nl2sql.gym import sqlite_snapshot


@pytest.fixture(scope="module")
def shop() -> SchemaSnapshot:
    return sqlite_snapshot(DEMO_DB_PATH, "shop")


@pytest.fixture(scope="module")
def shop_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    *,
    history: list[Turn] | None = None,
    dialect: str = "sqlite",
) -> str:
    request = GenerationRequest(
        question=question, schema=schema, history=history or [], dialect=dialect
    )
    return BuiltinGenerator().generate(request).sql


def rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


# question -> gold SQL (hand-written); the engine's answer must return the same result.
ANSWERS = [
    ("How many customers are in France?",
     "SELECT COUNT(*) FROM customers WHERE country = 'France'"),
    ("average salary of employees per country",
     "SELECT country, AVG(salary) FROM employees GROUP BY country"),
    ("number of orders per status",
     "SELECT status, COUNT(*) FROM orders GROUP BY status"),
    ("top 5 customers by revenue",
     "SELECT c.first_name, c.last_name, SUM(p.amount) FROM customers c"
     " JOIN orders o ON o.customer_id = c.id JOIN payments p ON p.order_id = o.id"
     " GROUP BY c.id ORDER BY SUM(p.amount) DESC LIMIT 5"),
    ("monthly revenue in 2023",
     "SELECT strftime('%Y-%m', paid_at), SUM(amount) FROM payments"
     " WHERE paid_at >= '2023-01-01' AND paid_at < '2024-01-01' GROUP BY 1 ORDER BY 1"),
    ("products never ordered",
     "SELECT name FROM products WHERE id NOT IN (SELECT product_id FROM order_items)"),
    ("customers with more than 3 orders",
     "SELECT first_name, last_name FROM customers WHERE id IN"
     " (SELECT customer_id FROM orders GROUP BY customer_id HAVING COUNT(*) > 3)"),
    ("What is the average unit price of products in each category?",
     "SELECT c.name, AVG(p.unit_price) FROM products p JOIN categories c"
     " ON c.id = p.category_id GROUP BY c.id"),
    ("employees hired before 2020",
     "SELECT first_name, last_name FROM employees WHERE hire_date < '2020-01-01'"),
    ("How many orders were placed before March 2022?",
     "SELECT COUNT(*) FROM orders WHERE order_date < '2022-03-01'"),
    ("what are the different payment methods",
     "SELECT DISTINCT method FROM payments"),
    ("products with unit price between 10 and 20",
     "SELECT name FROM products WHERE unit_price BETWEEN 10 AND 20"),
    ("how many distinct countries do customers come from",
     "SELECT COUNT(DISTINCT country) FROM customers"),
    ("which supplier has the most products",
     "SELECT s.company_name FROM suppliers s JOIN products p ON p.supplier_id = s.id"
     " GROUP BY s.id ORDER BY COUNT(*) DESC LIMIT 1"),
    ("total shipping cost by ship country",
     "SELECT ship_country, SUM(shipping_cost) FROM orders GROUP BY ship_country"),
    ("What is the highest salary of employees?",
     "SELECT MAX(salary) FROM employees"),
    ("what percentage of products are discontinued",
     "SELECT 100.0 * SUM(discontinued) / COUNT(*) FROM products"),
    ("What percentage of orders were returned?",
     "SELECT 100.0 * SUM(status = 'returned') / COUNT(*) FROM orders"),
    ("what share of orders were shipped",
     "SELECT 100.0 * SUM(status = 'shipped') / COUNT(*) FROM orders"),
    ("how many orders took more than 5 days to ship",
     "SELECT COUNT(*) FROM orders WHERE julianday(shipped_date) - julianday(order_date) > 5"),
    ("customers per country",
     "SELECT country, COUNT(*) FROM customers GROUP BY country"),
    ("employees without a manager",
     "SELECT first_name, last_name FROM employees WHERE manager_id IS NULL"),
    ("number of customers with no company name",
     "SELECT COUNT(*) FROM customers WHERE company_name IS NULL"),
    ("how many orders were placed in March 2024",
     "SELECT COUNT(*) FROM orders WHERE order_date >= '2024-03-01' AND order_date < '2024-04-01'"),
    ("list the 3 most recent orders",
     "SELECT id, order_date FROM orders ORDER BY order_date DESC LIMIT 3"),
    ("Show the minimum, average and maximum salary of employees.",
     "SELECT MIN(salary), AVG(salary), MAX(salary) FROM employees"),
    ("How many orders have a ship country of Germany or France?",
     "SELECT COUNT(*) FROM orders WHERE ship_country IN ('Germany', 'France')"),
    ("customers who are not in France",
     "SELECT first_name, last_name FROM customers WHERE country <> 'France'"),
    ("the 3 employees with the highest salary",
     "SELECT first_name, last_name FROM employees ORDER BY salary DESC LIMIT 3"),
    ("number of customers per segment in descending order",
     "SELECT segment, COUNT(*) FROM customers GROUP BY segment ORDER BY COUNT(*) DESC"),
    ("products with a unit price above the average",
     "SELECT name FROM products WHERE unit_price > (SELECT AVG(unit_price) FROM products)"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ANSWERS, ids=[q for q, _ in ANSWERS])
def test_question_gets_the_correct_answer(
    shop: SchemaSnapshot, shop_db: sqlite3.Connection, question: str, gold: str
) -> None:
    sql = ask(shop, question)
    assert results_match(
        rows(shop_db, gold), rows(shop_db, sql), ordered=has_top_level_order(gold)
    ), sql


# (earlier questions, follow-up) -> gold SQL of what the follow-up means in context
FOLLOW_UPS = [
    (["number of orders per status"], "and only for 2023?",
     "SELECT status, COUNT(*) FROM orders WHERE order_date >= '2023-01-01'"
     " AND order_date < '2024-01-01' GROUP BY status"),
    (["total shipping cost by ship country"], "now by month",
     "SELECT strftime('%Y-%m', order_date), SUM(shipping_cost) FROM orders GROUP BY 1 ORDER BY 1"),
    (["How many customers are in France?"], "what about Germany?",
     "SELECT COUNT(*) FROM customers WHERE country = 'Germany'"),
    (["How many customers are in France?", "what about Germany?"], "and only Consumer segment",
     "SELECT COUNT(*) FROM customers WHERE country = 'Germany' AND segment = 'Consumer'"),
    (["number of customers per country"], "exclude France",
     "SELECT country, COUNT(*) FROM customers WHERE country <> 'France' GROUP BY country"),
    (["number of customers per country", "exclude France"], "now by segment",
     "SELECT segment, COUNT(*) FROM customers WHERE country <> 'France' GROUP BY segment"),
    (["How many products are there?"], "Beverages",
     "SELECT COUNT(*) FROM products p JOIN categories c ON c.id = p.category_id"
     " WHERE c.name = 'Beverages'"),
    (["monthly revenue in 2023"], "and for 2022?",
     "SELECT strftime('%Y-%m', paid_at), SUM(amount) FROM payments"
     " WHERE paid_at >= '2022-01-01' AND paid_at < '2023-01-01' GROUP BY 1 ORDER BY 1"),
    # Short, but asking for columns of their own: new questions, not refinements.
    (["How many orders were placed in 2023?"], "Total payment amount by method",
     "SELECT method, SUM(amount) FROM payments GROUP BY method"),
    (["Products never ordered"], "Distinct customer segments",
     "SELECT DISTINCT segment FROM customers"),
]  # fmt: skip


@pytest.mark.parametrize(("earlier", "follow_up", "gold"), FOLLOW_UPS)
def test_follow_up_refines_the_previous_question(
    shop: SchemaSnapshot,
    shop_db: sqlite3.Connection,
    earlier: list[str],
    follow_up: str,
    gold: str,
) -> None:
    history: list[Turn] = []
    for question in earlier:
        history.append(Turn(question=question, sql=ask(shop, question, history=history)))
    sql = ask(shop, follow_up, history=history)
    assert results_match(
        rows(shop_db, gold), rows(shop_db, sql), ordered=has_top_level_order(gold)
    ), sql


def test_a_new_question_after_a_conversation_starts_afresh(shop: SchemaSnapshot) -> None:
    history = [Turn("How many customers are in France?", "SELECT 1")]
    sql = ask(shop, "average salary of employees per country", history=history)
    assert "France" not in sql and "employees" in sql


DECLINES = [
    ("What is the meaning of life?", "table"),
    ("How many customers live in Atlantis?", "Atlantis"),
    ("What is the median shipping cost of orders?", "median"),
    ("How many customers have more than", "comparison"),
]


@pytest.mark.parametrize(("question", "reason"), DECLINES)
def test_engine_declines_instead_of_guessing(
    shop: SchemaSnapshot, question: str, reason: str
) -> None:
    with pytest.raises(QuestionNotUnderstood) as caught:
        ask(shop, question)
    assert reason.lower() in caught.value.message.lower()


def test_decline_reports_what_was_recognised(shop: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood) as caught:
        ask(shop, "How many customers live in Atlantis?")
    assert caught.value.recognised["tables"] == ["customers"]
    assert "count" in caught.value.recognised["aggregates"]  # type: ignore[operator]


def test_generation_carries_an_explanation_and_what_was_recognised(shop: SchemaSnapshot) -> None:
    gen = BuiltinGenerator().generate(
        GenerationRequest(question="How many customers are in France?", schema=shop)
    )
    assert gen.explanation.startswith("Shows number of customers")
    assert "France" in gen.explanation
    assert gen.recognised["values"] == ["country = France"]
    assert gen.prompt_tokens == 0 and gen.completion_tokens == 0


# question, dialect -> fragments the rendered SQL must contain (and it must parse back)
DIALECT_SHAPES = [
    ("monthly revenue in 2023", "postgres", ["TO_CHAR(paid_at, 'YYYY-MM')"]),
    ("monthly revenue in 2023", "mysql", ["DATE_FORMAT(paid_at, '%Y-%m')"]),
    ("monthly revenue in 2023", "duckdb", ["STRFTIME(paid_at, '%Y-%m')"]),
    ("monthly revenue in 2023", "sqlite", ["STRFTIME('%Y-%m', paid_at)"]),
    # counted back from the data's last day (see data_today.py), not the clock
    ("orders in the last 30 days", "postgres", ["AS recorded) + INTERVAL '-30 DAY'"]),
    ("orders in the last 30 days", "mysql", ["AS recorded), INTERVAL -30 DAY)"]),
    ("orders in the last 30 days", "sqlite", ["AS recorded), '-30 days')"]),
    ("number of orders per status", "mysql", ["`status`"]),
    ("How many orders were placed before March?", "sqlite",
     ["CAST(STRFTIME('%m', order_date) AS INTEGER) < 3"]),
    ("How many orders were placed before March?", "postgres",
     ["EXTRACT(MONTH FROM order_date) < 3"]),
]  # fmt: skip


@pytest.mark.parametrize(("question", "dialect", "fragments"), DIALECT_SHAPES)
def test_sql_is_rendered_in_the_requested_dialect(
    shop: SchemaSnapshot, question: str, dialect: str, fragments: list[str]
) -> None:
    sql = ask(shop, question, dialect=dialect)
    for fragment in fragments:
        assert fragment in sql
    sqlglot.parse_one(sql, read=dialect)


def test_postgres_quotes_mixed_case_identifiers() -> None:
    schema = SchemaSnapshot.model_validate(
        {
            "db_type": "postgresql",
            "database_name": "x",
            "tables": [
                {
                    "name": "Rooms",
                    "columns": [
                        {"name": "RoomId", "type": "INTEGER", "primary_key": True},
                        {"name": "roomName", "type": "TEXT"},
                        {"name": "basePrice", "type": "INTEGER"},
                    ],
                }
            ],
        }
    )
    assert ask(schema, "What is the average base price of rooms?", dialect="postgres") == (
        'SELECT AVG("basePrice") AS "avg_basePrice" FROM "Rooms"'
    )


DUCKDB_QUESTIONS = [q for q, _ in ANSWERS if q != "what are the different payment methods"]


@pytest.fixture(scope="module")
def shop_duckdb(shop: SchemaSnapshot) -> Iterator[duckdb.DuckDBPyConnection]:
    """The demo data in DuckDB with real DATE/TIMESTAMP columns."""
    src = sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True)
    conn = duckdb.connect()
    for table in shop.tables:
        frame = pd.read_sql_query(f"SELECT * FROM {table.name}", src)  # noqa: S608 - own names
        for col in table.columns:
            if col.type.upper() in ("DATE", "TIMESTAMP"):
                frame[col.name] = pd.to_datetime(frame[col.name])
        conn.register("frame", frame)
        conn.execute(f"CREATE TABLE {table.name} AS SELECT * FROM frame")  # noqa: S608
        conn.unregister("frame")
    src.close()
    yield conn
    conn.close()


@pytest.mark.parametrize("question", DUCKDB_QUESTIONS)
def test_duckdb_rendering_gives_the_same_answer(
    shop: SchemaSnapshot,
    shop_db: sqlite3.Connection,
    shop_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = rows(shop_db, ask(shop, question))
    got = rows(shop_duckdb, ask(shop, question, dialect="duckdb"))
    assert results_match(_dates_as_days(expected), _dates_as_days(got), ordered=False)


def _dates_as_days(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """SQLite hands back dates as text, DuckDB as datetimes: compare them as days."""

    def day(v: Any) -> Any:
        if hasattr(v, "isoformat"):
            return v.isoformat()[:10]
        if isinstance(v, str) and len(v) >= 10 and v[4] == "-" and v[7] == "-":
            return v[:10]
        return v

    return [tuple(day(v) for v in r) for r in result]


@pytest.fixture(scope="module")
def shop_postgres(
    shop: SchemaSnapshot, request: pytest.FixtureRequest
) -> Iterator[sqlalchemy.Connection]:
    """The demo data in a real PostgreSQL database (DATE/TIMESTAMP columns typed as such)."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL not among NLSQL_TEST_BACKENDS")
    admin_url: str = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin_url)
    engine = sqlalchemy.create_engine(url)
    src = sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True)
    try:
        for table in shop.tables:
            frame = pd.read_sql_query(f"SELECT * FROM {table.name}", src)  # noqa: S608
            for col in table.columns:
                if col.type.upper() in ("DATE", "TIMESTAMP"):
                    frame[col.name] = pd.to_datetime(frame[col.name])
            frame.to_sql(table.name, engine, index=False)
        with engine.connect() as conn:
            yield conn
    finally:
        src.close()
        engine.dispose()
        drop_pg_database(admin_url, url)


@pytest.mark.parametrize("question", DUCKDB_QUESTIONS)
def test_postgres_rendering_gives_the_same_answer(
    shop: SchemaSnapshot,
    shop_db: sqlite3.Connection,
    shop_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(shop_db, ask(shop, question))
    got = [
        tuple(r)
        for r in shop_postgres.execute(sqlalchemy.text(ask(shop, question, dialect="postgres")))
    ]
    assert results_match(_dates_as_days(expected), _dates_as_days(got), ordered=False)


@pytest.fixture(scope="module")
def shop_mysql(
    shop: SchemaSnapshot, request: pytest.FixtureRequest
) -> Iterator[sqlalchemy.Connection]:
    """The demo data in a real MariaDB database (DATETIME columns typed as such)."""
    admin_url: str = request.getfixturevalue("mysql_admin_url")
    name = f"shop_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine = sqlalchemy.create_engine(sqlalchemy.make_url(admin_url).set(database=name))
    src = sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True)
    try:
        for table in shop.tables:
            frame = pd.read_sql_query(f"SELECT * FROM {table.name}", src)  # noqa: S608
            for col in table.columns:
                if col.type.upper() in ("DATE", "TIMESTAMP"):
                    frame[col.name] = pd.to_datetime(frame[col.name])
            frame.to_sql(table.name, engine, index=False)
        with engine.connect() as conn:
            yield conn
    finally:
        src.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP DATABASE {name}"))
        admin.dispose()


# The analytic grammar whose functions differ per dialect: NULL meaning, month ranges, shares,
# durations, time buckets.
MYSQL_QUESTIONS = [
    "employees without a manager",
    "number of customers with no company name",
    "how many orders were placed in March 2024",
    "What percentage of orders were returned?",
    "how many orders took more than 5 days to ship",
    "total shipping cost by ship country",
    "number of orders per status",
]


@pytest.mark.parametrize("question", MYSQL_QUESTIONS)
def test_mysql_rendering_gives_the_same_answer(
    shop: SchemaSnapshot,
    shop_db: sqlite3.Connection,
    shop_mysql: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(shop_db, ask(shop, question))
    sql = ask(shop, question, dialect="mysql")
    got = [tuple(float(v) if isinstance(v, Decimal) else v for v in r)
           for r in shop_mysql.execute(sqlalchemy.text(sql))]  # fmt: skip
    assert results_match(_dates_as_days(expected), _dates_as_days(got), ordered=False), sql


@pytest.mark.parametrize(
    ("question", "reason"),
    [("", "table"), ("???", "table"), ("top 0 products by unit price", "no rows")],
)
def test_degenerate_questions_are_declined(
    shop: SchemaSnapshot, question: str, reason: str
) -> None:
    with pytest.raises(QuestionNotUnderstood, match=reason):
        ask(shop, question)


def test_quoted_values_are_sql_literals_not_sql(
    shop: SchemaSnapshot, shop_db: sqlite3.Connection
) -> None:
    sql = ask(shop, "customers named 'x'' OR 1=1; DROP TABLE customers; --'")
    assert len(sqlglot.parse(sql, read="sqlite")) == 1
    assert rows(shop_db, sql) == []


def test_a_huge_top_n_is_clamped_to_the_row_cap(shop: SchemaSnapshot) -> None:
    request = GenerationRequest(
        question="top 100000000000000000000 products by unit price", schema=shop, row_cap=50
    )
    assert BuiltinGenerator().generate(request).sql.endswith("LIMIT 50")


def test_a_failed_follow_up_reports_the_question_itself(shop: SchemaSnapshot) -> None:
    history = [Turn("How many customers are in France?", "SELECT 1")]
    with pytest.raises(QuestionNotUnderstood) as caught:
        ask(shop, "How many customers live in Atlantis?", history=history)
    assert "Atlantis" in caught.value.message
    assert "France" not in str(caught.value.recognised)


# A schema unlike the demo's (camelCase names, other domain): the rules must carry over.
LIBRARY_SCHEMA = """
CREATE TABLE Authors (authorId INTEGER PRIMARY KEY, fullName TEXT, birthCountry TEXT);
CREATE TABLE Books (bookId INTEGER PRIMARY KEY, title TEXT, genre TEXT, pageCount INTEGER,
    authorId INTEGER REFERENCES Authors(authorId), publishedOn DATE);
CREATE TABLE Members (memberId INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, city TEXT);
CREATE TABLE Loans (loanId INTEGER PRIMARY KEY, bookId INTEGER REFERENCES Books(bookId),
    memberId INTEGER REFERENCES Members(memberId), loanDate DATE, lateFee REAL);
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SchemaSnapshot, Any]]:
    path = tmp_path_factory.mktemp("library") / "library.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(LIBRARY_SCHEMA)
    countries, genres, cities = (
        ["Ireland", "Japan", "Chile"],
        ["Fantasy", "Crime"],
        ["Cork", "Osaka"],
    )
    for i in range(1, 7):
        conn.execute("INSERT INTO Authors VALUES (?, ?, ?)", (i, f"Author {i}", countries[i % 3]))
    for i in range(1, 21):
        conn.execute(
            "INSERT INTO Books VALUES (?, ?, ?, ?, ?, ?)",
            (
                i,
                f"Book {i}",
                genres[i % 2],
                90 + 17 * i,
                1 if i <= 6 else 2 + i % 5,
                f"{2000 + i}-03-01",
            ),
        )
    for i in range(1, 9):
        conn.execute(
            "INSERT INTO Members VALUES (?, ?, ?, ?)", (i, f"F{i}", f"L{i}", cities[i % 2])
        )
    for i in range(1, 61):
        conn.execute(
            "INSERT INTO Loans VALUES (?, ?, ?, ?, ?)",
            (i, 1 + (i * 7) % 17, 1 + (i * 3) % 7, f"202{i % 3}-{1 + i % 12:02d}-15", i % 4 * 0.5),
        )
    conn.commit()
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="library")
    engine.dispose()
    yield snapshot, conn
    conn.close()


LIBRARY_ANSWERS = [
    ("How many books are there per genre?",
     "SELECT genre, COUNT(*) FROM Books GROUP BY genre"),
    ("Which author has written the most books?",
     "SELECT a.fullName FROM Authors a JOIN Books b ON b.authorId = a.authorId"
     " GROUP BY a.authorId ORDER BY COUNT(*) DESC LIMIT 1"),
    ("books never loaned",
     "SELECT title FROM Books WHERE bookId NOT IN (SELECT bookId FROM Loans)"),
    ("total late fees per member city",
     "SELECT m.city, SUM(l.lateFee) FROM Loans l JOIN Members m ON m.memberId = l.memberId"
     " GROUP BY m.city"),
    ("average page count of fantasy books",
     "SELECT AVG(pageCount) FROM Books WHERE genre = 'Fantasy'"),
    ("authors born in Japan",
     "SELECT fullName FROM Authors WHERE birthCountry = 'Japan'"),
    ("list the 3 longest books",
     "SELECT title FROM Books ORDER BY pageCount DESC LIMIT 3"),
    ("how many loans were made by members from Cork?",
     "SELECT COUNT(*) FROM Loans l JOIN Members m ON m.memberId = l.memberId"
     " WHERE m.city = 'Cork'"),
    ("which books were published after 2015?",
     "SELECT title FROM Books WHERE publishedOn >= '2016-01-01'"),
    ("monthly loans in 2022",
     "SELECT strftime('%Y-%m', loanDate), COUNT(*) FROM Loans"
     " WHERE loanDate >= '2022-01-01' AND loanDate < '2023-01-01' GROUP BY 1 ORDER BY 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), LIBRARY_ANSWERS, ids=[q for q, _ in LIBRARY_ANSWERS])
def test_rules_carry_over_to_another_schema(
    library: tuple[SchemaSnapshot, Any], question: str, gold: str
) -> None:
    schema, conn = library
    sql = ask(schema, question)
    assert results_match(rows(conn, gold), rows(conn, sql), ordered=has_top_level_order(gold)), sql


def test_an_order_with_only_an_aggregate_selected_does_not_crash(shop: SchemaSnapshot) -> None:
    history = [Turn("How many customers are in France?", "SELECT 1")]
    sql = ask(shop, "and list the information of all of them in ascending order", history=history)
    sqlglot.parse_one(sql, read="sqlite")


# question -> fragments of the SQL's shape (what construct the words must produce)
SHAPES = [
    ("products never ordered", ["NOT products.id IN (SELECT order_items.product_id"]),
    ("customers with more than 3 orders", ["HAVING COUNT(DISTINCT orders.id) > 3"]),
    ("customers whose last name starts with 'Mo'", ["last_name LIKE 'Mo%'"]),
    ("customers whose email contains 'example'", ["email LIKE '%example%'"]),
    ("how many distinct countries do customers come from", ["COUNT(DISTINCT country)"]),
    ("products with unit price between 10 and 20", ["unit_price BETWEEN 10 AND 20"]),
    ("employees earning more than 90000", ["salary > 90000"]),
    ("products cheaper than 5", ["unit_price < 5"]),
    ("products more expensive than 60", ["unit_price > 60"]),
    ("the 2 cheapest products", ["ORDER BY unit_price", "LIMIT 2"]),
    ("yearly revenue", ["STRFTIME('%Y', paid_at)", "GROUP BY"]),
    ("orders this year", ["UNION ALL SELECT MAX(shipped_date)", "AS recorded), 'start of year')"]),
    (
        "payments in the last 2 weeks",
        ["DATE((SELECT MAX(paid_at) AS d FROM payments), '-14 days')"],
    ),
    ("customers who are not in France or Germany", ["NOT country IN ('France', 'Germany')"]),
    ("customers without the letter a in their last name", ["NOT last_name LIKE '%a%'"]),
]


@pytest.mark.parametrize(("question", "fragments"), SHAPES, ids=[q for q, _ in SHAPES])
def test_words_produce_the_expected_sql_shape(
    shop: SchemaSnapshot, shop_db: sqlite3.Connection, question: str, fragments: list[str]
) -> None:
    try:
        sql = ask(shop, question)
    except QuestionNotUnderstood:
        assert not fragments, f"declined {question!r}"
        return
    for fragment in fragments:
        assert fragment in sql
    rows(shop_db, sql)


BREAKDOWNS = [
    ("orders by status", "SELECT status, COUNT(*) FROM orders GROUP BY status"),
    ("payments by method", "SELECT method, COUNT(*) FROM payments GROUP BY method"),
    ("how many products are discontinued", "SELECT COUNT(*) FROM products WHERE discontinued = 1"),
    ("products that are not discontinued", "SELECT name FROM products WHERE discontinued = 0"),
    ("top 2 suppliers by number of products",
     "SELECT s.company_name, COUNT(*) FROM suppliers s JOIN products p ON p.supplier_id = s.id"
     " GROUP BY s.id ORDER BY COUNT(*) DESC LIMIT 2"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), BREAKDOWNS, ids=[q for q, _ in BREAKDOWNS])
def test_breakdowns_and_flags(
    shop: SchemaSnapshot, shop_db: sqlite3.Connection, question: str, gold: str
) -> None:
    sql = ask(shop, question)
    assert results_match(
        rows(shop_db, gold), rows(shop_db, sql), ordered=has_top_level_order(gold)
    ), sql


def test_sorting_a_table_by_a_column_orders_rather_than_groups(shop: SchemaSnapshot) -> None:
    sql = ask(shop, "sort the orders by order date")
    assert "GROUP BY" not in sql and "ORDER BY order_date" in sql


def test_related_rows_named_with_their_are_shown_beside_the_main_rows(
    shop: SchemaSnapshot, shop_db: sqlite3.Connection
) -> None:
    sql = ask(shop, "show products and their categories")
    gold = "SELECT p.name, c.name FROM products p JOIN categories c ON c.id = p.category_id"
    assert results_match(rows(shop_db, gold), rows(shop_db, sql), ordered=False), sql


def test_the_linking_index_is_reused_for_the_same_schema_only(shop: SchemaSnapshot) -> None:
    from backend.nl2sql.engines.builtin import schema_index

    same = SchemaSnapshot.model_validate(shop.model_dump())
    assert schema_index(same) is schema_index(shop)
    changed = shop.model_copy(deep=True)
    changed.tables[0].columns[0].name = "renamed"
    assert schema_index(changed) is not schema_index(shop)
