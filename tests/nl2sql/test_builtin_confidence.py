"""The builtin engine's confidence: weak readings are declined with suggestions, not guessed.

Two small business schemas of domains the engine was never tuned on (a veterinary clinic and a
field-service company, neither with declared foreign keys in the second) and paraphrases of
questions about them. The property under test is precision: every question either gets the
right answer or an honest decline, never a wrong answer presented as right.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator, schema_index
from backend.nl2sql.engines.builtin.confidence import (
    ANSWER_THRESHOLD,
    assess,
    grouped_by_measure,
    uncounted,
)
from backend.nl2sql.evaluation import has_top_level_order, results_match
from tests.nl2sql.gym import sqlite_snapshot

CLINIC = """
CREATE TABLE owners (owner_id INTEGER PRIMARY KEY, full_name TEXT, city TEXT, phone TEXT);
CREATE TABLE pets (pet_id INTEGER PRIMARY KEY, pet_name TEXT, species TEXT, birth_date DATE,
                   weight_kg REAL, owner_id INTEGER REFERENCES owners(owner_id));
CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, pet_id INTEGER REFERENCES pets(pet_id),
                     visit_date DATE, reason TEXT, fee REAL, is_emergency INTEGER);
INSERT INTO owners VALUES (1, 'Ana Ruiz', 'Lyon', '555-0101'), (2, 'Ben Okafor', 'Leeds', NULL),
  (3, 'Chen Wei', 'Lyon', '555-0103'), (4, 'Dara Kim', 'Porto', NULL);
INSERT INTO pets VALUES (1, 'Miso', 'cat', '2019-04-02', 4.1, 1), (2, 'Rex', 'dog', '2016-08-19',
  31.5, 1), (3, 'Pip', 'rabbit', '2021-01-10', 1.9, 2), (4, 'Luna', 'dog', '2018-11-30', 22.0, 3),
  (5, 'Tofu', 'cat', '2022-06-05', 3.6, 3), (6, 'Kiwi', 'bird', '2020-03-14', 0.2, 3);
INSERT INTO visits VALUES (1, 1, '2024-01-15', 'checkup', 45.0, 0),
  (2, 2, '2024-02-03', 'injury', 180.0, 1), (3, 2, '2024-05-20', 'checkup', 45.0, 0),
  (4, 3, '2024-03-11', 'vaccination', 30.0, 0), (5, 4, '2023-12-01', 'injury', 220.0, 1),
  (6, 4, '2024-06-30', 'dental', 95.0, 0), (7, 5, '2024-07-04', 'vaccination', 30.0, 0);
"""

# A field-service company whose tables declare no foreign keys at all.
SERVICE = """
CREATE TABLE technicians (tech_id INTEGER PRIMARY KEY, tech_name TEXT, region TEXT,
                          hourly_rate REAL);
CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, tech_id INTEGER, customer_name TEXT,
                   job_type TEXT, scheduled_on DATE, hours REAL, completed_on DATE);
INSERT INTO technicians VALUES (1, 'Ivo Petrov', 'North', 40.0), (2, 'Maya Singh', 'South', 55.0),
  (3, 'Owen Hart', 'North', 35.0);
INSERT INTO jobs VALUES (1, 1, 'Acme Ltd', 'repair', '2024-01-05', 3.0, '2024-01-05'),
  (2, 1, 'Birch & Co', 'install', '2024-01-09', 6.5, '2024-01-10'),
  (3, 2, 'Acme Ltd', 'inspection', '2024-02-01', 1.5, NULL),
  (4, 3, 'Cobalt Inc', 'repair', '2024-02-14', 2.0, '2024-02-15'),
  (5, 2, 'Cobalt Inc', 'install', '2024-03-02', 8.0, NULL);
