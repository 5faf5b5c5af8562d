"""The grammar of analysis in the offline engine, on small business schemas of other domains
(a clinic, a freight company) written here: time expressions, rankings, negation, follow-ups.

Each answer is checked by running it and the hand-written gold SQL on the same SQLite file."""

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

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood, Turn
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import results_match
from backend.semantic.layer import SemanticLayer
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.nl2sql.gym import assert_same_answer, sqlite_snapshot

CLINIC_DDL = """
CREATE TABLE doctors (
    doctor_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    specialty TEXT NOT NULL,
    salary REAL NOT NULL,
    supervisor_id INTEGER REFERENCES doctors(doctor_id),
    hire_date TEXT NOT NULL,
    left_on TEXT
);
CREATE TABLE patients (
    patient_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    city TEXT NOT NULL,
    registered_on TEXT NOT NULL
);
CREATE TABLE appointments (
    appointment_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    doctor_id INTEGER NOT NULL REFERENCES doctors(doctor_id),
    scheduled_at TEXT NOT NULL,
    fee REAL NOT NULL,
    is_cancelled INTEGER NOT NULL
);
"""
SPECIALTIES = ["Cardiology", "Dermatology", "Pediatrics", "Oncology"]
CITIES = ["Lyon", "Porto", "Ghent", "Turin", "Graz"]


def _build_clinic(path: Path) -> None:
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    conn.executescript(CLINIC_DDL)
    doctors = []
    for i in range(1, 13):
        supervisor = None if i <= 2 else rng.randint(1, min(i - 1, 4))
        hired = date(2015, 1, 1) + timedelta(days=rng.randint(0, 3000))
        left = None if i % 5 else (hired + timedelta(days=400)).isoformat()
        salary = 90_000 + 5_000 * i + (40_000 if i == 7 else 0)
        doctors.append(
            (i, f"Doctor {chr(64 + i)}", SPECIALTIES[i % 4], salary, supervisor, str(hired), left)
        )
    conn.executemany("INSERT INTO doctors VALUES (?, ?, ?, ?, ?, ?, ?)", doctors)
    patients = [
        (i, f"Patient {i}", CITIES[i % 5], str(date(2021, 1, 1) + timedelta(days=11 * i)))
        for i in range(1, 61)
    ]
    conn.executemany("INSERT INTO patients VALUES (?, ?, ?, ?)", patients)
    appointments = []
    for i in range(1, 401):
        day = date(2023, 1, 1) + timedelta(days=rng.randint(0, 700))
        at = f"{day} {rng.randint(8, 17):02d}:{rng.choice(['00', '30'])}:00"
        patient = rng.randint(1, 50)  # patients 51-60 never had an appointment
        doctor = 4 if i % 25 == 0 else rng.randint(1, 12)  # doctor D is the busiest
        fee = float(rng.choice([60, 80, 120, 200]) + i % 7)
        appointments.append((i, patient, doctor, at, fee, int(rng.random() < 0.15)))
    conn.executemany("INSERT INTO appointments VALUES (?, ?, ?, ?, ?, ?)", appointments)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def clinic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clinic") / "clinic.sqlite"
    _build_clinic(path)
    return path


