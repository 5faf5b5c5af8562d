"""Which columns the builtin engine shows, and doubts that declined right readings (issue 12).

The schema is a group of mountain lodges (a domain the dev sets do not have): cabins with a
yes/no `unavailable` flag, a bed type stored as a value and a bed count, guests with a phone
column beside a number column, and stays that refer to cabins. Every answer is checked by its
result on a real SQLite database against a hand-written gold query.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator

import pytest

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.cues import opposite_by_prefix

LODGES = """
CREATE TABLE lodges (lodge_id INTEGER PRIMARY KEY, lodge_name TEXT, valley TEXT);
CREATE TABLE cabins (cabin_id INTEGER PRIMARY KEY, cabin_name TEXT, cabin_kind TEXT,
                     bed_type TEXT, beds INTEGER, nightly_rate REAL, unavailable BOOLEAN,
                     lodge_id INTEGER REFERENCES lodges(lodge_id));
CREATE TABLE guests (g_num INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, g_phone TEXT,
                     g_age INTEGER);
CREATE TABLE stays (stay_id INTEGER PRIMARY KEY, cabin_id INTEGER REFERENCES cabins(cabin_id),
                    g_num INTEGER REFERENCES guests(g_num), arrival DATE, stay_year INTEGER,
                    bill REAL, stay_state TEXT);
CREATE TABLE regions (region_id INTEGER PRIMARY KEY, region TEXT);
CREATE TABLE villages (village_id INTEGER PRIMARY KEY, village TEXT,
                       region_id INTEGER REFERENCES regions(region_id));
INSERT INTO regions VALUES (1, 'Tyrol'), (2, 'Valais'), (3, 'Engadin');
INSERT INTO villages VALUES (1, 'Ischgl', 1), (2, 'Lech', 1), (3, 'Zermatt', 2),
  (4, 'Saas', 2), (5, 'Sils', 3);
INSERT INTO lodges VALUES (1, 'Edelweiss', 'North'), (2, 'Gemse', 'South'),
  (3, 'Adler', 'North');
INSERT INTO cabins VALUES
  (1, 'Arve', 'loft', 'King', 2, 120.0, 0, 1), (2, 'Birke', 'loft', 'Queen', 1, 90.0, 1, 1),
  (3, 'Zirbe', 'hut', 'King', 3, 150.0, 0, 2), (4, 'Fichte', 'hut', 'Single', 4, 60.0, 1, 2),
  (5, 'Lärche', 'suite', 'Queen', 2, 200.0, 1, 3), (6, 'Eibe', 'suite', 'Single', 1, 70.0, 1, 3);
INSERT INTO guests VALUES (11, 'Mara', 'Keller', '555-0101', 34),
  (12, 'Jonas', 'Brunner', '555-0102', 51), (13, 'Lea', 'Vogt', '555-0103', 27),
  (14, 'Timo', 'Frei', '555-0104', 45), (15, 'Nina', 'Huber', '555-0105', 62),
  (16, 'Paul', 'Graf', '555-0106', 38);
INSERT INTO stays VALUES
  (1, 1, 11, '2019-02-01', 2019, 240.0, 'closed'), (2, 3, 12, '2021-07-12', 2021, 450.0, 'open'),
  (3, 5, 13, '2018-12-24', 2018, 600.0, 'closed'), (4, 1, 14, '2023-01-05', 2023, 360.0, 'open'),
  (5, 2, 15, '2020-08-30', 2020, 180.0, 'closed'), (6, 3, 16, '2022-03-03', 2022, 300.0, 'closed');
