"""Wrong answers the engine gave with confidence, each read right now or declined, on a small
dance school's schema written here (studios with a studio number, teachers who may have left,
pupils who may have left, their passes with a status and an end date, monthly fees whose month
is stored as 'YYYY-MM' text):

* a number after the noun it names ("studio 111") is a value, never the number of rows to
  show; "which 2 teachers teach the most" still limits;
* counting a table's rows per the column naming each row ("the studio number of the studio with
  the most people" grouped by `studio_number`) counts ones: doubted;
* "the average amount per lesson", where `lessons` counts lessons, asks for a ratio: the
  grouping by how many lessons is doubted, not answered, and the ratio offered as a choice;
* "active" said of rows whose own table records an end date, while a status 'active' is stored
  only in another table, reads the end date (`left_on IS NULL`); where one table says it both
  ways and its status names no ended state, the engine declines and offers both readings;
  where the status names an ended state too ('retired'), it reads the status;
* "an average fee above the overall average" (a layer's average, or a ratio) compares each
  group's figure with the figure over all rows, not with the average of the groups' averages
  (the data set apart who is above each);
* a layer's named filter negated ("has not opted in") never shows the flag it tests as the
  answer (the flag `SELECT`ed under `WHERE NOT (flag = 1)` repeats one value);
* a text column holding months ('2024-03') is a date: "in 2024", "per year", "in the last six
  months" compare and bucket its months as their first days, on SQLite, DuckDB and PostgreSQL.

Each answer is checked by running it and the gold query on the same database."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import results_match
from backend.semantic.layer import SemanticLayer
from tests.nl2sql.gym import (
    assert_same_answer,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

DANCE_DDL = """
CREATE TABLE studios (
    studio_id INTEGER PRIMARY KEY,
    studio_number INTEGER NOT NULL,
    floor INTEGER NOT NULL,
    capacity INTEGER NOT NULL
);
CREATE TABLE teachers (
    teacher_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    dance_style TEXT NOT NULL,
    status TEXT NOT NULL,
    left_on DATE
);
CREATE TABLE pupils (
    pupil_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    city TEXT NOT NULL,
    enrolled_on DATE NOT NULL,
    left_on DATE,
    newsletter_opt_in INTEGER NOT NULL
);
CREATE TABLE passes (
    pass_id INTEGER PRIMARY KEY,
    pupil_id INTEGER NOT NULL REFERENCES pupils(pupil_id),
    plan TEXT NOT NULL,
    status TEXT NOT NULL,
    ended_on DATE
);
CREATE TABLE classes (
    class_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    studio_id INTEGER NOT NULL REFERENCES studios(studio_id),
    teacher_id INTEGER NOT NULL REFERENCES teachers(teacher_id),
    weekday TEXT NOT NULL
);
CREATE TABLE fees (
    fee_id INTEGER PRIMARY KEY,
    pupil_id INTEGER NOT NULL REFERENCES pupils(pupil_id),
    billing_month TEXT NOT NULL,
    lessons INTEGER NOT NULL,
    amount REAL NOT NULL
)
"""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    return {
        # studio 111 has id 2: a reading of "studio 111" as an id or a row limit goes wrong
        "studios": [(1, 101, 1, 20), (2, 111, 1, 12), (3, 204, 2, 30)],
        "teachers": [
            (1, "Nina Park", "salsa", "active", None),
            (2, "Omar Reyes", "tango", "active", None),
            (3, "Lea Brandt", "ballet", "retired", "2024-06-30"),
        ],
        # pupils 2 and 5 left; pupil 5's pass was never closed (its status still 'active')
        "pupils": [
            (1, "Ada Byrne", "Cork", "2023-01-10", None, 1),
            (2, "Cian Walsh", "Galway", "2023-03-02", "2024-05-01", 0),
            (3, "Orla Nolan", "Cork", "2024-02-11", None, 0),
            (4, "Eoin Kelly", "Sligo", "2024-06-20", None, 1),
            (5, "Aoife Ryan", "Galway", "2022-09-01", "2024-08-01", 0),
        ],
        # 'paused' passes have no end date either: status and end date disagree on who is active
        "passes": [
            (1, 1, "monthly", "active", None),
            (2, 2, "monthly", "active", "2024-05-01"),
            (3, 3, "ten-class", "paused", None),
            (4, 4, "monthly", "active", None),
            (5, 5, "ten-class", "paused", None),
        ],
        "classes": [
            (1, "Salsa basics", 2, 1, "Mon"),
            (2, "Tango nights", 1, 2, "Tue"),
            (3, "Ballet I", 3, 3, "Wed"),
            (4, "Salsa advanced", 2, 1, "Thu"),
            (5, "Ballet II", 3, 3, "Fri"),
            (6, "Tango basics", 2, 2, "Fri"),
            (7, "Ballet III", 2, 3, "Sat"),
            (8, "Ballet IV", 2, 3, "Sun"),
        ],
        "fees": [
            (1, 1, "2024-01", 4, 80.0),
            (2, 1, "2024-02", 2, 74.0),
            (3, 2, "2023-11", 8, 120.0),
            (4, 3, "2024-03", 1, 30.0),
            (5, 4, "2024-07", 10, 90.0),
            (6, 5, "2024-01", 3, 66.0),
            (7, 5, "2023-12", 10, 140.0),
            (8, 2, "2024-04", 2, 44.0),
        ],
    }


@pytest.fixture(scope="module")
def dance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SchemaSnapshot, Path]]:
    path = sqlite_loaded(tmp_path_factory.mktemp("dance") / "dance.db", DANCE_DDL, _tables())
    yield sqlite_snapshot(path, "dance"), path


def _answer(dance: tuple[SchemaSnapshot, Path], question: str, gold: str) -> str:
    schema, path = dance
    sql = generate(schema, question).sql
    conn = sqlite3.connect(path)
    try:
        assert_same_answer(conn, sql, gold)
    finally:
        conn.close()
    return sql


def _declined(dance: tuple[SchemaSnapshot, Path], question: str) -> QuestionNotUnderstood:
    schema, _ = dance
    with pytest.raises(QuestionNotUnderstood) as declined:
        generate(schema, question)
    return declined.value


# --- a number after a noun names a thing ------------------------------------------------------


def test_a_number_after_the_noun_it_names_is_not_a_row_limit(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    """ "studio 111 ... the most classes" was answered with `LIMIT 111` (every teacher, the
    studio ignored)."""
    schema, _ = dance
    question = "Which teacher in studio 111 teaches the most classes?"
    try:
        sqls = [generate(schema, question).sql]
    except QuestionNotUnderstood as declined:
        sqls = [s.sql for s in declined.suggestions if s.sql]
    assert sqls
    assert not any(re.search(r"LIMIT\s+111\b", sql) for sql in sqls), sqls


def test_a_number_before_the_ranked_rows_still_limits(dance: tuple[SchemaSnapshot, Path]) -> None:
    sql = _answer(
        dance,
        "Which 2 teachers teach the most classes?",
        "SELECT t.full_name FROM teachers t JOIN classes c ON c.teacher_id = t.teacher_id "
        "GROUP BY t.teacher_id, t.full_name ORDER BY COUNT(*) DESC LIMIT 2",
    )
    assert "LIMIT 2" in sql


# --- "per" a counted unit ---------------------------------------------------------------------


def test_per_a_counted_unit_is_not_a_breakdown_by_how_many(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    """ "the average amount per lesson" was answered grouped by `lessons` (an average for each
    number of lessons)."""
    declined = _declined(dance, "What is the average amount per lesson?")
    assert "ratio" in str(declined)
    ratio = [s.sql for s in declined.suggestions if s.sql and "ratio" in s.text]
    assert ratio, "the ratio reading is offered as a choice"
    conn = sqlite3.connect(dance[1])
    try:
        assert_same_answer(conn, ratio[0], "SELECT SUM(amount) * 1.0 / SUM(lessons) FROM fees")
    finally:
        conn.close()


def test_per_a_category_is_still_a_breakdown(dance: tuple[SchemaSnapshot, Path]) -> None:
    _answer(
        dance,
        "What is the average capacity per floor?",
        "SELECT floor, AVG(capacity) FROM studios GROUP BY floor",
    )


# --- counting rows per the name of each row -----------------------------------------------------


def test_counting_rows_per_their_own_label_is_doubted(dance: tuple[SchemaSnapshot, Path]) -> None:
    """ "the studio with the most people" was answered `GROUP BY studio_number ORDER BY
    COUNT(*)`: one studio per group, the first number of a tie of ones."""
    declined = _declined(dance, "What is the studio number of the studio with the most people?")
    assert "every group holds one row" in str(declined)


def test_counting_rows_per_a_shared_value_is_still_answered(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    _answer(
        dance,
        "Which weekday has the most classes?",
        "SELECT weekday FROM classes GROUP BY weekday ORDER BY COUNT(*) DESC LIMIT 1",
    )


# --- "active" -----------------------------------------------------------------------------------


def test_active_rows_by_their_own_end_date(dance: tuple[SchemaSnapshot, Path]) -> None:
    """ "active pupils": the pupils' own `left_on` says it, not the status 'active' of their
    passes (pupil 5 left, yet has a pass still marked... 'paused'; pupil 2 left with an
    'active' pass)."""
    sql = _answer(
        dance,
        "How many active pupils are there?",
        "SELECT COUNT(*) FROM pupils WHERE left_on IS NULL",
    )
    assert "passes" not in sql


def test_active_said_two_ways_on_one_table_declines_with_both(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    """Passes hold a status ('active', 'paused', no ended state) and an end date that disagree;
    "active passes" was answered with the status alone."""
    declined = _declined(dance, "How many active passes are there?")
    offered = " ".join(s.sql or "" for s in declined.suggestions)
    assert "'active'" in offered
    assert "ended_on IS NULL" in offered


def test_active_by_a_status_that_names_the_end_too(dance: tuple[SchemaSnapshot, Path]) -> None:
    """Teachers' status names an ended state ('retired'): the status tracks the end date."""
    _answer(
        dance,
        "How many active teachers are there?",
        "SELECT COUNT(*) FROM teachers WHERE left_on IS NULL",
    )


# --- the overall average of a figure that does not add up -------------------------------------

FEE_LAYER = SemanticLayer.model_validate(
    {
        "filters": [
            {
                "name": "opted in",
                "table": "pupils",
                "condition": "pupils.newsletter_opt_in = 1",
            }
        ],
        "measures": [
            {"name": "average fee", "table": "fees", "expression": "AVG(fees.amount)"},
            {
                "name": "lesson price",
                "table": "fees",
                "expression": "SUM(fees.amount) * 1.0 / SUM(fees.lessons)",
            },
        ],
    }
)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "Which pupils have an average fee above the overall average?",
            "SELECT p.full_name FROM pupils p JOIN fees f ON f.pupil_id = p.pupil_id "
            "GROUP BY p.pupil_id, p.full_name "
            "HAVING AVG(f.amount) > (SELECT AVG(amount) FROM fees)",
        ),
        (
            "Which pupils have a lesson price higher than the overall average?",
            "SELECT p.full_name FROM pupils p JOIN fees f ON f.pupil_id = p.pupil_id "
            "GROUP BY p.pupil_id, p.full_name HAVING SUM(f.amount) * 1.0 / SUM(f.lessons) > "
            "(SELECT SUM(amount) * 1.0 / SUM(lessons) FROM fees)",
        ),
    ],
)
def test_overall_average_of_a_non_additive_figure_is_over_all_rows(
    dance: tuple[SchemaSnapshot, Path], question: str, gold: str
) -> None:
    """Before: `> (SELECT AVG(figure) FROM (... GROUP BY pupil) per_group)`, pupil 1 in."""
    _, path = dance
    sql = _with_layer(dance, question)
    conn = sqlite3.connect(path)
    try:
        assert_same_answer(conn, sql, gold)
    finally:
        conn.close()


def _with_layer(dance: tuple[SchemaSnapshot, Path], question: str) -> str:
    schema, _ = dance
    request = GenerationRequest(
        question=question, schema=schema, history=[], dialect="sqlite", semantic=FEE_LAYER
    )
    return BuiltinGenerator().generate(request).sql


def test_a_negated_named_filter_never_shows_its_own_flag(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    """ "Which pupils has not opted in to the newsletter?" was answered with the flag column
    the layer's filter tests (`SELECT newsletter_opt_in ... WHERE NOT (... = 1)`): zeros."""
    _, path = dance
    for question, gold in (
        (
            "Which pupils have not opted in?",
            "SELECT full_name FROM pupils WHERE newsletter_opt_in = 0",
        ),
        (
            "Which pupils has not opted in to the newsletter?",
            "SELECT full_name FROM pupils WHERE newsletter_opt_in = 0",
        ),
        (
            "Which cities have pupils who have not opted in to the newsletter?",
            "SELECT DISTINCT city FROM pupils WHERE newsletter_opt_in = 0",
        ),
    ):
        try:
            sql = _with_layer(dance, question)
        except QuestionNotUnderstood:
            continue  # declined: fine, never the flag shown as the answer
        conn = sqlite3.connect(path)
        try:
            assert_same_answer(conn, sql, gold)
        finally:
            conn.close()


def test_an_additive_figure_is_compared_with_the_average_group(
    dance: tuple[SchemaSnapshot, Path],
) -> None:
    """A count per group against "the average" stays the average of the groups' counts."""
    _answer(
        dance,
        "Which teachers teach more classes than the average teacher?",
        "SELECT t.full_name FROM teachers t JOIN classes c ON c.teacher_id = t.teacher_id "
        "GROUP BY t.teacher_id, t.full_name HAVING COUNT(*) > "
        "(SELECT AVG(n) FROM (SELECT COUNT(*) AS n FROM classes GROUP BY teacher_id))",
    )


# --- months stored as text --------------------------------------------------------------------

MONTH_CASES = [
    (
        "What was the total fee amount in 2024?",
        "SELECT SUM(amount) FROM fees WHERE billing_month LIKE '2024-%'",
    ),
    (
        "What is the total fee amount per year?",
        "SELECT SUBSTR(billing_month, 1, 4), SUM(amount) FROM fees GROUP BY 1",
    ),
    (
        "How many fees were billed in the last 6 months?",
        "SELECT COUNT(*) FROM fees WHERE billing_month >= '2024-01'",
    ),
    (
        "What was the total fee amount between January and March 2024?",
        "SELECT SUM(amount) FROM fees WHERE billing_month BETWEEN '2024-01' AND '2024-03'",
    ),
]


@pytest.mark.parametrize(("question", "gold"), MONTH_CASES)
def test_month_text_is_read_as_its_first_day(
    dance: tuple[SchemaSnapshot, Path], question: str, gold: str
) -> None:
    """Before: "no date column for the year 2024" (declined), or, typed as a date alone,
    `'2024-01' >= '2024-01-01'` false (January lost) and `STRFTIME('%Y', '2024-03')` NULL."""
    _answer(dance, question, gold)


def _gold_rows(path: Path, gold: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(gold).fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize(("question", "gold"), MONTH_CASES)
def test_month_text_runs_on_duckdb(
    dance: tuple[SchemaSnapshot, Path], question: str, gold: str
) -> None:
    schema, path = dance
    sql = generate(schema, question, dialect="duckdb").sql
    conn = duckdb_loaded(DANCE_DDL, _tables())
    try:
        got = plain([tuple(r) for r in conn.execute(sql).fetchall()])
    finally:
        conn.close()
    assert results_match(plain(_gold_rows(path, gold)), got, ordered=False), sql


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        dt.date.fromisoformat(v)
        if isinstance(v, str) and re.fullmatch(r"\d{4}-\d\d-\d\d", v)
        else v
        for v in row
    )


@pytest.mark.parametrize(("question", "gold"), MONTH_CASES)
def test_month_text_runs_on_postgres(
    request: pytest.FixtureRequest, dance: tuple[SchemaSnapshot, Path], question: str, gold: str
) -> None:
    schema, path = dance
    sql = generate(schema, question, dialect="postgres").sql
    with postgres_loaded(request, DANCE_DDL, _tables(), typed=_typed) as conn:
        got = plain([tuple(r) for r in conn.execute(sqlalchemy.text(sql)).fetchall()])
    assert results_match(plain(_gold_rows(path, gold)), got, ordered=False), sql
