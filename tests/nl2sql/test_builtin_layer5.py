"""How the builtin engine uses a semantic layer, fifth part, on a business of another domain
written here: Hearthline, a home-care agency whose patients have a care coordinator on its
staff, and who pay bills for the visits; with its own layer.

* a column synonym of a reference key ("care coordinator" for `patients.coordinator_id`) that
  is also a value stored in the table the key refers to (`staff.role = 'Care Coordinator'`):
  read as the value when every other word names that table ("which current care
  coordinators work part-time"; was the key, joined through patients), as the key when the
  question names the key's own table or rows reached through it;
* "which coordinators have patients in more than two cities": the rows listed are named by
  that key's synonym and said to have rows of its table: they are the staff the key refers
  to, grouped, with the comparison on each (was the key compared with the number);
* "never paid a bill late": a named filter ("paid late") written around its own rows is read
  from its first word, so the negation before it takes the patients with no such bill (was
  "unpaid and paid late", a wrong answer);
* "patients that have a care coordinator (assigned)": a named filter worded as an absence
  ("no care coordinator") said with "have a" is its negation (was declined in a share);
* "Physiotherapy booked but not Meal Delivery": a named state said of one value holds for the
  value denied after "but not" (the subquery keeps it), and "but" is read as that contrast;
* "total billed for each patient with at least 3 (issued) bills": a number of rows after a named
  measure bounds how many rows each group has (was the measure's threshold: SUM(amount) >= 3).

Each answer is checked by running it and a hand-written gold query on the same SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.evaluation import results_match
from backend.semantic.layer import SemanticLayer
from tests.nl2sql.gym import (
    Rows,
    assert_same_answer,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

HEARTHLINE_DDL = """
CREATE TABLE staff (
    staff_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    is_part_time INTEGER NOT NULL,
    left_on DATE
);
CREATE TABLE patients (
    patient_id INTEGER PRIMARY KEY,
    patient_name TEXT NOT NULL,
    city TEXT NOT NULL,
    enrolled_on DATE NOT NULL,
    coordinator_id INTEGER REFERENCES staff(staff_id)
);
CREATE TABLE services (
    service_id INTEGER PRIMARY KEY,
    service_name TEXT NOT NULL
);
CREATE TABLE patient_services (
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    service_id INTEGER NOT NULL REFERENCES services(service_id),
    is_booked INTEGER NOT NULL,
    PRIMARY KEY (patient_id, service_id)
);
CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    patient_id INTEGER NOT NULL REFERENCES patients(patient_id),
    due_on DATE NOT NULL,
    paid_on DATE,
    amount DOUBLE PRECISION NOT NULL
);
"""
CITIES = ["Leeds", "York", "Hull", "Bath"]
STAFF_NAMES = [
    "Ava Stone", "Ben Ould", "Cara Finch", "Dan Moss", "Eve Hart", "Finn Roe", "Gus Lane"
]  # fmt: skip


def _rows() -> Rows:
    roles = ["Care Coordinator", "Care Coordinator", "Nurse", "Care Coordinator", "Nurse",
             "Care Coordinator", "Care Coordinator"]  # fmt: skip
    staff = [  # Gus (7): a part-time coordinator with no patients yet
        (i + 1, name, roles[i], int(i in (0, 2, 5, 6)), "2024-03-01" if i == 5 else None)
        for i, name in enumerate(STAFF_NAMES)
    ]
    patients = []
    for i in range(1, 25):
        # Ava (1) and Dan (4) have patients in more cities than Ben (2) and Cara (3, a nurse
        # who coordinates one patient); some patients have no coordinator
        coordinator = [1, 2, 4, None, 1, 4, 3 if i == 6 else None][i % 7]
        city = CITIES[(i // 2) % 4] if coordinator != 2 else CITIES[i % 2]
        enrolled = date(2023, 1, 5) + timedelta(days=17 * i)
        patients.append((i, f"Patient {i:02d}", city, str(enrolled), coordinator))
    bills = []
    for i in range(1, 61):
        patient = 1 + (i * 7) % 24
        due = date(2024, 1, 10) + timedelta(days=9 * i)
        paid = None if i % 8 == 0 else due + timedelta(days=(i % 5) * 4 - 6)
        bills.append((i, patient, str(due), str(paid) if paid else None, 40.0 + (i % 6) * 12.5))
    services = [(1, "Physiotherapy"), (2, "Meal Delivery"), (3, "Night Sitting")]
    booked = []
    for i in range(1, 25):
        # patient i has physiotherapy when i % 3 != 0 (booked unless i % 4 == 0) and meal
        # delivery when i % 2 == 0 (booked when i % 5 != 0): some have meals connected, not booked
        if i % 3:
            booked.append((i, 1, int(i % 4 != 0)))
        if i % 2 == 0:
            booked.append((i, 2, int(i % 5 != 0)))
        if i % 7 == 0:
            booked.append((i, 3, 1))
    return {
        "staff": staff,
        "patients": patients,
        "services": services,
        "patient_services": booked,
        "bills": bills,
    }


ROWS = _rows()

LAYER = SemanticLayer.model_validate(
    {
        "today": "2025-06-30",
        "tables": [
            {
                "name": "patients",
                "synonyms": ["patient", "client"],
                "columns": [
                    {
                        "name": "coordinator_id",
                        "description": "The patient's care coordinator (staff); NULL = none.",
                        "synonyms": ["care coordinator", "coordinator"],
                    }
                ],
            },
            {
                "name": "staff",
                "synonyms": ["employee", "carer"],
                "columns": [{"name": "is_part_time", "synonyms": ["part time"]}],
            },
        ],
        "measures": [
            {
                "name": "billed",
                "synonyms": ["amount billed", "total billed"],
                "table": "bills",
                "expression": "SUM(bills.amount)",
                "time_column": "bills.due_on",
            }
        ],
        "filters": [
            {
                "name": "part-timer",
                "synonyms": ["works part-time", "part-time staff"],
                "table": "staff",
                "condition": "staff.is_part_time = 1",
            },
            {
                "name": "current staff",
                "synonyms": ["current employee"],
                "table": "staff",
                "condition": "staff.left_on IS NULL",
            },
            {
                "name": "self-managed",
                "synonyms": ["no care coordinator", "without a coordinator"],
                "table": "patients",
                "condition": "patients.coordinator_id IS NULL",
            },
            {
                "name": "booked service",
                "synonyms": ["booked", "in use"],
                "table": "patient_services",
                "condition": "patient_services.is_booked = 1",
            },
            {
                "name": "paid late",
                "synonyms": ["late payment", "late"],
                "table": "bills",
                "condition": "bills.paid_on > bills.due_on",
            },
            {
                "name": "paid",
                "synonyms": ["settled"],
                "table": "bills",
                "condition": "bills.paid_on IS NOT NULL",
            },
        ],
        "joins": [
            {
                "from_table": "patients",
                "from_column": "coordinator_id",
                "to_table": "staff",
                "to_column": "staff_id",
            }
        ],
    }
)


@pytest.fixture(scope="module")
def hearthline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hearthline") / "hearthline.sqlite"
    return sqlite_loaded(path, HEARTHLINE_DDL, ROWS)


@pytest.fixture(scope="module")
def hearthline(hearthline_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(hearthline_path, "hearthline")


@pytest.fixture(scope="module")
def hearthline_db(hearthline_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{hearthline_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    layer: SemanticLayer | None = LAYER,
    dialect: str = "sqlite",
) -> str:
    return generate(schema, question, dialect, semantic=layer).sql


ROLE_VALUE = (
    "SELECT full_name FROM staff WHERE role = 'Care Coordinator' AND is_part_time = 1"
    " AND left_on IS NULL"
)


def test_the_gold_data_has_what_the_questions_need(hearthline_db: sqlite3.Connection) -> None:
    # the role's reading and the key's reading give different rows here
    by_role = hearthline_db.execute(ROLE_VALUE).fetchall()
    by_key = hearthline_db.execute(
        "SELECT DISTINCT s.full_name FROM staff s JOIN patients p ON p.coordinator_id ="
        " s.staff_id WHERE s.is_part_time = 1 AND s.left_on IS NULL"
    ).fetchall()
    assert by_role and sorted(by_role) != sorted(by_key)
    late = hearthline_db.execute("SELECT COUNT(*) FROM bills WHERE paid_on > due_on").fetchone()
    unpaid = hearthline_db.execute("SELECT COUNT(*) FROM bills WHERE paid_on IS NULL").fetchone()
    assert late[0] > 0 and unpaid[0] > 0


@pytest.mark.parametrize(
    "question",
    [
        "Which of our current care coordinators work part-time?",
        "Which current care coordinators are part-timers?",
    ],
)
def test_a_role_synonym_that_is_also_a_stored_role_reads_as_the_role(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection, question: str
) -> None:
    # was the key's reading: the staff some patient points to, through patients
    sql = ask(hearthline, question)
    assert "patients" not in sql.lower()
    assert_same_answer(hearthline_db, sql, ROLE_VALUE)


def test_the_key_reading_stays_where_the_key_table_is_named(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection
) -> None:
    # "patients ... care coordinator": the key of the patients named, not the job title
    gold = (
        "SELECT s.full_name, COUNT(*) FROM patients p JOIN staff s ON s.staff_id ="
        " p.coordinator_id GROUP BY s.staff_id, s.full_name"
    )
    assert_same_answer(
        hearthline_db, ask(hearthline, "How many patients does each care coordinator have?"), gold
    )


CITIES_GOLD = (
    "SELECT s.full_name FROM patients p JOIN staff s ON s.staff_id = p.coordinator_id"
    " GROUP BY s.staff_id, s.full_name HAVING COUNT(DISTINCT p.city) > 2"
)


@pytest.mark.parametrize(
    "question",
    [
        "Which coordinators have patients in more than two different cities?",
        "Which care coordinators have clients in more than 2 different cities?",
    ],
)
def test_rows_named_by_a_role_key_are_the_rows_it_refers_to(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection, question: str
) -> None:
    # was the key compared with the number ("coordinator_id > 2") and declined
    assert_same_answer(hearthline_db, ask(hearthline, question), CITIES_GOLD)


NEVER_LATE = (
    "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN"
    " (SELECT patient_id FROM bills WHERE paid_on > due_on)"
)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("How many patients have never paid a bill late?", NEVER_LATE),
        (
            "Which patients have never paid a bill late?",
            "SELECT patient_name FROM patients WHERE patient_id NOT IN"
            " (SELECT patient_id FROM bills WHERE paid_on > due_on)",
        ),
        (
            "How many patients have paid a bill late?",
            "SELECT COUNT(DISTINCT patient_id) FROM bills WHERE paid_on > due_on",
        ),
    ],
)
def test_a_named_filter_written_around_its_rows_is_read_whole(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    # was "paid_on IS NULL AND paid_on > due_on": "never paid" and "late" read apart
    assert_same_answer(hearthline_db, ask(hearthline, question), gold)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "What percentage of patients have a care coordinator assigned?",
            "SELECT 100.0 * SUM(coordinator_id IS NOT NULL) / COUNT(*) FROM patients",
        ),
        (
            "What percentage of patients have a coordinator?",
            "SELECT 100.0 * SUM(coordinator_id IS NOT NULL) / COUNT(*) FROM patients",
        ),
        (
            "How many patients have a care coordinator?",
            "SELECT COUNT(*) FROM patients WHERE coordinator_id IS NOT NULL",
        ),
        (
            "How many patients have no care coordinator?",
            "SELECT COUNT(*) FROM patients WHERE coordinator_id IS NULL",
        ),
    ],
)
def test_a_filter_worded_as_an_absence_said_with_have_is_its_negation(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    # the share was declined ("a share needs exactly one condition to measure")
    assert_same_answer(hearthline_db, ask(hearthline, question), gold)


def test_without_a_layer_the_role_words_are_not_guessed_as_a_key(
    hearthline: SchemaSnapshot,
) -> None:
    # the passes act on the layer's synonyms only: no layer, no key reading to prefer
    try:
        sql = ask(hearthline, "Which coordinators have patients in more than two cities?", None)
    except QuestionNotUnderstood:
        return
    assert "coordinator_id >" not in sql


BOOKED_NOT = (
    "SELECT p.patient_name FROM patients p JOIN patient_services ps ON ps.patient_id ="
    " p.patient_id JOIN services s ON s.service_id = ps.service_id WHERE s.service_name ="
    " 'Physiotherapy' AND ps.is_booked = 1 AND p.patient_id NOT IN (SELECT ps2.patient_id"
    " FROM patient_services ps2 JOIN services s2 ON s2.service_id = ps2.service_id"
    " WHERE s2.service_name = 'Meal Delivery' AND ps2.is_booked = 1)"
)


def test_a_state_said_of_one_value_holds_for_the_value_denied_after_but_not(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection
) -> None:
    # patients with meal delivery connected but not booked are kept: "not Meal Delivery"
    # means not booked either (was answered with the state left out of the subquery)
    loose = hearthline_db.execute(BOOKED_NOT.replace(" AND ps2.is_booked = 1", "")).fetchall()
    assert sorted(loose) != sorted(hearthline_db.execute(BOOKED_NOT).fetchall())
    question = "Which patients have Physiotherapy booked but not Meal Delivery?"
    assert_same_answer(hearthline_db, ask(hearthline, question), BOOKED_NOT)


PER_PATIENT = (
    "SELECT p.patient_name, SUM(b.amount) FROM patients p JOIN bills b ON b.patient_id ="
    " p.patient_id GROUP BY p.patient_id, p.patient_name HAVING COUNT(*) >= 3"
)


@pytest.mark.parametrize(
    "question",
    [
        "Total billed for each patient with at least 3 bills",
        "Total billed for each patient with at least 3 issued bills",
    ],
)
def test_a_number_of_rows_after_a_named_measure_bounds_the_rows_not_the_measure(
    hearthline: SchemaSnapshot, hearthline_db: sqlite3.Connection, question: str
) -> None:
    # "at least 3 issued bills" was read as the threshold of the measure: SUM(amount) >= 3
    sql = ask(hearthline, question)
    assert "SUM(bills.amount) >= 3" not in sql
    assert_same_answer(hearthline_db, sql, PER_PATIENT)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("Which patients have Physiotherapy booked but not Meal Delivery?", BOOKED_NOT),
        ("How many patients have never paid a bill late?", NEVER_LATE),
        ("Total billed for each patient with at least 3 issued bills", PER_PATIENT),
    ],
    ids=["but not", "never", "rows bound"],
)
def test_the_readings_render_on_duckdb_and_postgres(
    hearthline: SchemaSnapshot,
    hearthline_db: sqlite3.Connection,
    request: pytest.FixtureRequest,
    question: str,
    gold: str,
) -> None:
    expected = plain(hearthline_db.execute(gold).fetchall())
    duck = duckdb_loaded(HEARTHLINE_DDL, ROWS)
    try:
        got = plain(duck.execute(ask(hearthline, question, dialect="duckdb")).fetchall())
    finally:
        duck.close()
    assert results_match(expected, got, ordered=False)
    with postgres_loaded(request, HEARTHLINE_DDL, ROWS, typed=_typed) as conn:
        rows = conn.execute(sqlalchemy.text(ask(hearthline, question, dialect="postgresql")))
        assert results_match(expected, plain([tuple(r) for r in rows]), ordered=False)


def _typed(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        date.fromisoformat(v) if isinstance(v, str) and v[:2] == "20" and len(v) == 10 else v
        for v in row
    )