"""


@pytest.fixture(scope="module")
def lodges(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("doubts") / "lodges.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(LODGES)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="lodges")
    engine.dispose()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, conn
    conn.close()


def _answer(snapshot: SchemaSnapshot, question: str) -> str:
    try:
        generation = BuiltinGenerator().generate(
            GenerationRequest(question=question, schema=snapshot, dialect="sqlite")
        )
    except QuestionNotUnderstood as exc:
        pytest.fail(f"declined {question!r}: {exc.message}")
    return generation.sql


def _rows(conn: sqlite3.Connection, sql: str) -> Counter[tuple[object, ...]]:
    return Counter(tuple(r) for r in conn.execute(sql).fetchall())


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        # a column compared with a bound in the condition only picks the rows
        (
            "What are the bills of stays made before the year of 2021?",
            "SELECT bill FROM stays WHERE stay_year < 2021",
        ),
        (
            "List the first name and last name of guests with an age between 30 and 50.",
            "SELECT first_name, last_name FROM guests WHERE g_age BETWEEN 30 AND 50",
        ),
        # ... and so does the date a superlative ranks the rows by
        (
            "What is the id of the stay that arrived most recently?",
            "SELECT stay_id FROM stays ORDER BY arrival DESC LIMIT 1",
        ),
        # a foreign key and the key it refers to hold one value: shown once
        (
            "Show the lodge ids and the number of cabins for each lodge.",
            "SELECT lodge_id, COUNT(*) FROM cabins GROUP BY lodge_id",
        ),
        # "phone number" is one compound, not `g_phone` and then `g_num`
        (
            "What is the first name and phone number of the guests older than 40?",
            "SELECT first_name, g_phone FROM guests WHERE g_age > 40",
        ),
        # "a king bed": the kind of bed the value names, not the `beds` count
        (
            "List the names of cabins with a king or queen bed.",
            "SELECT cabin_name FROM cabins WHERE bed_type IN ('King', 'Queen')",
        ),
        # "taken by <guest>": the agent of the verb, not one count per guest
        (
            "How many stays taken by guest with first name as Mara and last name as Keller"
            " were closed?",
            "SELECT COUNT(*) FROM stays JOIN guests ON stays.g_num = guests.g_num"
            " WHERE first_name = 'Mara' AND last_name = 'Keller' AND stay_state = 'closed'",
        ),
        # a table whose text column carries its own name (`regions.region`) shows rows by it
        (
            "Which regions have at least 2 villages?",
            "SELECT region FROM regions WHERE region_id IN"
            " (SELECT region_id FROM villages GROUP BY region_id HAVING COUNT(*) >= 2)",
        ),
        # a leading "Sort" is the command, not a loosely matched column
        (
            "Sort the cabin names in ascending order of nightly rate.",
            "SELECT cabin_name FROM cabins ORDER BY nightly_rate",
        ),
    ],
)
def test_shows_only_the_columns_asked_for(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = lodges
    sql = _answer(snapshot, question)
    assert _rows(conn, sql) == _rows(conn, gold), sql


def test_sort_opening_a_question_is_ordered_as_asked(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = lodges
    sql = _answer(snapshot, "Sort the cabin names in ascending order of nightly rate.")
    gold = "SELECT cabin_name FROM cabins ORDER BY nightly_rate"
    assert conn.execute(sql).fetchall() == conn.execute(gold).fetchall()


@pytest.mark.parametrize(
    "question",
    [
        "List the names of all lodges ordered by their names.",
        "What is the alphabetically ordered list of all lodges?",
        "Show the lodges in alphabetical order.",
    ],
)
def test_ordered_by_the_label_shown(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection], question: str
) -> None:
    """ "ordered by their names": the label the rows are shown by is the order too."""
    snapshot, conn = lodges
    sql = _answer(snapshot, question)
    gold = "SELECT lodge_name FROM lodges ORDER BY lodge_name"
    assert conn.execute(sql).fetchall() == conn.execute(gold).fetchall(), sql


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        # "available" linked to `unavailable` is its negation, as a filter ...
        (
            "Which lodges have available cabins?",
            "SELECT DISTINCT lodges.lodge_name FROM lodges JOIN cabins"
            " ON cabins.lodge_id = lodges.lodge_id WHERE cabins.unavailable = 0",
        ),
        (
            "What are the distinct names of cabins that are available?",
            "SELECT DISTINCT cabin_name FROM cabins WHERE unavailable = 0",
        ),
        # ... and never a breakdown by the opposite flag
        (
            "Find the number of distinct cabin kinds available.",
            "SELECT COUNT(DISTINCT cabin_kind) FROM cabins",
        ),
    ],
)
def test_a_prefix_that_negates_the_flag(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = lodges
    sql = _answer(snapshot, question)
    assert set(_rows(conn, sql)) == set(_rows(conn, gold)), sql


def test_opposite_by_prefix_reads_both_directions() -> None:
    assert opposite_by_prefix(["available"], ("unavailable",))
    assert opposite_by_prefix(["unpaid"], ("is", "paid"))
    assert not opposite_by_prefix(["available"], ("available",))
    assert not opposite_by_prefix(["paid"], ("is", "paid"))
    assert not opposite_by_prefix(["it"], ("unit",))  # too short to be a word of its own


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        # "ever" after a ranking only stresses it
        ("What is the largest bill we have ever charged?", "SELECT MAX(bill) FROM stays"),
        # "still" before a state the reading applies as a value
        (
            "How many stays are still open?",
            "SELECT COUNT(*) FROM stays WHERE stay_state = 'open'",
        ),
    ],
)
def test_a_qualifier_the_reading_expresses_is_not_a_doubt(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = lodges
    sql = _answer(snapshot, question)
    assert _rows(conn, sql) == _rows(conn, gold), sql


def test_still_before_an_unread_verb_stays_a_doubt(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    """ "still running": no condition says so, the qualifier is lost and the engine declines."""
    snapshot, _ = lodges
    with pytest.raises(QuestionNotUnderstood) as declined:
        BuiltinGenerator().generate(
            GenerationRequest(
                question="How many stays of guests older than 30 are still running?",
                schema=snapshot,
                dialect="sqlite",
            )
        )
    assert "qualifier" in declined.value.message


def test_an_unexpressed_more_is_a_lost_qualifier(
    lodges: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    """ "more expensive then all cabins ...": a comparison the reading could not express is
    named among the doubts, and the engine declines rather than list every cabin."""
    snapshot, _ = lodges
    with pytest.raises(QuestionNotUnderstood) as declined:
        BuiltinGenerator().generate(
            GenerationRequest(
                question="What are the names of cabins that are more expensive then all"
                " cabins in the lodge Gemse?",
                schema=snapshot,
                dialect="sqlite",
            )
        )
    assert "qualifier" in declined.value.message
