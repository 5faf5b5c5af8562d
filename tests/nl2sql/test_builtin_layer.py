"""The builtin engine reading a semantic layer, on a business of another domain written here:
Beanline, a wholesale coffee roaster with its own layer (no foreign keys declared; the layer
declares the join from customers to their sales rep).

Each mechanism is proved by running the engine's SQL and a hand-written gold query on the same
SQLite file and comparing the results."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.prompt import build_prompt
from backend.nl2sql.evaluation import results_match
from backend.semantic.errors import SemanticLayerInvalid
from backend.semantic.layer import SemanticLayer
from backend.semantic.validation import validate_layer
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.nl2sql.gym import assert_same_answer, sqlite_snapshot

BEANLINE_DDL = """
CREATE TABLE staff (
    staff_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    hired_on TEXT NOT NULL,
    left_on TEXT
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    customer_name TEXT NOT NULL,
    region TEXT NOT NULL,
    joined_on TEXT NOT NULL,
    closed_on TEXT,
    rep INTEGER,
    delivery TEXT NOT NULL,
    discount_pct REAL NOT NULL
);
CREATE TABLE invoices (
    invoice_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    issued_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    paid_on TEXT,
    amount REAL NOT NULL
);
CREATE TABLE shipments (
    shipment_id INTEGER PRIMARY KEY,
    invoice_id INTEGER NOT NULL,
    shipped_on TEXT NOT NULL,
    bags INTEGER NOT NULL,
    weight_kg REAL NOT NULL
);
"""
REGIONS = ["North", "South", "Coast", "Highlands"]
CAFES = ["Ember", "Lantern", "Harbour", "Juniper", "Copper", "Meadow", "Quarry", "Thistle"]
KINDS = ["Cafe", "Bakery", "Roastery", "Deli", "Bistro"]


def _build(path: Path) -> None:
    rng = random.Random(11)
    conn = sqlite3.connect(path)
    conn.executescript(BEANLINE_DDL)
    staff = [
        (
            i,
            f"{['Ana', 'Bo', 'Cy', 'Dee', 'Eli', 'Fay'][i - 1]} Reyes-{i}",
            "Sales Rep",
            str(date(2019, 1, 1) + timedelta(days=97 * i)),
            None if i != 6 else "2023-05-31",
        )
        for i in range(1, 7)
    ]
    conn.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?)", staff)
    customers = []
    for i in range(1, 41):
        joined = date(2021, 1, 1) + timedelta(days=23 * i)
        closed = (joined + timedelta(days=300 + 9 * i)).isoformat() if i % 4 == 0 else None
        rep = None if i % 7 == 0 else 1 + (i * 5) % 6
        name = f"{CAFES[i % 8]} {KINDS[i % 5]} {i}"
        delivery = "weekly" if i % 3 else "monthly"
        discount = float(5 * (i % 4))
        customers.append((i, name, REGIONS[i % 4], str(joined), closed, rep, delivery, discount))
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", customers)
    invoices, shipments = [], []
    for i in range(1, 601):
        customer = 1 + (i * 7) % 40
        issued = date(2022, 1, 1) + timedelta(days=rng.randint(0, 1000))
        due = issued + timedelta(days=30)
        paid = None if rng.random() < 0.2 else str(issued + timedelta(days=rng.randint(5, 60)))
        amount = round(200 + rng.random() * 2000 + 37 * customer, 2)
        invoices.append((i, customer, str(issued), str(due), paid, amount))
        bags = rng.randint(1, 30)
        shipped = str(issued + timedelta(days=rng.randint(0, 6)))
        shipments.append((i, i, shipped, bags, bags * 12.5))
    conn.executemany("INSERT INTO invoices VALUES (?, ?, ?, ?, ?, ?)", invoices)
    conn.executemany("INSERT INTO shipments VALUES (?, ?, ?, ?, ?)", shipments)
    conn.commit()
    conn.close()


LAYER_DOCUMENT: dict[str, Any] = {
    "today": "2025-03-31",
    "tables": [
        {
            "name": "customers",
            "description": "A business that buys our coffee; closed accounts stay.",
            "synonyms": ["client", "account", "business"],
            "time_column": "joined_on",
            "columns": [
                {"name": "customer_name", "description": "The customer's trading name."},
                {"name": "rep", "synonyms": ["sales rep", "account owner"]},
                {
                    "name": "delivery",
                    "synonyms": ["delivery schedule"],
                    "values": {"weekly": "weekly", "monthly": "monthly", "every month": "monthly"},
                },
            ],
        },
        {"name": "invoices", "synonyms": ["bill"], "time_column": "issued_on"},
        {"name": "staff", "synonyms": ["employee"]},
    ],
    "measures": [
        {
            "name": "sales",
            "synonyms": ["takings", "turnover"],
            "table": "invoices",
            "expression": "SUM(invoices.amount)",
            "filter": "invoices.paid_on IS NOT NULL",
            "time_column": "invoices.issued_on",
        },
        {
            "name": "amount billed",
            "synonyms": ["billings", "billed"],
            "table": "invoices",
            "expression": "SUM(invoices.amount)",
            "time_column": "invoices.issued_on",
        },
        {
            "name": "cash collected",
            "synonyms": ["collected"],
            "table": "invoices",
            "expression": "SUM(invoices.amount)",
            "filter": "invoices.paid_on IS NOT NULL",
            "time_column": "invoices.paid_on",
        },
        {
            "name": "bags shipped",
            "synonyms": ["bags sent"],
            "table": "shipments",
            "expression": "SUM(shipments.bags)",
            "time_column": "shipments.shipped_on",
        },
        {
            "name": "weight shipped",
            "synonyms": ["kilos shipped"],
            "table": "shipments",
            "expression": "SUM(shipments.weight_kg)",
            "time_column": "shipments.shipped_on",
        },
        {
            "name": "average customer spend",
            "synonyms": ["spend per customer"],
            "table": "invoices",
            "expression": "SUM(invoices.amount) / COUNT(DISTINCT invoices.customer_id)",
            "filter": "invoices.paid_on IS NOT NULL",
        },
        {
            "name": "new customers",
            "synonyms": ["sign-ups", "signups"],
            "table": "customers",
            "expression": "COUNT(*)",
            "time_column": "customers.joined_on",
        },
        {
            "name": "customer lifetime",
            "synonyms": ["lifetime", "tenure"],
            "table": "customers",
            "expression": "AVG(julianday(COALESCE(customers.closed_on, '2025-03-31'))"
            " - julianday(customers.joined_on))",
            "description": "Days from joining to closing, or to today, on average.",
        },
        {
            "name": "closure rate",
            "table": "customers",
            "expression": "100.0 * SUM(CASE WHEN customers.closed_on IS NOT NULL THEN 1"
            " ELSE 0 END) / COUNT(*)",
            "description": "Former customers as a percentage of all customers in the group.",
        },
        {
            "name": "lost customers",
            "synonyms": ["customers lost"],
            "table": "customers",
            "expression": "COUNT(*)",
            "filter": "customers.closed_on IS NOT NULL",
            "time_column": "customers.closed_on",
        },
    ],
    "filters": [
        {
            "name": "active customer",
            "synonyms": ["current customer", "active customers"],
            "table": "customers",
            "condition": "customers.closed_on IS NULL",
        },
        {
            "name": "former customer",
            "synonyms": ["lost customers", "closed account"],
            "table": "customers",
            "condition": "customers.closed_on IS NOT NULL",
        },
        {
            "name": "unpaid invoice",
            "synonyms": ["unpaid", "open invoice"],
            "table": "invoices",
            "condition": "invoices.paid_on IS NULL",
        },
    ],
    "joins": [
        {
            "from_table": "customers",
            "from_column": "rep",
            "to_table": "staff",
            "to_column": "staff_id",
            "description": "The customer's sales rep.",
        }
    ],
}
LAYER = SemanticLayer.model_validate(LAYER_DOCUMENT)


@pytest.fixture(scope="module")
def beanline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beanline") / "beanline.sqlite"
    _build(path)
    return path


@pytest.fixture(scope="module")
def beanline(beanline_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(beanline_path, "beanline")


@pytest.fixture(scope="module")
def beanline_db(beanline_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{beanline_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    layer: SemanticLayer | None = LAYER,
    dialect: str = "sqlite",
) -> str:
    request = GenerationRequest(question=question, schema=schema, semantic=layer, dialect=dialect)
    return BuiltinGenerator().generate(request).sql


def test_the_gold_data_has_what_the_questions_need(beanline_db: sqlite3.Connection) -> None:
    closed = beanline_db.execute("SELECT COUNT(*) FROM customers WHERE closed_on >= '2024-01-01'")
    assert closed.fetchone()[0] >= 2
    # no foreign keys are declared: the rep join comes from the layer alone
    fks = beanline_db.execute("SELECT * FROM pragma_foreign_key_list('customers')").fetchall()
    assert fks == []


# ------------------------------------------------------------------ the rows' own date

DATED = [
    # the table's time column dates its rows when the question names no date
    ("How many invoices were there in 2024?",
     "SELECT COUNT(*) FROM invoices WHERE issued_on >= '2024-01-01' AND issued_on < '2025-01-01'"),
    ("Invoices per month in 2024",
     "SELECT strftime('%Y-%m', issued_on), COUNT(*) FROM invoices"
     " WHERE issued_on >= '2024-01-01' AND issued_on < '2025-01-01' GROUP BY 1"),
    # a named date still wins over the table's
    ("How many invoices were paid in 2024?",
     "SELECT COUNT(*) FROM invoices WHERE paid_on >= '2024-01-01' AND paid_on < '2025-01-01'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), DATED, ids=[q for q, _ in DATED])
def test_a_tables_time_column_dates_its_rows(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(beanline_db, ask(beanline, question), gold)


def test_without_the_time_column_several_dates_are_not_guessed_between(
    beanline: SchemaSnapshot,
) -> None:
    document = {
        **LAYER_DOCUMENT,
        "tables": [
            {k: v for k, v in t.items() if k != "time_column"} for t in LAYER_DOCUMENT["tables"]
        ],
    }
    layer = SemanticLayer.model_validate(document)
    with pytest.raises(QuestionNotUnderstood) as declined:
        ask(beanline, "How many customers were there in 2024?", layer)
    assert "several dates" in declined.value.message
    # An invoice's own event is its issue ("invoiced"), so that one date needs no declaring.
    assert "issued_on >= '2024-01-01'" in ask(
        beanline, "How many invoices were there in 2024?", layer
    )


def test_a_time_column_is_validated_like_every_reference(beanline: SchemaSnapshot) -> None:
    validate_layer(LAYER, beanline)  # the document itself fits the schema
    document = {
        **LAYER_DOCUMENT,
        "tables": [{"name": "invoices", "time_column": "sent_on"}],
    }
    with pytest.raises(SemanticLayerInvalid) as invalid:
        validate_layer(SemanticLayer.model_validate(document), beanline)
    fields = [e["field"] for e in invalid.value.details["errors"]]
    assert fields == ["tables[0].time_column"]


def test_llm_prompts_carry_a_tables_time_column(beanline: SchemaSnapshot) -> None:
    prompt = build_prompt(
        GenerationRequest(question="invoices in 2024", schema=beanline, semantic=LAYER)
    )
    assert "rows are dated by invoices.issued_on" in prompt.system


# ------------------------------------------------------------------ how the layer is named

NAMED = [
    # a measure's words in another order and inflection ("bags shipped")
    ("How many bags did we ship in March 2024?",
     "SELECT SUM(s.bags) FROM shipments s"
     " WHERE s.shipped_on >= '2024-03-01' AND s.shipped_on < '2024-04-01'"),
    ("How many customers did we lose in 2024?",
     "SELECT COUNT(*) FROM customers"
     " WHERE closed_on >= '2024-01-01' AND closed_on < '2025-01-01'"),
    # words naming both a measure and a segment: a listing asks for the segment's rows,
    # and "on what date" for the date the segment tests
    ("Which customers did we lose in 2024, and on what date?",
     "SELECT customer_name, closed_on FROM customers"
     " WHERE closed_on >= '2024-01-01' AND closed_on < '2025-01-01'"),
    # an exclusion takes a segment out, without a double negation
    ("How many customers do we have, leaving out anyone who is a former customer?",
     "SELECT COUNT(*) FROM customers WHERE closed_on IS NULL"),
    ("What's our current customer count, leaving out anyone who is a former customer?",
     "SELECT COUNT(*) FROM customers WHERE closed_on IS NULL"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), NAMED, ids=[q for q, _ in NAMED])
def test_layer_words_link_strongly_in_any_phrasing(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    sql = ask(beanline, question)
    assert "NOT (NOT" not in sql.upper() and "NOT NOT" not in sql.upper()
    assert_same_answer(beanline_db, sql, gold)


BUCKET_OR_VALUE = [
    # a word that is both a time bucket and a value the layer declares: the value when the
    # question names the value's table, the bucket otherwise
    ("How many active customers get deliveries monthly?",
     "SELECT COUNT(*) FROM customers WHERE closed_on IS NULL AND delivery = 'monthly'"),
    ("How many customers are still on weekly deliveries?",
     "SELECT COUNT(*) FROM customers WHERE delivery = 'weekly'"),
    ("Monthly count of invoices for 2024",
     "SELECT strftime('%Y-%m', issued_on), COUNT(*) FROM invoices"
     " WHERE issued_on >= '2024-01-01' AND issued_on < '2025-01-01' GROUP BY 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), BUCKET_OR_VALUE, ids=[q for q, _ in BUCKET_OR_VALUE])
def test_a_declared_value_or_a_time_bucket(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(beanline_db, ask(beanline, question), gold)


# ------------------------------------------------------------------ measures per group

SALES_PER_CUSTOMER = (
    "SELECT c.customer_name, SUM(i.amount) AS total FROM customers c"
    " JOIN invoices i ON i.customer_id = c.customer_id WHERE i.paid_on IS NOT NULL"
    " GROUP BY c.customer_id"
)
GROUPED = [
    # a key that refers to another row groups by that row, shown by its name (a declared join)
    ("How many customers does each account owner have?",
     "SELECT s.full_name, COUNT(*) FROM customers c JOIN staff s ON s.staff_id = c.rep"
     " GROUP BY s.staff_id"),
    ("Sales per account owner",
     "SELECT s.full_name, SUM(i.amount) FROM invoices i"
     " JOIN customers c ON c.customer_id = i.customer_id JOIN staff s ON s.staff_id = c.rep"
     " WHERE i.paid_on IS NOT NULL GROUP BY s.staff_id"),
    ("For each sales rep, what percentage of their customers are former customers?",
     "SELECT s.full_name, 100.0 * SUM(c.closed_on IS NOT NULL) / COUNT(*) FROM customers c"
     " JOIN staff s ON s.staff_id = c.rep GROUP BY s.staff_id"),
    # the biggest, the top N, thresholds: by the measure, along the join path to its table
    ("Who is our biggest customer by total sales?",
     SALES_PER_CUSTOMER.replace(", SUM(i.amount) AS total", "")
     + " ORDER BY SUM(i.amount) DESC LIMIT 1"),
    ("Top 3 customers by total amount billed",
     "SELECT c.customer_name, SUM(i.amount) AS total FROM customers c"
     " JOIN invoices i ON i.customer_id = c.customer_id GROUP BY c.customer_id"
     " ORDER BY total DESC LIMIT 3"),
    ("Top 2 customers by bags shipped",
     "SELECT c.customer_name, SUM(s.bags) AS bags FROM customers c"
     " JOIN invoices i ON i.customer_id = c.customer_id"
     " JOIN shipments s ON s.invoice_id = i.invoice_id GROUP BY c.customer_id"
     " ORDER BY bags DESC LIMIT 2"),
    ("Top 3 account owners by sales",
     "SELECT s.full_name, SUM(i.amount) AS total FROM invoices i"
     " JOIN customers c ON c.customer_id = i.customer_id JOIN staff s ON s.staff_id = c.rep"
     " WHERE i.paid_on IS NOT NULL GROUP BY s.staff_id ORDER BY total DESC LIMIT 3"),
    # a measure named before its superlative; "over time" is no comparison; "and how much"
    # shows the figure too
    ("Which three customers have we billed the most over time, and how much for each?",
     "SELECT c.customer_name, SUM(i.amount) AS total FROM customers c"
     " JOIN invoices i ON i.customer_id = c.customer_id GROUP BY c.customer_id"
     " ORDER BY total DESC LIMIT 3"),
    # a clause that restates the measure adds nothing to it
    ("Closure rate by region, as the percent of all customers in the region that are"
     " former customers",
     "SELECT region, 100.0 * SUM(closed_on IS NOT NULL) / COUNT(*) FROM customers"
     " GROUP BY region"),
    ("What is the average customer spend: total sales divided by the number of paying"
     " customers?",
     "SELECT SUM(amount) / COUNT(DISTINCT customer_id) FROM invoices WHERE paid_on IS NOT NULL"),
    # a duration measure "in days" as it is counted; a measure's name qualifying another
    ("For former customers, what was the average lifetime in days for each region?",
     "SELECT region, AVG(julianday(closed_on) - julianday(joined_on)) FROM customers"
     " WHERE closed_on IS NOT NULL GROUP BY region"),
    ("Top 3 customers by lifetime sales",
     SALES_PER_CUSTOMER + " ORDER BY total DESC LIMIT 3"),
    # a measure per group against its average over the groups
    ("Which customers have sales above the average?",
     "SELECT c.customer_name FROM customers c JOIN invoices i ON i.customer_id = c.customer_id"
     " WHERE i.paid_on IS NOT NULL GROUP BY c.customer_id HAVING SUM(i.amount) >"
     " (SELECT AVG(t) FROM (SELECT SUM(amount) AS t FROM invoices WHERE paid_on IS NOT NULL"
     " GROUP BY customer_id))"),
    ("Which customers had sales over 30000?",
     "SELECT c.customer_name FROM customers c JOIN invoices i ON i.customer_id = c.customer_id"
     " WHERE i.paid_on IS NOT NULL GROUP BY c.customer_id HAVING SUM(i.amount) > 30000"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), GROUPED, ids=[q for q, _ in GROUPED])
def test_measures_per_group_follow_the_join_path(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(beanline_db, ask(beanline, question), gold)


def test_arithmetic_over_measures_that_is_no_layer_measure_is_read_part_by_part(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection
) -> None:
    # each measure by its own date: sales by issue date, cash collected by payment date
    quarter = "(CAST(strftime('%m', {d}) AS INTEGER) + 2) / 3"
    gold = (
        f"SELECT q, SUM(v) FROM (SELECT {quarter.format(d='issued_on')} AS q, amount AS v"
        " FROM invoices WHERE paid_on IS NOT NULL"
        " AND issued_on >= '2024-01-01' AND issued_on < '2025-01-01'"
        f" UNION ALL SELECT {quarter.format(d='paid_on')} AS q, -amount AS v FROM invoices"
        " WHERE paid_on >= '2024-01-01' AND paid_on < '2025-01-01') GROUP BY q ORDER BY q"
    )
    sql = ask(beanline, "Net takings per quarter in 2024: sales minus cash collected")
    assert_same_answer(beanline_db, sql, gold)


def test_two_measures_of_the_same_rows_are_shown_side_by_side(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection
) -> None:
    sql = ask(
        beanline,
        "What were the sales (invoice amounts that were paid) compared with the average"
        " customer spend in 2024?",
    )
    assert_same_answer(
        beanline_db,
        sql,
        "SELECT SUM(amount), SUM(amount) / COUNT(DISTINCT customer_id) FROM invoices"
        " WHERE paid_on IS NOT NULL"
        " AND issued_on >= '2024-01-01' AND issued_on < '2025-01-01'",
    )


SIDE_BY_SIDE = [
    # over different rows: joined, one side's rows would repeat and inflate its sum
    (
        "Sales and bags shipped per region",
        "SELECT c.region, (SELECT SUM(i.amount) FROM invoices i JOIN customers c2"
        " ON c2.customer_id = i.customer_id WHERE i.paid_on IS NOT NULL"
        " AND c2.region = c.region), (SELECT SUM(s.bags) FROM shipments s"
        " JOIN invoices i ON i.invoice_id = s.invoice_id JOIN customers c3"
        " ON c3.customer_id = i.customer_id WHERE c3.region = c.region)"
        " FROM customers c GROUP BY c.region",
    ),
    # different filters and dated by different days: one period could not hold for both
    (
        "Amount billed and cash collected per region in 2024",
        "SELECT c.region, (SELECT SUM(i.amount) FROM invoices i JOIN customers c2"
        " ON c2.customer_id = i.customer_id WHERE c2.region = c.region"
        " AND i.issued_on >= '2024-01-01' AND i.issued_on < '2025-01-01'),"
        " (SELECT SUM(i.amount) FROM invoices i JOIN customers c3"
        " ON c3.customer_id = i.customer_id WHERE c3.region = c.region"
        " AND i.paid_on >= '2024-01-01' AND i.paid_on < '2025-01-01')"
        " FROM customers c GROUP BY c.region",
    ),
]


@pytest.mark.parametrize(("question", "gold"), SIDE_BY_SIDE, ids=[q for q, _ in SIDE_BY_SIDE])
def test_measures_that_cannot_share_one_query_are_read_each_over_its_own_rows(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    # (h-layer4) were declined; one query over the joined rows would still be wrong, so each
    # measure is read over its own rows (by its own date) and the figures put side by side
    assert_same_answer(beanline_db, ask(beanline, question), gold)


def test_measures_with_different_filters_keep_each_its_own(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection
) -> None:
    """ "amount billed and sales": sales' filter (paid) goes inside its own sum, not into the
    WHERE that would restrict the amount billed too."""
    assert_same_answer(
        beanline_db,
        ask(beanline, "Amount billed and sales per region"),
        "SELECT c.region, SUM(i.amount), SUM(CASE WHEN i.paid_on IS NOT NULL THEN i.amount END)"
        " FROM invoices i JOIN customers c ON c.customer_id = i.customer_id GROUP BY c.region",
    )


def test_the_top_one_within_each_group_is_ranked_per_group(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection
) -> None:
    # was declined; h-compare ranks within each region (RANK() OVER (PARTITION BY region))
    sql = ask(beanline, "In each region, which customer has been billed the most?")
    assert_same_answer(
        beanline_db,
        sql,
        "WITH t AS (SELECT c.region, c.customer_name, SUM(i.amount) AS total FROM customers c"
        " JOIN invoices i ON i.customer_id = c.customer_id"
        " GROUP BY c.customer_id, c.region, c.customer_name)"
        " SELECT region, customer_name FROM t WHERE total = (SELECT MAX(total) FROM t t2"
        " WHERE t2.region = t.region)",
    )


def test_a_measure_per_another_measure_is_their_ratio(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection
) -> None:
    sql = ask(beanline, "What was the weight shipped per bag shipped in 2024?")
    assert "GROUP BY" not in sql.upper()
    assert_same_answer(
        beanline_db,
        sql,
        "SELECT SUM(weight_kg) * 1.0 / SUM(bags) FROM shipments"
        " WHERE shipped_on >= '2024-01-01' AND shipped_on < '2025-01-01'",
    )


# ------------------------------------------------------------------ shares of a measure

SHARES = [
    # the share of a measure that meets a condition; the time range stays the population
    ("What percentage of 2024 sales came from customers outside the North region?",
     "SELECT 100.0 * SUM(CASE WHEN c.region <> 'North' THEN i.amount ELSE 0 END)"
     " / SUM(i.amount) FROM invoices i JOIN customers c ON c.customer_id = i.customer_id"
     " WHERE i.paid_on IS NOT NULL"
     " AND i.issued_on >= '2024-01-01' AND i.issued_on < '2025-01-01'"),
    # "what percent of" a measure, though a column is named `..._pct`; "as a percentage"
    # only restates the share
    ("In 2024, what percent of sales was earned from customers not in the North region?",
     "SELECT 100.0 * SUM(CASE WHEN c.region <> 'North' THEN i.amount ELSE 0 END)"
     " / SUM(i.amount) FROM invoices i JOIN customers c ON c.customer_id = i.customer_id"
     " WHERE i.paid_on IS NOT NULL"
     " AND i.issued_on >= '2024-01-01' AND i.issued_on < '2025-01-01'"),
    ("Share of 2024 sales from South and Coast customers, as a percentage",
     "SELECT 100.0 * SUM(CASE WHEN c.region IN ('South', 'Coast') THEN i.amount ELSE 0 END)"
     " / SUM(i.amount) FROM invoices i JOIN customers c ON c.customer_id = i.customer_id"
     " WHERE i.paid_on IS NOT NULL"
     " AND i.issued_on >= '2024-01-01' AND i.issued_on < '2025-01-01'"),
    # the rows counted per group are the population of a share of a segment
    ("What percentage of customers in each region are former customers?",
     "SELECT region, 100.0 * SUM(closed_on IS NOT NULL) / COUNT(*) FROM customers"
     " GROUP BY region"),
    # "each sign-up year": the measure's name before a unit buckets by the measure's date
    ("For each sign-up year, what percentage of new customers are in the North region?",
     "SELECT strftime('%Y', joined_on), 100.0 * SUM(region = 'North') / COUNT(*)"
     " FROM customers GROUP BY 1"),
    # a second measure of the same amount names the part: its own filter
    ("What percentage of the amount billed in 2024 has been collected?",
     "SELECT 100.0 * SUM(CASE WHEN paid_on IS NOT NULL THEN amount ELSE 0 END) / SUM(amount)"
     " FROM invoices WHERE issued_on >= '2024-01-01' AND issued_on < '2025-01-01'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), SHARES, ids=[q for q, _ in SHARES])
def test_shares_of_a_measure(
    beanline: SchemaSnapshot, beanline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(beanline_db, ask(beanline, question), gold)


def test_a_share_of_an_average_is_declined(beanline: SchemaSnapshot) -> None:
    document = {
        **LAYER_DOCUMENT,
        "measures": [
            {
                "name": "average bill",
                "table": "invoices",
                "expression": "AVG(invoices.amount)",
                "time_column": "invoices.issued_on",
            }
        ],
    }
    layer = SemanticLayer.model_validate(document)
    with pytest.raises(QuestionNotUnderstood):
        ask(beanline, "What percentage of the average bill came from the North region?", layer)


# ------------------------------------------------------------------ per dialect

DATE_COLUMNS = {"hired_on", "left_on", "joined_on", "closed_on", "issued_on", "due_on"}
DATE_COLUMNS |= {"paid_on", "shipped_on"}
# the new shapes: CASE inside a measure's sum, a grouped figure against its average, a ratio
DIALECT_QUESTIONS = [
    "What percentage of 2024 sales came from customers outside the North region?",
    "What percentage of the amount billed in 2024 has been collected?",
    "Which customers have sales above the average?",
    "Sales per account owner",
    "What was the weight shipped per bag shipped in 2024?",
    "How many customers did we lose in 2024?",
]


def _frames(path: Path) -> Iterator[tuple[str, pd.DataFrame]]:
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for table in ("staff", "customers", "invoices", "shipments"):
            frame = pd.read_sql_query(f"SELECT * FROM {table}", src)  # noqa: S608
            for col in frame.columns:
                if col in DATE_COLUMNS:
                    frame[col] = pd.to_datetime(frame[col])
            yield table, frame
    finally:
        src.close()


@pytest.fixture(scope="module")
def beanline_duckdb(beanline_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    for table, frame in _frames(beanline_path):
        conn.register("frame", frame)
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
        conn.unregister("frame")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def beanline_postgres(
    beanline_path: Path, request: pytest.FixtureRequest
) -> Iterator[sqlalchemy.Connection]:
    """Beanline in a real PostgreSQL database, dates typed as such."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL not among NLSQL_TEST_BACKENDS")
    admin_url: str = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin_url)
    engine = sqlalchemy.create_engine(url)
    try:
        for table, frame in _frames(beanline_path):
            frame.to_sql(table, engine, index=False)
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        drop_pg_database(admin_url, url)


def _plain(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    def value(v: Any) -> Any:
        if hasattr(v, "isoformat"):
            return v.isoformat()[:10]
        return float(v) if isinstance(v, Decimal) else v

    return [tuple(value(v) for v in r) for r in result]


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_duckdb_rendering_runs_and_agrees(
    beanline: SchemaSnapshot,
    beanline_db: sqlite3.Connection,
    beanline_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = [tuple(r) for r in beanline_db.execute(ask(beanline, question)).fetchall()]
    sql = ask(beanline, question, dialect="duckdb")
    got = [tuple(r) for r in beanline_duckdb.execute(sql).fetchall()]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_postgres_rendering_runs_and_agrees(
    beanline: SchemaSnapshot,
    beanline_db: sqlite3.Connection,
    beanline_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = [tuple(r) for r in beanline_db.execute(ask(beanline, question)).fetchall()]
    sql = ask(beanline, question, dialect="postgres")
    got = [tuple(r) for r in beanline_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql
