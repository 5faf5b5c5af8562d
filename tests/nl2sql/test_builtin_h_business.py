"""Analysts' questions without a semantic layer, on a small hospital schema written here: an
aggregate over the compared row's own group ("earns more than the average salary of their
ward"), the ranked figure asked for beside the ranked rows ("the three wards with the most
patients, and how many each"), measures computed from two columns ("quantity times unit
cost"), a row's superior said without naming the key ("the person they report to"), and
"over time" that is not a comparison. Rewordings of one question must reach one result.

Each answer is checked by running it and the hand-written gold SQL on the same database
(SQLite); the new SQL shapes (a correlated subquery over the row's own group, an expression
over two columns of joined tables) also run on DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.evaluation import has_top_level_order, results_match
from tests.nl2sql.gym import (
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

HOSPITAL_DDL = """
CREATE TABLE wards (
    ward_id INTEGER PRIMARY KEY,
    ward_name TEXT NOT NULL,
    floor INTEGER NOT NULL
);
CREATE TABLE nurses (
    nurse_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    ward_id INTEGER NOT NULL REFERENCES wards(ward_id),
    salary REAL NOT NULL,
    hired_on TEXT NOT NULL,
    supervisor_id INTEGER REFERENCES nurses(nurse_id)
);
CREATE TABLE patients (
    patient_id INTEGER PRIMARY KEY,
    patient_name TEXT NOT NULL,
    ward_id INTEGER NOT NULL REFERENCES wards(ward_id),
    admitted_on TEXT NOT NULL,
    discharged_on TEXT
);
CREATE TABLE treatments (
    treatment_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    nurse_id INTEGER NOT NULL REFERENCES nurses(nurse_id),
    quantity INTEGER NOT NULL,
    unit_cost REAL NOT NULL,
    surcharge REAL NOT NULL,
    given_on TEXT NOT NULL
);
CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    amount REAL NOT NULL,
    currency TEXT NOT NULL,
    settled_on TEXT
);
CREATE TABLE rotations (
    rotation_id INTEGER PRIMARY KEY,
    nurse_id INTEGER NOT NULL REFERENCES nurses(nurse_id),
    shift_hours INTEGER NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT
)
"""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    wards = [(1, "Cardiology", 2), (2, "Oncology", 3), (3, "Pediatrics", 1), (4, "Maternity", 1)]
    nurses = [
        (
            i,
            f"Nurse {i:02d}",
            i % 4 + 1,
            30000.0 + (i * 2711) % 25000 + 4000 * (i % 4),
            f"20{10 + i % 12}-{i % 12 + 1:02d}-{i % 27 + 1:02d}",
            None if i <= 4 else i % 4 + 1,
        )
        for i in range(1, 25)
    ]
    patients = [
        (
            i,
            f"Patient {i:02d}",
            1 if i % 6 == 0 else 2 if i % 11 == 0 else (i * 3) % 4 + 1,
            f"2024-{i % 12 + 1:02d}-{i % 27 + 1:02d}",
            None if i % 5 == 0 else f"2024-{i % 12 + 1:02d}-28",
        )
        for i in range(1, 61)
    ]
    treatments = [
        (
            i,
            (i * 7) % 60 + 1,
            (i * 5) % 24 + 1 if i % 9 else 3,
            i % 4 + 1,
            float(10 + (i * 13) % 90),
            float((i * 7) % 5),
            f"2024-{i % 12 + 1:02d}-{i % 25 + 1:02d}",
        )
        for i in range(1, 201)
    ]
    rotations = [
        (
            i,
            i % 24 + 1,
            8 + 4 * (i % 2),
            f"2024-{i % 12 + 1:02d}-01",
            None if i % 3 == 0 else f"2024-{i % 12 + 1:02d}-20",
        )
        for i in range(1, 31)
    ]
    bills = [
        (
            i,
            (i * 11) % 60 + 1,
            float(100 + (i * 37) % 900),
            ["EUR", "GBP", "USD"][i % 3],
            None if i % 4 == 0 else f"2024-{i % 12 + 1:02d}-15",
        )
        for i in range(1, 41)
    ]
    return {
        "wards": wards,
        "nurses": nurses,
        "patients": patients,
        "bills": bills,
        "treatments": treatments,
        "rotations": rotations,
    }


@pytest.fixture(scope="module")
def hospital_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_loaded(
        tmp_path_factory.mktemp("hospital") / "hospital.sqlite", HOSPITAL_DDL, _tables()
    )


@pytest.fixture(scope="module")
def hospital(hospital_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(hospital_path, "hospital")


@pytest.fixture(scope="module")
def hospital_db(hospital_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{hospital_path}?mode=ro", uri=True)
    yield conn
    conn.close()


_OWN_WARD_GOLD = (
    "SELECT full_name FROM nurses n WHERE salary >"
    " (SELECT AVG(salary) FROM nurses n2 WHERE n2.ward_id = n.ward_id)"
)
OWN_GROUP = [
    # was: compared with the average over every nurse, the ward's name shown beside
    # (a wrong answer at confidence 0.65)
    ("Which nurses earn more than the average salary of their ward?", _OWN_WARD_GOLD),
    ("Nurses whose salary is above the average of their own ward", _OWN_WARD_GOLD),
    ("Nurses paid less than the average salary for their ward",
     "SELECT full_name FROM nurses n WHERE salary <"
     " (SELECT AVG(salary) FROM nurses n2 WHERE n2.ward_id = n.ward_id)"),
]  # fmt: skip

_TOP_WARDS_GOLD = (
    "SELECT w.ward_name, COUNT(*) FROM wards w JOIN patients p ON p.ward_id = w.ward_id"
    " GROUP BY w.ward_id, w.ward_name ORDER BY COUNT(*) DESC LIMIT 2"
)
_TOP_NURSES_GOLD = (
    "SELECT n.full_name, COUNT(*) FROM nurses n JOIN treatments t ON t.nurse_id = n.nurse_id"
    " GROUP BY n.nurse_id, n.full_name ORDER BY COUNT(*) DESC LIMIT 1"
)
RANKED_FIGURES = [
    # the ranked count beside each ranked row (was: declined, its candidate a count of the
    # ranked rows themselves, one each)
    ("The two wards with the most patients and how many each", _TOP_WARDS_GOLD),
    ("Which two wards have the most patients, and how many for each?", _TOP_WARDS_GOLD),
    ("Top 2 wards by number of patients, with their counts", _TOP_WARDS_GOLD),
    ("Which nurse gave the most treatments, and how many?", _TOP_NURSES_GOLD),
    # "for each" after "the number of ...": the figure per ranked row (was: a ranking within
    # groups of the ward's name, shown at confidence 0.82)
    ("Give the names of the 2 wards with the largest number of patients, and the number of"
     " patients for each", _TOP_WARDS_GOLD),
    # "over time" says when, not "more than" (was declined: no value to compare with)
    ("Which nurse gave the most treatments over time, and how many?", _TOP_NURSES_GOLD),
]  # fmt: skip

COMPUTED = [
    # one expression over the two columns (was: SUM(quantity), SUM(unit_cost) and a count,
    # shown as right)
    ("Total value of treatments (quantity times unit cost) per nurse",
     "SELECT n.full_name, SUM(t.quantity * t.unit_cost) FROM treatments t"
     " JOIN nurses n ON n.nurse_id = t.nurse_id GROUP BY n.nurse_id, n.full_name"),
    ("average of quantity multiplied by unit cost for treatments",
     "SELECT AVG(quantity * unit_cost) FROM treatments"),
    # "including": the amount plus the column named (was: grouped by the surcharge)
    ("Total unit cost including surcharge of all treatments",
     "SELECT SUM(unit_cost + surcharge) FROM treatments"),
    ("Average treatment unit cost including surcharge",
     "SELECT AVG(unit_cost + surcharge) FROM treatments"),
    ("Top 3 nurses by quantity times unit cost",
     "SELECT n.full_name, SUM(t.quantity * t.unit_cost) FROM nurses n"
     " JOIN treatments t ON t.nurse_id = n.nurse_id GROUP BY n.nurse_id, n.full_name"
     " ORDER BY SUM(t.quantity * t.unit_cost) DESC LIMIT 3"),
]  # fmt: skip

SHARES = [
    # the share of an amount, not of rows (was: the amount dropped, the share of rows
    # counted instead, shown as right)
    ("What percentage of treatment unit cost went to patients in the Cardiology ward?",
     "SELECT 100.0 * SUM(CASE WHEN w.ward_name = 'Cardiology' THEN t.unit_cost ELSE 0 END)"
     " / SUM(t.unit_cost) FROM treatments t JOIN patients p ON p.patient_id = t.patient_id"
     " JOIN wards w ON w.ward_id = p.ward_id"),
    ("What share of the total salary goes to nurses in Oncology?",
     "SELECT 100.0 * SUM(CASE WHEN w.ward_name = 'Oncology' THEN n.salary ELSE 0 END)"
     " / SUM(n.salary) FROM nurses n JOIN wards w ON w.ward_id = n.ward_id"),
    # the year of the amount's own rows (their one date)
    ("What percentage of the 2024 treatment quantity went to patients in Cardiology?",
     "SELECT 100.0 * SUM(CASE WHEN w.ward_name = 'Cardiology' THEN t.quantity ELSE 0 END)"
     " / SUM(t.quantity) FROM treatments t JOIN patients p ON p.patient_id = t.patient_id"
     " JOIN wards w ON w.ward_id = p.ward_id WHERE t.given_on LIKE '2024%'"),
    # "<event> rate": the share of rows whose event date is filled, broken down as asked
    # (was: a breakdown lost, or "per" read as the unit of a price)
    ("What is the discharge rate of patients?",
     "SELECT 100.0 * SUM(discharged_on IS NOT NULL) / COUNT(*) FROM patients"),
    # a share of rows stays one
    ("What percentage of nurses work in Oncology?",
     "SELECT 100.0 * SUM(CASE WHEN w.ward_name = 'Oncology' THEN 1 ELSE 0 END) / COUNT(*)"
     " FROM nurses n JOIN wards w ON w.ward_id = n.ward_id"),
]  # fmt: skip

_ABOVE_SUPERVISOR_GOLD = (
    "SELECT n.full_name FROM nurses n JOIN nurses s ON s.nurse_id = n.supervisor_id"
    " WHERE n.salary > s.salary"
)
SUPERIORS = [
    # the verb linked to the compared column is not shown (was: the salaries listed)
    ("Which nurses are paid a higher salary than their supervisor?", _ABOVE_SUPERVISOR_GOLD),
    # the superior said without the key's name (was declined: no value to compare with)
    ("Which nurses are paid a higher salary than the person they report to?",
     _ABOVE_SUPERVISOR_GOLD),
    ("Which nurses earn more than the nurse who supervises them?", _ABOVE_SUPERVISOR_GOLD),
]  # fmt: skip

ALL = OWN_GROUP + RANKED_FIGURES + COMPUTED + SHARES + SUPERIORS


_PER_WARD_GOLD = (
    "SELECT w.ward_name, COUNT(*) FROM patients p JOIN wards w ON w.ward_id = p.ward_id"
    " GROUP BY w.ward_id, w.ward_name"
)
REWORDED = [
    "How many patients are in each ward?",
    "Number of patients by ward",
    "For every ward, how many patients are there?",
    "Count patients per ward",
    "What is the number of patients in each ward?",
    # the measure named after the rows counted (was declined, its candidate counting wards)
    "Patient count for each ward",
    # (was: the wards counted, shown as right)
    "Break down the patient count by ward",
    # a bare "every" breaks the count down like "each" (was: one count, shown as right)
    "How many patients does every ward hold?",
]

_PER_NURSE_GOLD = (
    "SELECT n.full_name, COUNT(*) FROM treatments t JOIN nurses n ON n.nurse_id = t.nurse_id"
    " GROUP BY n.nurse_id, n.full_name"
)
PASSIVE = [
    ("How many treatments did each nurse give?", _PER_NURSE_GOLD),
    # the participle of the rows' own event date is what happened to them, not a key to
    # group by (was: grouped by the date too, shown as right; `given_on` read as text)
    ("How many treatments were given by each nurse?", _PER_NURSE_GOLD),
    ("How many treatments were given in 2024 by each nurse?",
     "SELECT n.full_name, COUNT(*) FROM treatments t JOIN nurses n ON n.nurse_id = t.nurse_id"
     " WHERE t.given_on LIKE '2024%' GROUP BY n.nurse_id, n.full_name"),
    # `given_on` is a date (was declined: no date column for the month)
    ("How many treatments were given each month?",
     "SELECT substr(given_on, 1, 7), COUNT(*) FROM treatments GROUP BY substr(given_on, 1, 7)"),
]  # fmt: skip


def test_the_golds_are_not_vacuous_and_tell_the_readings_apart(
    hospital_db: sqlite3.Connection,
) -> None:
    for _question, gold in ALL:
        got = rows(hospital_db, gold)
        assert got and got != [(0,)], gold
    overall = rows(
        hospital_db, "SELECT full_name FROM nurses WHERE salary > (SELECT AVG(salary) FROM nurses)"
    )
    assert sorted(overall) != sorted(rows(hospital_db, _OWN_WARD_GOLD))
    separate = rows(hospital_db, "SELECT SUM(quantity) * SUM(unit_cost) FROM treatments")
    assert separate != rows(hospital_db, "SELECT SUM(quantity * unit_cost) FROM treatments")
    counts = [r[1] for r in rows(hospital_db, _TOP_WARDS_GOLD)]
    assert counts[0] > counts[1] > 1  # no tie at the cut, and not one row each
    ranked = rows(hospital_db, _TOP_WARDS_GOLD.replace("LIMIT 2", "LIMIT 3"))
    assert ranked[1][1] > ranked[2][1]


@pytest.mark.parametrize(("question", "gold"), OWN_GROUP)
def test_an_average_over_the_rows_own_group(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    answer = generate(hospital, question)
    assert_same_answer(hospital_db, answer.sql, gold)
    assert "ward_name" not in answer.sql  # the ward is the group, not a column to show


@pytest.mark.parametrize(("question", "gold"), RANKED_FIGURES)
def test_the_ranked_figure_beside_the_ranked_rows(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


@pytest.mark.parametrize(("question", "gold"), COMPUTED)
def test_a_measure_computed_from_two_columns(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


@pytest.mark.parametrize(("question", "gold"), SHARES)
def test_the_share_of_an_amount(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    sql = generate(hospital, question).sql
    got, expected = rows(hospital_db, sql), rows(hospital_db, gold)
    assert len(got) == len(expected) == 1
    assert got[0][-1] == pytest.approx(expected[0][0]), sql


RATES_BY = [
    ("Patient discharge rate by ward",
     "SELECT w.ward_name, 100.0 * SUM(p.discharged_on IS NOT NULL) / COUNT(*) FROM patients p"
     " JOIN wards w ON w.ward_id = p.ward_id GROUP BY w.ward_id, w.ward_name"),
    ("What is the patient discharge rate per ward?",
     "SELECT w.ward_name, 100.0 * SUM(p.discharged_on IS NOT NULL) / COUNT(*) FROM patients p"
     " JOIN wards w ON w.ward_id = p.ward_id GROUP BY w.ward_id, w.ward_name"),
    ("What percentage of patients were discharged, by ward?",
     "SELECT w.ward_name, 100.0 * SUM(p.discharged_on IS NOT NULL) / COUNT(*) FROM patients p"
     " JOIN wards w ON w.ward_id = p.ward_id GROUP BY w.ward_id, w.ward_name"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), RATES_BY)
def test_a_share_broken_down_by_a_group(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


def test_a_share_of_an_amount_dated_by_other_rows_is_declined(hospital: SchemaSnapshot) -> None:
    # the year is the admissions': the quantity of which rows? (was: the share of the
    # admitted patients' rows, shown as right)
    with pytest.raises(QuestionNotUnderstood, match="period"):
        generate(
            hospital,
            "What percentage of treatment quantity went to Cardiology patients admitted in 2024?",
        )


@pytest.mark.parametrize(("question", "gold"), SUPERIORS)
def test_compared_with_the_row_they_report_to(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


STATES = [
    # "still running": the end date is empty (`end_date` for "ended"; was declined, the
    # qualifier unused)
    ("How many rotations are still running?",
     "SELECT COUNT(*) FROM rotations WHERE end_date IS NULL"),
    ("Total shift hours of rotations that are still running",
     "SELECT SUM(shift_hours) FROM rotations WHERE end_date IS NULL"),
    ("How many rotations have ended?",
     "SELECT COUNT(*) FROM rotations WHERE end_date IS NOT NULL"),
    # a word for a sum of money before "by": the amount added up per group (was: the bills
    # listed in currency order, shown as right)
    ("Unsettled balance by currency",
     "SELECT currency, SUM(amount) FROM bills WHERE settled_on IS NULL GROUP BY currency"),
    # "how long ... take to <event>": the time from the row's start to the event
    ("How long do patients take to be discharged, on average?",
     "SELECT AVG(julianday(discharged_on) - julianday(admitted_on)) FROM patients"),
]  # fmt: skip


_PER_SUPERVISOR_GOLD = (
    "SELECT s.full_name, COUNT(*) FROM nurses n JOIN nurses s ON s.nurse_id = n.supervisor_id"
    " GROUP BY s.nurse_id, s.full_name"
)
REPORTING_LINES = [
    "How many nurses does each supervisor have?",
    # the verb of the reporting line is read (was declined: words matched nothing)
    "How many nurses report directly to each supervisor?",
    # "under" a role is the reporting line (was declined: a comparison with no value)
    "How many nurses work under each supervisor?",
]


@pytest.mark.parametrize("question", REPORTING_LINES)
def test_reporting_lines(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, _PER_SUPERVISOR_GOLD)


def test_under_a_number_is_still_a_comparison(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection
) -> None:
    sql = generate(hospital, "nurses paid under 40000").sql
    assert_same_answer(hospital_db, sql, "SELECT full_name FROM nurses WHERE salary < 40000")


@pytest.mark.parametrize(("question", "gold"), STATES)
def test_states_and_times_of_events(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


@pytest.mark.parametrize("question", REWORDED)
def test_rewordings_of_one_breakdown_reach_one_result(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, _PER_WARD_GOLD)


@pytest.mark.parametrize(("question", "gold"), PASSIVE)
def test_active_and_passive_wordings_reach_one_result(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hospital_db, generate(hospital, question).sql, gold)


def test_every_without_a_figure_lists_the_rows(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection
) -> None:
    assert_same_answer(
        hospital_db, generate(hospital, "List every ward").sql, "SELECT ward_name FROM wards"
    )


def test_no_rows_named_and_a_verb_of_another_tables_amount(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection
) -> None:
    # no rows named, "paid" also fits the bills' amount: the salary compared inside the
    # comparison says whose rows (was declined: a comparison with no value)
    answer = generate(hospital, "Is anyone paid a higher salary than the person they report to?")
    assert_same_answer(hospital_db, answer.sql, _ABOVE_SUPERVISOR_GOLD)
    assert "bills" not in answer.sql


def test_a_named_group_after_the_average_is_not_the_rows_own(hospital: SchemaSnapshot) -> None:
    # "of the Cardiology ward": a value, another reading; never the nurse's own ward
    try:
        sql = generate(
            hospital, "Which nurses earn more than the average salary of the Cardiology ward?"
        ).sql
    except QuestionNotUnderstood:
        return
    assert "grp" not in sql


def test_how_many_of_rows_not_named_before_the_ranking_is_not_the_ranked_figure(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection
) -> None:
    # the rows ranked are not named before the superlative: no ranked count to show
    try:
        sql = generate(
            hospital, "Find the two most prolific nurses and how many treatments they gave"
        ).sql
    except QuestionNotUnderstood:
        return
    gold = (
        "SELECT n.full_name, COUNT(*) FROM nurses n JOIN treatments t ON t.nurse_id = n.nurse_id"
        " GROUP BY n.nurse_id, n.full_name ORDER BY COUNT(*) DESC LIMIT 2"
    )
    assert_same_answer(hospital_db, sql, gold)


def test_a_ranking_within_each_named_group_stays_one(hospital: SchemaSnapshot) -> None:
    sql = generate(hospital, "Top 2 nurses by number of treatments in each ward").sql
    assert "PARTITION BY" in sql.upper()


def test_over_a_number_is_still_a_comparison(
    hospital: SchemaSnapshot, hospital_db: sqlite3.Connection
) -> None:
    sql = generate(hospital, "nurses paid over 40000").sql
    assert_same_answer(hospital_db, sql, "SELECT full_name FROM nurses WHERE salary > 40000")


def test_a_product_of_a_key_or_a_text_column_is_not_computed(hospital: SchemaSnapshot) -> None:
    # keys and names are not figures to multiply
    for question in (
        "total of nurse id times quantity for treatments",
        "sum of ward name times floor",
    ):
        try:
            sql = generate(hospital, question).sql
        except QuestionNotUnderstood:
            continue
        assert "*" not in sql.split("FROM")[0], sql


# ------------------------------------------------------------------ other dialects

SHAPES = [OWN_GROUP[0], COMPUTED[0], COMPUTED[2], COMPUTED[4], RANKED_FIGURES[0], SHARES[0]]


@pytest.fixture(scope="module")
def hospital_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(HOSPITAL_DDL, _tables())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def hospital_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, HOSPITAL_DDL, _tables()) as conn:
        yield conn


@pytest.mark.parametrize(("question", "gold"), SHAPES)
def test_duckdb_runs_the_same_shapes(
    hospital: SchemaSnapshot,
    hospital_db: sqlite3.Connection,
    hospital_duckdb: duckdb.DuckDBPyConnection,
    question: str,
    gold: str,
) -> None:
    expected = rows(hospital_db, gold)
    sql = generate(hospital, question, dialect="duckdb").sql
    got = [tuple(r) for r in hospital_duckdb.execute(sql).fetchall()]
    assert results_match(plain(expected), plain(got), ordered=has_top_level_order(gold)), sql


@pytest.mark.parametrize(("question", "gold"), SHAPES)
def test_postgres_runs_the_same_shapes(
    hospital: SchemaSnapshot,
    hospital_db: sqlite3.Connection,
    hospital_postgres: sqlalchemy.Connection,
    question: str,
    gold: str,
) -> None:
    expected = rows(hospital_db, gold)
    sql = generate(hospital, question, dialect="postgresql").sql
    got = [tuple(r) for r in hospital_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(plain(expected), plain(got), ordered=has_top_level_order(gold)), sql