@pytest.fixture(scope="module")
def clinic(clinic_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(clinic_path, "clinic")


@pytest.fixture(scope="module")
def clinic_db(clinic_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{clinic_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    *,
    history: list[Turn] | None = None,
    semantic: SemanticLayer | None = None,
    dialect: str = "sqlite",
) -> str:
    request = GenerationRequest(
        question=question,
        schema=schema,
        history=history or [],
        dialect=dialect,
        semantic=semantic,
    )
    return BuiltinGenerator().generate(request).sql


def rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


# ------------------------------------------------------------------ follow-ups


def test_a_follow_up_that_changes_nothing_is_declined_not_answered_again(
    clinic: SchemaSnapshot,
) -> None:
    first = "How many patients live in Lyon?"
    history = [Turn(question=first, sql=ask(clinic, first))]
    for nonsense in ("and the weather tomorrow?", "what about bananas", "ok thanks"):
        with pytest.raises(QuestionNotUnderstood, match="follow-up"):
            ask(clinic, nonsense, history=history)


def test_a_follow_up_that_changes_a_value_still_refines(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    first = "How many patients live in Lyon?"
    history = [Turn(question=first, sql=ask(clinic, first))]
    sql = ask(clinic, "and in Porto?", history=history)
    assert_same_answer(clinic_db, sql, "SELECT COUNT(*) FROM patients WHERE city = 'Porto'")


# ------------------------------------------------------------------ calendar periods

PERIODS = [
    ("How many appointments were scheduled between 10 and 16 March 2024?",
     "SELECT COUNT(*) FROM appointments"
     " WHERE scheduled_at >= '2024-03-10' AND scheduled_at < '2024-03-17'"),
    ("How many appointments were scheduled between January 1 and March 31, 2024?",
     "SELECT COUNT(*) FROM appointments"
     " WHERE scheduled_at >= '2024-01-01' AND scheduled_at < '2024-04-01'"),
    ("Number of appointments scheduled from 1 July to 15 August 2023",
     "SELECT COUNT(*) FROM appointments"
     " WHERE scheduled_at >= '2023-07-01' AND scheduled_at < '2023-08-16'"),
    ("How many appointments were scheduled in Q3 2023?",
     "SELECT COUNT(*) FROM appointments"
     " WHERE scheduled_at >= '2023-07-01' AND scheduled_at < '2023-10-01'"),
    ("How many appointments were scheduled in the first half of 2024?",
     "SELECT COUNT(*) FROM appointments"
     " WHERE scheduled_at >= '2024-01-01' AND scheduled_at < '2024-07-01'"),
    ("How many appointments were scheduled before 1 June 2023?",
     "SELECT COUNT(*) FROM appointments WHERE scheduled_at < '2023-06-01'"),
    # quarters: 1-4 within one year, '2024-Q1' across years
    ("Number of appointments per quarter in 2024",
     "SELECT (CAST(strftime('%m', scheduled_at) AS INTEGER) + 2) / 3, COUNT(*)"
     " FROM appointments WHERE scheduled_at >= '2024-01-01' AND scheduled_at < '2025-01-01'"
     " GROUP BY 1"),
    ("Number of appointments per quarter",
     "SELECT strftime('%Y', scheduled_at) || '-Q' || ((CAST(strftime('%m', scheduled_at)"
     " AS INTEGER) + 2) / 3), COUNT(*) FROM appointments GROUP BY 1"),
    # "which <time unit>": the answer is a time bucket, ranked
    ("Which quarter of 2024 had the most appointments?",
     "SELECT (CAST(strftime('%m', scheduled_at) AS INTEGER) + 2) / 3 AS q FROM appointments"
     " WHERE scheduled_at >= '2024-01-01' AND scheduled_at < '2025-01-01'"
     " GROUP BY q ORDER BY COUNT(*) DESC LIMIT 1"),
    ("Which month had the highest total fees?",
     "SELECT strftime('%Y-%m', scheduled_at) AS m FROM appointments"
     " GROUP BY m ORDER BY SUM(fee) DESC LIMIT 1"),
    ("List the doctors hired between 1 March 2016 and 30 September 2019, with their hire dates.",
     "SELECT full_name, hire_date FROM doctors"
     " WHERE hire_date BETWEEN '2016-03-01' AND '2019-09-30'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), PERIODS, ids=[q for q, _ in PERIODS])
def test_calendar_periods_become_half_open_day_ranges(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(clinic_db, ask(clinic, question), gold)


def test_a_lone_day_without_its_date_column_is_declined(clinic: SchemaSnapshot) -> None:
    # "active on 31 December" is not a filter on some date column: no guess
    with pytest.raises(QuestionNotUnderstood):
        ask(clinic, "How many doctors were there on 31 December 2019?")


def test_numbers_between_are_not_read_as_days(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    sql = ask(clinic, "How many appointments have a fee between 10 and 100?")
    assert_same_answer(
        clinic_db, sql, "SELECT COUNT(*) FROM appointments WHERE fee BETWEEN 10 AND 100"
    )


# ------------------------------------------------------------------ rankings

RANKINGS = [
    # top N by a measure: the rows' label and the measure, ranked
    ("Top 3 doctors by total fees",
     "SELECT d.full_name, SUM(a.fee) FROM doctors d JOIN appointments a"
     " ON a.doctor_id = d.doctor_id GROUP BY d.doctor_id ORDER BY SUM(a.fee) DESC LIMIT 3"),
    # which X has the highest <aggregate>: X only
    ("Which specialty has the highest average salary?",
     "SELECT specialty FROM doctors GROUP BY specialty ORDER BY AVG(salary) DESC LIMIT 1"),
    ("Which doctor has the most appointments?",
     "SELECT d.full_name FROM doctors d JOIN appointments a ON a.doctor_id = d.doctor_id"
     " GROUP BY d.doctor_id ORDER BY COUNT(*) DESC LIMIT 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), RANKINGS, ids=[q for q, _ in RANKINGS])
def test_rankings_show_what_was_asked(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(clinic_db, ask(clinic, question), gold)


# ------------------------------------------------------------------ self-references

PEERS = [
    ("Which doctors earn more than their supervisor?",
     "SELECT d.full_name FROM doctors d JOIN doctors s ON s.doctor_id = d.supervisor_id"
     " WHERE d.salary > s.salary"),
    ("Doctors whose salary is above their own supervisor's salary",
     "SELECT d.full_name FROM doctors d JOIN doctors s ON s.doctor_id = d.supervisor_id"
     " WHERE d.salary > s.salary"),
    ("Which doctors were hired before their supervisor?",
     "SELECT d.full_name FROM doctors d JOIN doctors s ON s.doctor_id = d.supervisor_id"
     " WHERE d.hire_date < s.hire_date"),
    ("Which doctors have no supervisor?",
     "SELECT full_name FROM doctors WHERE supervisor_id IS NULL"),
    ("Which doctors earn more than 150000?",
     "SELECT full_name FROM doctors WHERE salary > 150000"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), PEERS, ids=[q for q, _ in PEERS])
def test_a_row_compares_with_the_row_its_own_key_points_to(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(clinic_db, ask(clinic, question), gold)


def test_a_peer_key_is_recognised_without_a_declared_foreign_key(tmp_path: Path) -> None:
    path = tmp_path / "crew.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE crew (crew_id INTEGER PRIMARY KEY, full_name TEXT, wage REAL,
                           lead_id INTEGER);
        INSERT INTO crew VALUES (1, 'Ana', 50, NULL), (2, 'Bo', 60, 1), (3, 'Cy', 40, 1),
                                (4, 'Di', 45, 3);
        """
    )
    conn.commit()
    engine = open_sqlite_read_only(path)
    try:
        schema = introspect(engine, db_type="sqlite", database_name="crew")
    finally:
        engine.dispose()
    sql = ask(schema, "Which crew members earn more than their lead?")
    assert rows(conn, sql) == [("Bo",), ("Di",)]
    conn.close()


# ------------------------------------------------------------------ the semantic layer

CLINIC_LAYER = SemanticLayer.model_validate(
    {
        "today": "2024-12-31",
        "tables": [{"name": "patients", "synonyms": ["clients"]}],
        "measures": [
            {
                "name": "billed fees",
                "synonyms": ["takings", "billings"],
                "table": "appointments",
                "expression": "SUM(appointments.fee)",
                "filter": "appointments.is_cancelled = 0",
                "time_column": "appointments.scheduled_at",
            },
            {
                "name": "tenure",
                "table": "doctors",
                "expression": "AVG(julianday(COALESCE(doctors.left_on, '2024-12-31'))"
                " - julianday(doctors.hire_date))",
                "description": "Average days from hiring to leaving, or to today.",
            },
        ],
        "filters": [
            {
                "name": "current doctor",
                "synonyms": ["current doctors", "doctors still on staff"],
                "table": "doctors",
                "condition": "doctors.left_on IS NULL",
            },
            {
                "name": "cancelled appointment",
                "synonyms": ["cancelled", "cancellations"],
                "table": "appointments",
                "condition": "appointments.is_cancelled = 1",
            },
        ],
    }
)

LAYER_ANSWERS = [
    # a named measure: its aggregate with its own filter, dated by its time column
    ("What were our billed fees in 2024?",
     "SELECT SUM(fee) FROM appointments WHERE is_cancelled = 0"
     " AND scheduled_at >= '2024-01-01' AND scheduled_at < '2025-01-01'"),
    ("Billings per month in 2024",
     "SELECT strftime('%Y-%m', scheduled_at), SUM(fee) FROM appointments"
     " WHERE is_cancelled = 0 AND scheduled_at >= '2024-01-01' AND scheduled_at < '2025-01-01'"
     " GROUP BY 1"),
    ("Top 3 doctors by takings",
     "SELECT d.full_name, SUM(a.fee) FROM doctors d JOIN appointments a"
     " ON a.doctor_id = d.doctor_id WHERE a.is_cancelled = 0"
     " GROUP BY d.doctor_id ORDER BY SUM(a.fee) DESC LIMIT 3"),
    ("Which specialty brought in the most billings?",
     "SELECT d.specialty FROM doctors d JOIN appointments a ON a.doctor_id = d.doctor_id"
     " WHERE a.is_cancelled = 0 GROUP BY d.specialty ORDER BY SUM(a.fee) DESC LIMIT 1"),
    # a named filter: its condition; denied, the opposite
    ("How many current doctors are there?",
     "SELECT COUNT(*) FROM doctors WHERE left_on IS NULL"),
    ("What percentage of appointments were cancelled?",
     "SELECT 100.0 * SUM(is_cancelled = 1) / COUNT(*) FROM appointments"),
    # a measure counted in days, asked for in another unit
    ("What is the average tenure in weeks for each specialty?",
     "SELECT specialty, AVG(julianday(COALESCE(left_on, '2024-12-31')) - julianday(hire_date))"
     " / 7.0 FROM doctors GROUP BY specialty"),
    # the layer's today anchors relative time
    ("How many appointments were scheduled in the last 3 months?",
     "SELECT COUNT(*) FROM appointments WHERE scheduled_at >= '2024-09-30'"),
    ("Which doctors were hired more than eight years ago?",
     "SELECT full_name FROM doctors WHERE hire_date < '2016-12-31'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), LAYER_ANSWERS, ids=[q for q, _ in LAYER_ANSWERS])
def test_the_layer_definitions_become_sql(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(clinic_db, ask(clinic, question, semantic=CLINIC_LAYER), gold)


def test_a_denied_named_filter_on_related_rows_is_an_anti_join(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    sql = ask(clinic, "How many patients never had a cancelled appointment?", semantic=CLINIC_LAYER)
    assert_same_answer(
        clinic_db,
        sql,
        "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN"
        " (SELECT patient_id FROM appointments WHERE is_cancelled = 1)",
    )


def test_without_a_layer_relative_time_counts_from_the_datas_last_day(
    clinic: SchemaSnapshot,
) -> None:
    # the latest day the doctors' rows record stands for today (see data_today.py)
    sql = ask(clinic, "Which doctors were hired more than eight years ago?")
    assert "max(hire_date)" in sql.lower() and "now" not in sql.lower()
    layered = ask(
        clinic, "Which doctors were hired more than eight years ago?", semantic=CLINIC_LAYER
    )
    assert "'2016-12-31'" in layered and "now" not in layered.lower()


def test_hidden_columns_are_never_selected(clinic: SchemaSnapshot) -> None:
    document = CLINIC_LAYER.model_dump()
    document["tables"] = [{"name": "doctors", "columns": [{"name": "salary", "hidden": True}]}]
    layer = SemanticLayer.model_validate(document)
    with pytest.raises(QuestionNotUnderstood):
        ask(clinic, "What is the average salary of doctors?", semantic=layer)
    sql = ask(clinic, "List the doctors", semantic=layer)
    assert "salary" not in sql.lower()


# ------------------------------------------------------------------ per dialect

DATE_COLUMNS = {"hire_date", "left_on", "registered_on", "scheduled_at"}

# (question, with the layer?): the date arithmetic and subqueries that differ per dialect
DIALECT_QUESTIONS = [
    ("How many appointments were scheduled between 10 and 16 March 2024?", False),
    ("How many appointments were scheduled in Q3 2023?", False),
    ("Number of appointments per quarter in 2024", False),
    ("Number of appointments per quarter", False),
    ("Which doctors earn more than their supervisor?", False),
    ("Which doctors were hired before their supervisor?", False),
    ("Which doctors were hired more than eight years ago?", True),
    ("Billings per month in 2024", True),
    ("What percentage of appointments were cancelled?", True),
    ("How many patients never had a cancelled appointment?", True),
]


def _clinic_frames(clinic_path: Path) -> Iterator[tuple[str, pd.DataFrame]]:
    src = sqlite3.connect(f"file:{clinic_path}?mode=ro", uri=True)
    try:
        for table in ("doctors", "patients", "appointments"):
            frame = pd.read_sql_query(f"SELECT * FROM {table}", src)  # noqa: S608
            for col in frame.columns:
                if col in DATE_COLUMNS:
                    frame[col] = pd.to_datetime(frame[col])
            yield table, frame
    finally:
        src.close()


@pytest.fixture(scope="module")
def clinic_duckdb(clinic_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    for table, frame in _clinic_frames(clinic_path):
        conn.register("frame", frame)
        conn.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
        conn.unregister("frame")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def clinic_postgres(
    clinic_path: Path, request: pytest.FixtureRequest
) -> Iterator[sqlalchemy.Connection]:
    """The clinic in a real PostgreSQL database, dates and timestamps typed as such."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL not among NLSQL_TEST_BACKENDS")
    admin_url: str = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin_url)
    engine = sqlalchemy.create_engine(url)
    try:
        for table, frame in _clinic_frames(clinic_path):
            frame.to_sql(table, engine, index=False)
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        drop_pg_database(admin_url, url)


def _as_days(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """SQLite hands back dates as text, the others as datetimes: compare them as days."""

    def day(v: Any) -> Any:
        if hasattr(v, "isoformat"):
            return v.isoformat()[:10]
        if isinstance(v, Decimal):
            return float(v)
        return v

    return [tuple(day(v) for v in r) for r in result]


@pytest.mark.parametrize(("question", "layered"), DIALECT_QUESTIONS)
def test_duckdb_rendering_runs_and_agrees(
    clinic: SchemaSnapshot,
    clinic_db: sqlite3.Connection,
    clinic_duckdb: duckdb.DuckDBPyConnection,
    question: str,
    layered: bool,
) -> None:
    layer = CLINIC_LAYER if layered else None
    expected = rows(clinic_db, ask(clinic, question, semantic=layer))
    sql = ask(clinic, question, semantic=layer, dialect="duckdb")
    got = [tuple(r) for r in clinic_duckdb.execute(sql).fetchall()]
    assert results_match(_as_days(expected), _as_days(got), ordered=False), sql


@pytest.mark.parametrize(("question", "layered"), DIALECT_QUESTIONS)
def test_postgres_rendering_runs_and_agrees(
    clinic: SchemaSnapshot,
    clinic_db: sqlite3.Connection,
    clinic_postgres: sqlalchemy.Connection,
    question: str,
    layered: bool,
) -> None:
    layer = CLINIC_LAYER if layered else None
    expected = rows(clinic_db, ask(clinic, question, semantic=layer))
    sql = ask(clinic, question, semantic=layer, dialect="postgres")
    got = [tuple(r) for r in clinic_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(_as_days(expected), _as_days(got), ordered=False), sql


# ------------------------------------------------------------------ amounts and rates

AMOUNTS = [
    # "how much" is a total of the amount, not a list of rows
    ("How much did we charge in fees for cancelled appointments?",
     "SELECT SUM(fee) FROM appointments WHERE is_cancelled = 1"),
    # a condition on an average is per group of what is asked for
    # "which <column values> ... <table>": each value once
    ("Which cities do we have patients in?",
     "SELECT DISTINCT city FROM patients"),
    ("Which specialties have an average salary above 135000?",
     "SELECT specialty FROM doctors GROUP BY specialty HAVING AVG(salary) > 135000"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), AMOUNTS, ids=[q for q, _ in AMOUNTS])
def test_amounts_totals_and_rates(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(clinic_db, ask(clinic, question), gold)


# ------------------------------------------------------------------ both


def test_both_values_need_a_related_row_each(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    sql = ask(clinic, "Which patients saw doctors in both Cardiology and Oncology?")
    assert_same_answer(
        clinic_db,
        sql,
        "SELECT full_name FROM patients WHERE patient_id IN (SELECT a.patient_id FROM"
        " appointments a JOIN doctors d ON d.doctor_id = a.doctor_id WHERE d.specialty ="
        " 'Cardiology') AND patient_id IN (SELECT a.patient_id FROM appointments a JOIN"
        " doctors d ON d.doctor_id = a.doctor_id WHERE d.specialty = 'Oncology')",
    )


def test_one_value_or_the_other_but_not_both_is_declined(clinic: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood):
        ask(clinic, "Which patients saw doctors in Cardiology or Oncology but not both?")


def test_a_denied_filter_reads_the_longer_definition_it_starts(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    """ "never had an appointment cancelled late": the layer's "cancelled late", not "cancelled"."""
    document = CLINIC_LAYER.model_dump()
    document["filters"].append(
        {
            "name": "cancelled late",
            "synonyms": [],
            "table": "appointments",
            "condition": "appointments.is_cancelled = 1 AND appointments.fee > 150",
        }
    )
    layer = SemanticLayer.model_validate(document)
    sql = ask(clinic, "How many patients never had an appointment cancelled late?", semantic=layer)
    assert_same_answer(
        clinic_db,
        sql,
        "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM"
        " appointments WHERE is_cancelled = 1 AND fee > 150)",
    )