"""

# (question, gold SQL): paraphrases of the same asks; each must be right or declined.
CLINIC_QUESTIONS = [
    ("How many pets are there?", "SELECT COUNT(*) FROM pets"),
    ("Count the pets.", "SELECT COUNT(*) FROM pets"),
    ("What is the number of pets we treat?", "SELECT COUNT(*) FROM pets"),
    ("How many pets per species?", "SELECT species, COUNT(*) FROM pets GROUP BY species"),
    ("Number of pets for each species", "SELECT species, COUNT(*) FROM pets GROUP BY species"),
    ("What is the average visit fee?", "SELECT AVG(fee) FROM visits"),
    ("Mean fee of visits", "SELECT AVG(fee) FROM visits"),
    ("Which owners live in Lyon?", "SELECT full_name FROM owners WHERE city = 'Lyon'"),
    ("List the owners from Lyon", "SELECT full_name FROM owners WHERE city = 'Lyon'"),
    ("Total fees by visit reason", "SELECT reason, SUM(fee) FROM visits GROUP BY reason"),
    ("What is the heaviest pet's weight?", "SELECT MAX(weight_kg) FROM pets"),
    ("Which pets have never visited?",
     "SELECT pet_name FROM pets WHERE pet_id NOT IN (SELECT pet_id FROM visits)"),
    ("Which owners have no phone number on file?",
     "SELECT full_name FROM owners WHERE phone IS NULL"),
    ("How many visits were emergencies?", "SELECT COUNT(*) FROM visits WHERE is_emergency = 1"),
    ("What share of visits were emergencies?",
     "SELECT 100.0 * SUM(is_emergency) / COUNT(*) FROM visits"),
    ("Which owner has the most pets?",
     "SELECT o.full_name FROM owners o JOIN pets p ON p.owner_id = o.owner_id"
     " GROUP BY o.owner_id ORDER BY COUNT(*) DESC LIMIT 1"),
]  # fmt: skip

SERVICE_QUESTIONS = [
    ("How many jobs are there?", "SELECT COUNT(*) FROM jobs"),
    ("Number of jobs per job type", "SELECT job_type, COUNT(*) FROM jobs GROUP BY job_type"),
    ("Which technicians work in the North region?",
     "SELECT tech_name FROM technicians WHERE region = 'North'"),
    ("Total hours by job type", "SELECT job_type, SUM(hours) FROM jobs GROUP BY job_type"),
    ("Which jobs are still not completed?", "SELECT job_id FROM jobs WHERE completed_on IS NULL"),
    ("How many jobs are still open?", "SELECT COUNT(*) FROM jobs WHERE completed_on IS NULL"),
    ("What's the average hourly rate of technicians?", "SELECT AVG(hourly_rate) FROM technicians"),
    ("Which customers had jobs in February 2024?",
     "SELECT DISTINCT customer_name FROM jobs WHERE scheduled_on >= '2024-02-01'"
     " AND scheduled_on < '2024-03-01'"),
]  # fmt: skip


def _build(tmp_path: Path, name: str, script: str) -> tuple[SchemaSnapshot, sqlite3.Connection]:
    path = tmp_path / f"{name}.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(script)
    conn.commit()
    conn.close()
    engine = open_sqlite_read_only(path)
    try:
        snapshot = introspect(engine, db_type="sqlite", database_name=name)
    finally:
        engine.dispose()
    return snapshot, sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@pytest.fixture(scope="module")
def clinic(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    snapshot, conn = _build(tmp_path_factory.mktemp("clinic"), "clinic", CLINIC)
    yield snapshot, conn
    conn.close()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    snapshot, conn = _build(tmp_path_factory.mktemp("service"), "service", SERVICE)
    yield snapshot, conn
    conn.close()


@pytest.fixture(scope="module")
def shop() -> SchemaSnapshot:
    return sqlite_snapshot(DEMO_DB_PATH, "shop")


def _outcome(schema: SchemaSnapshot, conn: sqlite3.Connection, question: str, gold: str) -> str:
    try:
        generation = BuiltinGenerator().generate(
            GenerationRequest(question=question, schema=schema)
        )
    except QuestionNotUnderstood:
        return "declined"
    try:
        predicted = conn.execute(generation.sql).fetchall()
    except sqlite3.Error:
        return f"wrong (fails): {generation.sql}"
    gold_rows = conn.execute(gold).fetchall()
    if results_match(gold_rows, predicted, ordered=has_top_level_order(gold)):
        return "right"
    return f"wrong: {generation.sql}"


@pytest.mark.parametrize(("question", "gold"), CLINIC_QUESTIONS)
def test_clinic_questions_are_answered_right_or_declined(
    clinic: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    outcome = _outcome(*clinic, question, gold)
    assert outcome in ("right", "declined"), outcome


@pytest.mark.parametrize(("question", "gold"), SERVICE_QUESTIONS)
def test_questions_on_a_schema_without_foreign_keys_are_right_or_declined(
    service: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    outcome = _outcome(*service, question, gold)
    assert outcome in ("right", "declined"), outcome


def test_plain_questions_of_other_domains_are_still_answered(
    clinic: tuple[SchemaSnapshot, sqlite3.Connection],
    service: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    """Declining everything would pass the tests above; the simple asks must get answers."""
    answered = [_outcome(*clinic, q, g) for q, g in CLINIC_QUESTIONS[:10]] + [
        _outcome(*service, q, g) for q, g in SERVICE_QUESTIONS[:4]
    ]
    assert answered.count("right") >= 10, answered


def test_a_weak_reading_is_declined_with_the_reading_as_a_suggestion(shop: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood) as caught:
        BuiltinGenerator().generate(
            GenerationRequest(question="which products have never been reviewed", schema=shop)
        )
    exc = caught.value
    assert exc.confidence is not None and exc.confidence < ANSWER_THRESHOLD
    assert exc.suggestions, "a weak reading is offered as a choice"
    best = exc.suggestions[0]
    assert best.text.startswith("Did you mean:")
    assert best.sql is not None and len(sqlglot.parse(best.sql, read="sqlite")) == 1
    assert best.confidence == exc.confidence
    assert exc.recognised["doubts"], "the decline says what made it unsure"


def test_a_confident_answer_carries_its_confidence(shop: SchemaSnapshot) -> None:
    generation = BuiltinGenerator().generate(
        GenerationRequest(question="how many customers are there?", schema=shop)
    )
    assert generation.confidence is not None and generation.confidence >= ANSWER_THRESHOLD


def test_rows_of_a_table_without_a_name_are_shown_by_key_not_select_star(
    shop: SchemaSnapshot,
) -> None:
    sql = (
        BuiltinGenerator()
        .generate(GenerationRequest(question="list the 3 most recent orders", schema=shop))
        .sql
    )
    assert "*" not in sql
    assert sql.startswith("SELECT id, order_date FROM orders")


@pytest.mark.parametrize(
    ("signal", "value"),
    [("lost_negation", 1.0), ("guessed_values", 1.0), ("lost_qualifiers", 1.0),
     ("key_literals", 1.0), ("star", 1.0), ("type_mismatches", 1.0), ("contradictions", 1.0),
     ("summed_keys", 1.0), ("lost_aggregate", 1.0),
     ("grouped_by_value", 1.0), ("lost_grouping", 1.0), ("value_or_column", 1.0)],
)  # fmt: skip
def test_each_strong_doubt_alone_pushes_a_clean_reading_below_the_threshold(
    signal: str, value: float
) -> None:
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    assert assess(clean).confidence >= ANSWER_THRESHOLD
    doubtful = assess({**clean, signal: value})
    assert doubtful.confidence < ANSWER_THRESHOLD
    assert doubtful.reasons


def test_a_month_and_year_filter_the_month_not_the_whole_year(
    service: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    sql = (
        BuiltinGenerator()
        .generate(
            GenerationRequest(
                question="How many jobs were scheduled in February 2024?", schema=service[0]
            )
        )
        .sql
    )
    assert "'2024-02-01'" in sql and "'2024-03-01'" in sql, sql
    assert service[1].execute(sql).fetchall() == [(2,)]


def test_an_unnamed_date_among_several_is_declined_with_each_date_as_a_choice(
    service: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    with pytest.raises(QuestionNotUnderstood) as caught:
        BuiltinGenerator().generate(
            GenerationRequest(
                question="How many jobs were there in January 2024?", schema=service[0]
            )
        )
    sqls = [s.sql for s in caught.value.suggestions if s.sql]
    assert any("scheduled_on" in sql for sql in sqls), sqls
    assert any("completed_on" in sql for sql in sqls), sqls
    for sql in sqls:
        service[1].execute(sql).fetchall()  # every offered choice runs


def test_an_average_duration_is_the_fractional_days_between_two_dates(
    shop: SchemaSnapshot,
) -> None:
    sql = (
        BuiltinGenerator()
        .generate(GenerationRequest(question="average number of days to ship orders", schema=shop))
        .sql
    )
    conn = sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True)
    try:
        gold = "SELECT AVG(julianday(shipped_date) - julianday(order_date)) FROM orders"
        assert results_match(
            conn.execute(gold).fetchall(), conn.execute(sql).fetchall(), ordered=False
        ), sql
    finally:
        conn.close()


def test_a_breakdown_the_reading_cannot_make_is_declined_not_dropped(shop: SchemaSnapshot) -> None:
    """The shop's employees have no department: "per department" must not vanish silently."""
    with pytest.raises(QuestionNotUnderstood) as caught:
        BuiltinGenerator().generate(
            GenerationRequest(question="average salary per department", schema=shop)
        )
    assert caught.value.suggestions


