"""Time and flags in business questions without a semantic layer, on a small vehicle-hire
fleet written here: revenue counts the charges that were paid and is dated by the day they
were invoiced ("Revenue by quarter for 2024"); "for each purchase year" buckets the date of
the event named; "serviced monthly" is the value of the column recording how often, not a
monthly bucket; a figure of the rows of a table whose other dates may be empty goes on the
date every row has ("which quarter of 2024 had the highest average repair cost"); "give it
as a percentage" is the form of a share asked for before.

Each answer is checked by running it and the hand-written gold SQL on the same database
(SQLite), and the SQL rendered for DuckDB and PostgreSQL gives the same rows there."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.evaluation import results_match
from tests.nl2sql.gym import (
    duckdb_loaded,
    generate,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

FLEET_DDL = """
CREATE TABLE vehicles (
    vehicle_id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    depot TEXT NOT NULL,
    service_plan TEXT NOT NULL,
    purchased_on DATE NOT NULL,
    retired_on DATE,
    is_electric INTEGER NOT NULL
);
CREATE TABLE hires (
    hire_id INTEGER PRIMARY KEY,
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(vehicle_id),
    customer TEXT NOT NULL,
    hired_on DATE NOT NULL
);
CREATE TABLE charges (
    charge_id INTEGER PRIMARY KEY,
    hire_id INTEGER NOT NULL REFERENCES hires(hire_id),
    invoiced_on DATE NOT NULL,
    due_on DATE NOT NULL,
    paid_on DATE,
    amount REAL NOT NULL,
    vat_amount REAL NOT NULL
);
CREATE TABLE inspections (
    inspection_id INTEGER PRIMARY KEY,
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(vehicle_id),
    inspected_on DATE NOT NULL
);
CREATE TABLE repairs (
    repair_id INTEGER PRIMARY KEY,
    vehicle_id INTEGER NOT NULL REFERENCES vehicles(vehicle_id),
    opened_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP,
    cost REAL NOT NULL,
    is_warranty INTEGER NOT NULL
);
"""
_DAY0 = date(2022, 1, 1)


def _day(offset: int) -> str:
    return (_DAY0 + timedelta(days=offset)).isoformat()


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    depots = ["North", "South", "East"]
    plans = ["monthly", "annual"]
    vehicles = [
        (
            i,
            f"FL-{i:03d}",
            depots[i % 3],
            plans[(i // 2) % 2],
            _day((i * 23) % 900),
            _day((i * 23) % 900 + 200 + (i * 17) % 300) if i % 4 == 0 else None,
            int(i % 4 == 1),
        )
        for i in range(1, 41)
    ]
    hires = [(i, i % 40 + 1, f"Client {i % 9}", _day((i * 5) % 1000)) for i in range(1, 201)]
    charges = []
    for i in range(1, 201):
        invoiced = (i * 5) % 1000 + 1
        paid = _day(invoiced + (i * 3) % 40) if i % 5 else None
        amount = float(100 + (i * 37) % 400)
        charges.append((i, i, _day(invoiced), _day(invoiced + 30), paid, amount, float(20 + i % 7)))
    repairs = [
        (
            i,
            i % 40 + 1,
            f"{_day((i * 11) % 1000)} {8 + i % 9:02d}:15:00",
            f"{_day((i * 11) % 1000 + i % 6)} 17:00:00" if i % 3 else None,
            float(50 + (i * 29) % 700),
            int(i % 5 == 0),
        )
        for i in range(1, 151)
    ]
    today = date.today()
    inspections = [
        (i, i % 40 + 1, (today - timedelta(days=i * 4)).isoformat()) for i in range(0, 200)
    ]  # (around the clock's today: the calendar periods before it hold rows)
    return {
        "vehicles": vehicles,
        "hires": hires,
        "charges": charges,
        "repairs": repairs,
        "inspections": inspections,
    }


@pytest.fixture(scope="module")
def fleet_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_loaded(tmp_path_factory.mktemp("fleet") / "fleet.sqlite", FLEET_DDL, _tables())


@pytest.fixture(scope="module")
def fleet(fleet_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(fleet_path, "fleet")


@pytest.fixture(scope="module")
def fleet_db(fleet_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{fleet_path}?mode=ro", uri=True)
    yield conn
    conn.close()


_QUARTER = "(CAST(strftime('%m', {}) AS INTEGER) + 2) / 3"

ANSWERED = [
    # revenue: the paid charges, dated by the day they were invoiced (not due, not paid)
    ("Revenue by quarter for 2024",
     f"SELECT {_QUARTER.format('invoiced_on')}, SUM(amount) FROM charges"
     " WHERE paid_on IS NOT NULL AND invoiced_on >= '2024-01-01' AND invoiced_on < '2025-01-01'"
     " GROUP BY 1"),
    ("How much revenue did we bring in during each month of 2023?",
     "SELECT strftime('%Y-%m', invoiced_on), SUM(amount) FROM charges"
     " WHERE paid_on IS NOT NULL AND invoiced_on >= '2023-01-01' AND invoiced_on < '2024-01-01'"
     " GROUP BY 1"),
    ("Show me 2023 revenue split by quarter.",
     f"SELECT {_QUARTER.format('invoiced_on')}, SUM(amount) FROM charges"
     " WHERE paid_on IS NOT NULL AND invoiced_on >= '2023-01-01' AND invoiced_on < '2024-01-01'"
     " GROUP BY 1"),
    ("2024 revenue by depot",
     "SELECT v.depot, SUM(c.amount) FROM charges c JOIN hires h ON h.hire_id = c.hire_id"
     " JOIN vehicles v ON v.vehicle_id = h.vehicle_id WHERE c.paid_on IS NOT NULL"
     " AND c.invoiced_on >= '2024-01-01' AND c.invoiced_on < '2025-01-01' GROUP BY v.depot"),
    # the bucket of the date of the event named before the unit
    ("Number of vehicles per purchase year",
     "SELECT strftime('%Y', purchased_on), COUNT(*) FROM vehicles GROUP BY 1"),
    ("For each purchase year, what share of vehicles have since been retired? "
     "Give it as a percentage.",
     "SELECT strftime('%Y', purchased_on), 100.0 * SUM(retired_on IS NOT NULL) / COUNT(*)"
     " FROM vehicles GROUP BY 1"),
    # how often: a value, not a bucket
    ("How many vehicles are serviced monthly?",
     "SELECT COUNT(*) FROM vehicles WHERE service_plan = 'monthly'"),
    ("How many vehicles are serviced annually?",
     "SELECT COUNT(*) FROM vehicles WHERE service_plan = 'annual'"),
    ("What percentage of vehicles are serviced monthly?",
     "SELECT 100.0 * SUM(service_plan = 'monthly') / COUNT(*) FROM vehicles"),
    ("How many vehicles per purchase year were serviced annually?",
     "SELECT strftime('%Y', purchased_on), COUNT(*) FROM vehicles"
     " WHERE service_plan = 'annual' GROUP BY 1"),
    # a yes/no column named as an adjective of its rows picks them
    ("Show the plates of electric vehicles at the North depot",
     "SELECT plate FROM vehicles WHERE is_electric = 1 AND depot = 'North'"),
    ("List the plates of the electric vehicles",
     "SELECT plate FROM vehicles WHERE is_electric = 1"),
    # a flag set against its opposite under an aggregate: a figure for each side
    ("Average resolution time in hours for warranty versus non-warranty repairs",
     "SELECT is_warranty, AVG((julianday(closed_at) - julianday(opened_at)) * 24)"
     " FROM repairs GROUP BY is_warranty"),
    # a figure of the repairs goes on the date every repair has, not on the closing date
    ("Which quarter of 2024 had the highest average repair cost?",
     f"SELECT {_QUARTER.format('opened_at')} AS q FROM repairs"
     " WHERE opened_at >= '2024-01-01' AND opened_at < '2025-01-01'"
     " GROUP BY q ORDER BY AVG(cost) DESC LIMIT 1"),
    ("Average repair cost per quarter in 2023",
     f"SELECT {_QUARTER.format('opened_at')}, AVG(cost) FROM repairs"
     " WHERE opened_at >= '2023-01-01' AND opened_at < '2024-01-01' GROUP BY 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_the_answer_matches_the_gold(
    fleet: SchemaSnapshot, fleet_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(fleet_db, generate(fleet, question).sql, gold)


def test_revenue_is_not_every_charge_invoiced(
    fleet: SchemaSnapshot, fleet_db: sqlite3.Connection
) -> None:
    """The unpaid charges change the answer here, so the paid filter is what makes it right."""
    every = rows(
        fleet_db,
        "SELECT SUM(amount) FROM charges"
        " WHERE invoiced_on >= '2024-01-01' AND invoiced_on < '2025-01-01'",
    )
    got = rows(fleet_db, generate(fleet, "What was our revenue in 2024?").sql)
    assert got != every


def test_the_explanation_says_revenue_counts_paid_charges_by_invoice_day(
    fleet: SchemaSnapshot,
) -> None:
    explanation = generate(fleet, "Revenue by quarter for 2024").explanation
    assert "paid_on is recorded" in explanation
    assert "quarter of invoiced_on" in explanation


def test_tax_is_not_a_competing_reading_of_revenue(fleet: SchemaSnapshot) -> None:
    sql = generate(fleet, "Revenue by quarter for 2024").sql
    assert "vat_amount" not in sql


def test_as_a_percentage_without_a_share_is_still_declined(fleet: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood, match="percentage"):
        generate(fleet, "Show the vehicles as a percentage")


def test_a_monthly_figure_is_still_a_bucket(fleet: SchemaSnapshot) -> None:
    """Only an adverb after a verb ("serviced monthly") names the value; "monthly" before
    a figure is still a breakdown by month."""
    sql = generate(fleet, "Monthly number of repairs in 2023").sql
    assert "service_plan" not in sql
    assert "%Y-%m" in sql


def test_a_count_of_rows_does_not_settle_which_date_counts(fleet: SchemaSnapshot) -> None:
    """How many repairs per quarter: opened or closed in it? A count of rows, unlike a figure
    of theirs, leaves that open: not answered on the opening date as if the question said so."""
    try:
        sql = generate(fleet, "How many repairs were opened or closed per quarter in 2024?").sql
    except QuestionNotUnderstood:
        return
    assert "closed_at" in sql


def _previous(unit: str) -> tuple[str, str]:
    """The calendar period before the current one, by the clock: [first day, next first day)."""
    today = date.today()
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    first = today.replace(day=1)
    if unit == "quarter":
        first = first.replace(month=(today.month - 1) // 3 * 3 + 1)
    elif unit == "year":
        first = first.replace(month=1)
    total = first.year * 12 + first.month - 1 - months
    return date(total // 12, total % 12 + 1, 1).isoformat(), first.isoformat()


CALENDAR = [
    ("How many inspections were there last month?", "month"),
    ("How many inspections were there last quarter?", "quarter"),
    ("How many inspections were there last year?", "year"),
]


@pytest.mark.parametrize(("question", "unit"), CALENDAR)
def test_last_quarter_is_the_calendar_period_before_this_one(
    fleet: SchemaSnapshot, fleet_db: sqlite3.Connection, question: str, unit: str
) -> None:
    start, end = _previous(unit)
    gold = (
        "SELECT COUNT(*) FROM inspections"
        f" WHERE inspected_on >= '{start}' AND inspected_on < '{end}'"
    )
    assert_same_answer(fleet_db, generate(fleet, question).sql, gold)


def test_the_last_month_is_still_a_span_back_from_today(fleet: SchemaSnapshot) -> None:
    generation = generate(fleet, "How many inspections were there in the last month?")
    assert "previous calendar" not in generation.explanation
    assert "within the last 1 month" in generation.explanation


def test_the_explanation_names_the_calendar_period(fleet: SchemaSnapshot) -> None:
    explanation = generate(fleet, "How many inspections were there last quarter?").explanation
    assert "previous calendar quarter" in explanation


_DIALECT_QUESTIONS = [q for q, _ in ANSWERED] + [q for q, _ in CALENDAR]


@pytest.fixture(scope="module")
def fleet_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(FLEET_DDL, _tables())
    yield conn
    conn.close()


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """ISO dates and timestamps as such (PostgreSQL does not cast bound text)."""
    out: list[Any] = []
    for v in row:
        if isinstance(v, str) and len(v) == 10 and v[4] == "-":
            out.append(date.fromisoformat(v))
        elif isinstance(v, str) and len(v) == 19 and v[4] == "-" and v[10] == " ":
            out.append(datetime.fromisoformat(v))
        else:
            out.append(v)
    return tuple(out)


@pytest.fixture(scope="module")
def fleet_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, FLEET_DDL, _tables(), typed=_typed) as conn:
        yield conn


def _plain(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        tuple(
            round(float(v), 6)
            if isinstance(v, int | float | Decimal) and not isinstance(v, bool)
            else str(v)
            for v in r
        )
        for r in result
    ]


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_duckdb_gives_the_same_answer(
    fleet: SchemaSnapshot,
    fleet_db: sqlite3.Connection,
    fleet_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = rows(fleet_db, generate(fleet, question).sql)
    sql = generate(fleet, question, dialect="duckdb").sql
    got = [tuple(r) for r in fleet_duckdb.execute(sql).fetchall()]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_postgres_gives_the_same_answer(
    fleet: SchemaSnapshot,
    fleet_db: sqlite3.Connection,
    fleet_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(fleet_db, generate(fleet, question).sql)
    sql = generate(fleet, question, dialect="postgresql").sql
    got = [tuple(r) for r in fleet_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql
