"""Amounts of time between two events of a row ("returned within 14 days of being borrowed",
"left less than 6 months after joining", "returned more than three days late", "more than 10
days overdue"), a day inside a validity interval ("memberships active on 1 March 2024") and
ratings on a scale ("rated 1 star", "on the 1-5 scale"), on a small lending-library schema
written here.

Each answer is checked by running it and the hand-written gold SQL on the same database
(SQLite, DuckDB and PostgreSQL); MySQL's rendering is checked as text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy
import sqlglot

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import Generation, GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import results_match
from backend.semantic.layer import SemanticLayer
from tests.conftest import BACKENDS
from tests.nl2sql.gym import duckdb_loaded, postgres_loaded, sqlite_loaded, sqlite_snapshot
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

LIBRARY_DDL = """
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    joined_on DATE NOT NULL,
    left_on DATE
);
CREATE TABLE loans (
    loan_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    borrowed_on DATE NOT NULL,
    due_on DATE NOT NULL,
    returned_on DATE
);
CREATE TABLE memberships (
    membership_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    start_date DATE NOT NULL,
    end_date DATE,
    fee REAL NOT NULL
);
CREATE TABLE reviews (
    review_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    book_title TEXT NOT NULL,
    rating INTEGER NOT NULL
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    supplier TEXT NOT NULL,
    ordered_on DATE NOT NULL,
    shipped_on DATE
);
"""
_DAY0 = date(2023, 1, 1)


def _day(offset: int) -> str:
    return (_DAY0 + timedelta(days=offset)).isoformat()


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    members = []
    for i in range(1, 61):
        joined = (i * 13) % 500
        left = _day(joined + (i * 37) % 420) if i % 3 == 0 else None
        members.append((i, f"Reader {i:02d}", _day(joined), left))
    loans = []
    for i in range(1, 301):
        borrowed = (i * 7) % 540
        returned = _day(borrowed + (i * 5) % 31) if i % 6 else None
        loans.append((i, i % 60 + 1, _day(borrowed), _day(borrowed + 14), returned))
    memberships = []
    for i in range(1, 121):
        start = (i * 11) % 600
        end = _day(start + 60 + (i * 29) % 300) if i % 4 else None
        memberships.append((i, i % 60 + 1, _day(start), end, float(20 + i % 5 * 10)))
    reviews = [(i, i % 60 + 1, f"Book {i % 40}", (i * 7) % 5 + 1) for i in range(1, 201)]
    orders = [
        (i, f"Supplier {i % 4}", _day(i * 3), _day(i * 3 + i % 9) if i % 5 else None)
        for i in range(1, 81)
    ]
    return {
        "members": members,
        "loans": loans,
        "memberships": memberships,
        "reviews": reviews,
        "orders": orders,
    }


@pytest.fixture(scope="module")
def library_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_loaded(
        tmp_path_factory.mktemp("library") / "library.sqlite", LIBRARY_DDL, _tables()
    )


@pytest.fixture(scope="module")
def library(library_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(library_path, "library")


@pytest.fixture(scope="module")
def library_db(library_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{library_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def generate(
    schema: SchemaSnapshot,
    question: str,
    dialect: str = "sqlite",
    layer: SemanticLayer | None = None,
) -> Generation:
    request = GenerationRequest(
        question=question, schema=schema, history=[], dialect=dialect, semantic=layer
    )
    return BuiltinGenerator().generate(request)


ANSWERED = [
    # time between two events of the row: days compared as a difference
    ("How many loans were returned within 14 days of being borrowed?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(borrowed_on) <= 14"),
    ("How many loans were returned more than 20 days after being borrowed?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(borrowed_on) > 20"),
    # months and years: calendar steps from the start
    ("How many members left within a year of joining?",
     "SELECT COUNT(*) FROM members WHERE left_on < date(joined_on, '+1 year')"),
    ("How many members left less than six months after joining?",
     "SELECT COUNT(*) FROM members WHERE left_on < date(joined_on, '+6 months')"),
    # against the row's due date
    ("How many loans were returned more than a week late?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(due_on) > 7"),
    ("How many loans were returned late?",
     "SELECT COUNT(*) FROM loans WHERE returned_on > due_on"),
    # overdue: due further back than the amount from the data's latest day, not yet returned
    ("How many loans are more than 10 days overdue?",
     "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL"
     " AND due_on < date((SELECT MAX(borrowed_on) FROM loans), '-10 days')"),
    # the period goes on the event's date, past the word that qualifies it
    ("How many loans were returned late in 2023?",
     "SELECT COUNT(*) FROM loans WHERE returned_on > due_on"
     " AND returned_on >= '2023-01-01' AND returned_on < '2024-01-01'"),
    # the same, worded otherwise
    ("How many loans are overdue by more than 10 days?",
     "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL"
     " AND due_on < date((SELECT MAX(borrowed_on) FROM loans), '-10 days')"),
    ("How many loans are overdue by more than 2 weeks?",
     "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL"
     " AND due_on < date((SELECT MAX(borrowed_on) FROM loans), '-14 days')"),
    ("How many loans were returned late by more than a week?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(due_on) > 7"),
    ("How many loans were returned 3 or more days late?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(due_on) >= 3"),
    ("How many loans were returned within two weeks of borrowing?",
     "SELECT COUNT(*) FROM loans WHERE julianday(returned_on) - julianday(borrowed_on) <= 14"),
    ("How many orders were shipped more than 5 days after being placed?",
     "SELECT COUNT(*) FROM orders WHERE julianday(shipped_on) - julianday(ordered_on) > 5"),
    ("How many members left within 3 months of joining?",
     "SELECT COUNT(*) FROM members WHERE left_on < date(joined_on, '+3 months')"),
    # a day inside a validity interval
    ("How many memberships were active on 1 March 2024?",
     "SELECT COUNT(*) FROM memberships WHERE start_date <= '2024-03-01'"
     " AND (end_date IS NULL OR end_date > '2024-03-01')"),
    ("How many members had at least one active membership on 1 March 2024?",
     "SELECT COUNT(DISTINCT member_id) FROM memberships WHERE start_date <= '2024-03-01'"
     " AND (end_date IS NULL OR end_date > '2024-03-01')"),
    ("How many members were enrolled on 1 June 2023?",
     "SELECT COUNT(*) FROM members WHERE joined_on <= '2023-06-01'"
     " AND (left_on IS NULL OR left_on > '2023-06-01')"),
    # ratings
    ("How many reviews were rated 1 star?", "SELECT COUNT(*) FROM reviews WHERE rating = 1"),
    ("How many reviews were rated 5 stars?", "SELECT COUNT(*) FROM reviews WHERE rating = 5"),
    ("What is the average rating of reviews on the 1-5 scale?",
     "SELECT AVG(rating) FROM reviews"),
    ("How many reviews were rated 4 stars or higher?",
     "SELECT COUNT(*) FROM reviews WHERE rating >= 4"),
    ("How many reviews were rated 2 or lower?", "SELECT COUNT(*) FROM reviews WHERE rating <= 2"),
    ("How many reviews were rated below 3?", "SELECT COUNT(*) FROM reviews WHERE rating < 3"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_the_answer_matches_the_gold(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(library_db, generate(library, question).sql, gold)


def test_within_is_measured_in_the_unit_written(library: SchemaSnapshot) -> None:
    sql = generate(library, "How many loans were returned within 48 hours of being borrowed?").sql
    assert "* 24 <= 48" in sql


def test_the_scale_is_not_read_as_a_filter(library: SchemaSnapshot) -> None:
    sql = generate(library, "What is the average rating of reviews on the 1-5 scale?").sql
    assert "WHERE" not in sql


@pytest.mark.parametrize(
    "question",
    ["How many reviews were rated 4 or 5?", "How many reviews were rated between 2 and 4?"],
)
def test_a_rating_of_several_values_is_not_read_as_the_first(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str
) -> None:
    try:
        sql = generate(library, question).sql
    except QuestionNotUnderstood:
        return
    assert rows(library_db, sql) != rows(
        library_db, "SELECT COUNT(*) FROM reviews WHERE rating = 4"
    )
    assert rows(library_db, sql) != rows(
        library_db, "SELECT COUNT(*) FROM reviews WHERE rating = 2"
    )


def test_overdue_in_hours_is_declined_not_an_error(library: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood) as declined:
        generate(library, "How many loans are more than 36 hours overdue?")
    assert "could not read" not in declined.value.message  # (an internal error's message)


def test_a_duration_without_its_start_event_is_not_guessed(library: SchemaSnapshot) -> None:
    """ "returned within 14 days" of what? Borrowing, the due date? Not answered with one."""
    try:
        sql = generate(library, "How many loans were returned within 14 days?").sql
    except QuestionNotUnderstood:
        return
    assert "borrowed_on" not in sql and "due_on" not in sql


def test_without_the_layer_s_today_the_data_s_latest_day_stands_for_it(
    library: SchemaSnapshot,
) -> None:
    sql = generate(library, "How many loans are more than 10 days overdue?").sql
    assert "MAX(borrowed_on)" in sql


_DIALECT_QUESTIONS = [q for q, _ in ANSWERED]


@pytest.fixture(scope="module")
def library_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(LIBRARY_DDL, _tables())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def library_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, LIBRARY_DDL, _tables(), typed=_typed) as conn:
        yield conn


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """ISO dates as dates (PostgreSQL does not cast bound text to DATE)."""
    return tuple(
        date.fromisoformat(v) if isinstance(v, str) and len(v) == 10 and v[4] == "-" else v
        for v in row
    )


def _plain(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        tuple(
            float(v) if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else str(v)
            for v in r
        )
        for r in result
    ]


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_duckdb_gives_the_same_answer(
    library: SchemaSnapshot,
    library_db: sqlite3.Connection,
    library_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = rows(library_db, generate(library, question).sql)
    sql = generate(library, question, dialect="duckdb").sql
    got = [tuple(r) for r in library_duckdb.execute(sql).fetchall()]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_postgres_gives_the_same_answer(
    library: SchemaSnapshot,
    library_db: sqlite3.Connection,
    library_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(library_db, generate(library, question).sql)
    sql = generate(library, question, dialect="postgresql").sql
    got = [tuple(r) for r in library_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(_plain(expected), _plain(got), ordered=False), sql


def test_mysql_steps_by_calendar_units(library: SchemaSnapshot) -> None:
    sql = generate(library, "How many members left within a year of joining?", dialect="mysql").sql
    tree = sqlglot.parse_one(sql, read="mysql")
    assert tree.find(sqlglot.exp.DateAdd) is not None, sql
    assert "DATE_ADD(joined_on, INTERVAL 1 YEAR)" in sql


def test_the_explanation_says_how_the_span_and_today_were_read(library: SchemaSnapshot) -> None:
    overdue = generate(library, "How many loans are more than 10 days overdue?").explanation
    assert "latest borrowed_on" in overdue and "returned_on is empty" in overdue
    running = generate(library, "How many memberships were active on 1 March 2024?").explanation
    assert "end_date is empty or after it" in running
    calendar = generate(library, "How many members left within a year of joining?").explanation
    assert "calendar years from joined_on to left_on" in calendar


LAYER = SemanticLayer.model_validate(
    {
        "today": "2024-06-30",
        "measures": [
            {"name": "sign-ups", "synonyms": ["new members", "sign ups"], "table": "members",
             "expression": "COUNT(*)", "time_column": "members.joined_on"},
            {"name": "loans made", "synonyms": ["lendings"], "table": "loans",
             "expression": "COUNT(*)", "time_column": "loans.borrowed_on"},
            {"name": "returned loans", "synonyms": ["returns"], "table": "loans",
             "expression": "COUNT(*)", "filter": "loans.returned_on IS NOT NULL",
             "time_column": "loans.borrowed_on"},
            {"name": "fees", "synonyms": ["membership fees"], "table": "memberships",
             "expression": "SUM(memberships.fee)", "time_column": "memberships.start_date"},
            {"name": "running fees", "synonyms": ["current fees"], "table": "memberships",
             "expression": "SUM(memberships.fee)", "filter": "memberships.end_date IS NULL",
             "time_column": "memberships.start_date"},
            {"name": "left members", "synonyms": ["leavers"], "table": "members",
             "expression": "COUNT(*)", "filter": "members.left_on IS NOT NULL",
             "time_column": "members.left_on"},
        ],
        "filters": [
            {"name": "overdue", "synonyms": ["overdue loans", "late loans"], "table": "loans",
             "condition": "loans.returned_on IS NULL AND loans.due_on < '2024-06-30'"},
            {"name": "active membership", "synonyms": ["active memberships"],
             "table": "memberships", "condition": "memberships.end_date IS NULL"},
        ],
    }
)  # fmt: skip

WITH_LAYER = [
    # the layer's today, not the data's latest day; its "overdue" still holds
    ("How many loans are more than 10 days overdue?",
     "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL AND due_on < '2024-06-20'"),
    # the layer's own meaning of the bare word
    ("How many loans are overdue?",
     "SELECT COUNT(*) FROM loans WHERE returned_on IS NULL AND due_on < '2024-06-30'"),
    # "signing up" inside the span is the start event, not the sign-ups measure
    ("How many members left less than six months after signing up?",
     "SELECT COUNT(*) FROM members WHERE left_on < date(joined_on, '+6 months')"),
    # "active membership" on a day: running that day, not the named filter's running today
    ("How many active memberships were there on 1 March 2024?",
     "SELECT COUNT(*) FROM memberships WHERE start_date <= '2024-03-01'"
     " AND (end_date IS NULL OR end_date > '2024-03-01')"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), WITH_LAYER)
def test_with_the_layer_its_today_and_definitions_are_kept(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(library_db, generate(library, question, layer=LAYER).sql, gold)


TWO_MEASURES = [
    # each measure's own filter inside its aggregate, the question's period on both
    ("Loans made and returned loans in 2024",
     "SELECT COUNT(*), SUM(CASE WHEN returned_on IS NOT NULL THEN 1 ELSE 0 END) FROM loans"
     " WHERE borrowed_on >= '2024-01-01' AND borrowed_on < '2025-01-01'"),
    ("What are the membership fees and the running fees?",
     "SELECT SUM(fee), SUM(CASE WHEN end_date IS NULL THEN fee END) FROM memberships"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), TWO_MEASURES)
def test_two_measures_with_their_own_filters_in_one_answer(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(library_db, generate(library, question, layer=LAYER).sql, gold)


def test_measures_dated_by_different_days_are_each_dated_by_their_own_day(
    library: SchemaSnapshot, library_db: sqlite3.Connection
) -> None:
    """ "sign-ups and leavers in 2024": one is dated by joining, the other by leaving; one
    period on one date would count the wrong leavers (3 here instead of 10). Each figure is
    read over its own rows by its own date (it was declined before figures side by side)."""
    sql = generate(library, "Sign-ups and leavers in 2024", layer=LAYER).sql
    gold = (
        "SELECT (SELECT COUNT(*) FROM members WHERE joined_on >= '2024-01-01'"
        " AND joined_on < '2025-01-01'),"
        " (SELECT COUNT(*) FROM members WHERE left_on >= '2024-01-01' AND left_on < '2025-01-01')"
    )
    assert library_db.execute(sql).fetchall() == library_db.execute(gold).fetchall() == [(10, 10)]


@pytest.mark.parametrize("question", [q for q, _ in TWO_MEASURES])
def test_two_measures_run_the_same_on_duckdb_and_postgres(
    library: SchemaSnapshot,
    library_db: sqlite3.Connection,
    library_duckdb: duckdb.DuckDBPyConnection,
    request: pytest.FixtureRequest,
    question: str,
) -> None:
    expected = _plain(rows(library_db, generate(library, question, layer=LAYER).sql))
    sql = generate(library, question, dialect="duckdb", layer=LAYER).sql
    assert results_match(expected, _plain(library_duckdb.execute(sql).fetchall()), ordered=False)
    if "postgresql" in BACKENDS:
        pg: sqlalchemy.Connection = request.getfixturevalue("library_postgres")
        sql = generate(library, question, dialect="postgresql", layer=LAYER).sql
        got = [tuple(r) for r in pg.execute(sqlalchemy.text(sql))]
        assert results_match(expected, _plain(got), ordered=False), sql


def test_days_after_the_rows_noun_and_its_event(
    library: SchemaSnapshot, library_db: sqlite3.Connection
) -> None:
    """ "days after an order is placed is it shipped": "order" names the rows, not an event
    (it used to be read as the ordering date, the same event as "placed", and declined)."""
    question = "On average, how many days after an order is placed is it shipped?"
    gold = "SELECT AVG(julianday(shipped_on) - julianday(ordered_on)) FROM orders"
    assert_same_answer(library_db, generate(library, question).sql, gold)


def test_a_lifetime_runs_from_the_start_to_the_ending_the_question_names(
    library: SchemaSnapshot, library_db: sqlite3.Connection
) -> None:
    question = "What is the average tenure in days of members who left?"
    gold = (
        "SELECT AVG(julianday(left_on) - julianday(joined_on)) FROM members"
        " WHERE left_on IS NOT NULL"
    )
    assert_same_answer(library_db, generate(library, question).sql, gold)


def test_a_lifetime_still_running_is_not_counted_to_an_end_it_lacks(
    library: SchemaSnapshot,
) -> None:
    """ "average tenure of members" includes current members, who have no `left_on`: a
    difference to it would silently leave them out."""
    try:
        sql = generate(library, "What is the average tenure of members?").sql
    except QuestionNotUnderstood:
        return
    assert "left_on" not in sql


def test_a_day_of_another_event_after_a_state_word_is_not_an_interval(
    library: SchemaSnapshot,
) -> None:
    """ "members with active memberships who borrowed on 1 March 2024": the day is the
    borrowing's, not a day the membership covers."""
    question = "How many current members borrowed on 1 March 2024?"
    try:
        sql = generate(library, question).sql
    except QuestionNotUnderstood:
        return
    assert "end_date IS NULL OR" not in sql and "left_on IS NULL OR" not in sql