FLEET = """
CREATE TABLE depots (depot_id INTEGER PRIMARY KEY, city TEXT);
CREATE TABLE trucks (truck_id INTEGER PRIMARY KEY, depot_id INTEGER REFERENCES depots(depot_id),
  plate TEXT, payload_tonnes REAL, model_year INTEGER);
"""


@pytest.mark.parametrize(
    ("question", "sql", "expected"),
    [
        # A breakdown by an amount the question never names: the reading grouped by a measure.
        ("average depot size", "SELECT payload_tonnes, COUNT(*) FROM trucks "
         "GROUP BY payload_tonnes", 1),
        # Named amounts, keys, years and buckets are ordinary breakdowns.
        ("how many trucks per payload tonne", "SELECT payload_tonnes, COUNT(*) FROM trucks "
         "GROUP BY payload_tonnes", 0),
        ("trucks per depot", "SELECT depot_id, COUNT(*) FROM trucks GROUP BY depot_id", 0),
        ("trucks per city", "SELECT city, COUNT(*) FROM depots JOIN trucks "
         "ON depots.depot_id = trucks.depot_id GROUP BY city", 0),
        ("trucks by age", "SELECT model_year, COUNT(*) FROM trucks GROUP BY model_year", 0),
        ("total payload", "SELECT SUM(payload_tonnes) FROM trucks", 0),
    ],
)  # fmt: skip
def test_a_breakdown_by_an_unnamed_amount_is_a_doubt(
    tmp_path: Path, question: str, sql: str, expected: int
) -> None:
    snapshot, conn = _build(tmp_path, "fleet", FLEET)
    conn.close()
    tree = sqlglot.parse_one(sql, read="sqlite")
    assert grouped_by_measure(tree, schema_index(snapshot), question) == expected


def test_a_breakdown_by_an_unnamed_amount_alone_pushes_a_clean_reading_below_the_threshold() -> (
    None
):
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    doubtful = assess({**clean, "grouped_by_measure": 1.0})
    assert doubtful.confidence < ANSWER_THRESHOLD
    assert "rows would be grouped by an amount the question does not name" in doubtful.reasons


@pytest.mark.parametrize(
    ("question", "sql", "expected"),
    [
        # 'How many' answered with a list of rows: the count was lost.
        ("How many trucks does the Leeds depot have?", "SELECT plate FROM trucks JOIN depots "
         "ON depots.depot_id = trucks.depot_id WHERE city = 'Leeds'", True),
        # A count, a stored number or no 'how many' at all are fine.
        ("How many trucks does the Leeds depot have?", "SELECT COUNT(*) FROM trucks JOIN depots "
         "ON depots.depot_id = trucks.depot_id WHERE city = 'Leeds'", False),
        ("How many tonnes can truck AB12 carry?", "SELECT payload_tonnes FROM trucks "
         "WHERE plate = 'AB12'", False),
        ("Which trucks does the Leeds depot have?", "SELECT plate FROM trucks JOIN depots "
         "ON depots.depot_id = trucks.depot_id WHERE city = 'Leeds'", False),
    ],
)  # fmt: skip
def test_a_how_many_question_answered_with_a_list_is_a_doubt(
    tmp_path: Path, question: str, sql: str, expected: bool
) -> None:
    snapshot, conn = _build(tmp_path, "fleet", FLEET)
    conn.close()
    tree = sqlglot.parse_one(sql, read="sqlite")
    assert uncounted(tree, schema_index(snapshot), question) is expected
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    assert (
        assess({**clean, "uncounted": float(expected)}).confidence < ANSWER_THRESHOLD
    ) is expected
