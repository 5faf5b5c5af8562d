"""Conditions on columns the question names loosely, on a small theatre company's schema
written here (venues with a capacity kept as `cap`, shows with an attendance kept as `att`,
troupes with a `name` as venues have):

* a one-word column name that is the question's word cut short the way column names
  abbreviate (`att` for "attendance": no vowel after its first letter, so not a word of its
  own) is the column the word names: "shows with attendance above 500" compares `att`, and
  "higher than the average attendance" compares it with its average;
* a column name that is a word of its own (`cap`, `lap`, `stay`) is not read as the start of a
  longer word ("capacity"), so a comparison on "capacity" is still declined;
* "venues whose name contains 'Hall'": a word several tables' columns share ("name", left
  unlinked) between a table and "contains" / "starts with" is that table's own column;
* a value written with dots inside ("the U.S.A.", "a Ph.D.") is the stored value the index
  keeps without them;
* "shows that are not a tragedy genre": the column named after a negated value restates the
  value's column; it is not shown.

Each answer is checked by running it and a hand-written gold query on the same SQLite
database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.linking import _truncates
from tests.nl2sql.gym import assert_same_answer, generate, sqlite_loaded, sqlite_snapshot

DDL = """
CREATE TABLE venues (
    venue_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    town TEXT NOT NULL,
    cap INTEGER NOT NULL
);
CREATE TABLE shows (
    show_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    venue_id INTEGER NOT NULL REFERENCES venues(venue_id),
    genre TEXT NOT NULL,
    att INTEGER NOT NULL
);
CREATE TABLE troupes (
    troupe_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT NOT NULL
);
"""

ROWS: dict[str, list[tuple[object, ...]]] = {
    "venues": [(1, "Old Vic Hall", "Bristol", 400), (2, "Corn Exchange", "Bath", 900)],
    "shows": [
        (1, "The Tempest", 1, "romance", 350),
        (2, "Hedda Gabler", 2, "tragedy", 820),
        (3, "Twelfth Night", 2, "comedy", 610),
        (4, "Uncle Vanya", 1, "tragedy", 120),
    ],
    "troupes": [
        (1, "Hall Street Players", "U.K."),
        (2, "Bath Fringe", "U.K."),
        (3, "Hudson Rep", "U.S.A."),
    ],
}


@pytest.fixture(scope="module")
def theatre(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path: Path = tmp_path_factory.mktemp("spcmp") / "theatre.sqlite"
    sqlite_loaded(path, DDL, ROWS)
    snapshot = sqlite_snapshot(path, "theatre")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, conn
    conn.close()


ANSWERED = [
    (
        "What are the titles of shows with attendance above 500?",
        "SELECT title FROM shows WHERE att > 500",
    ),
    (
        "Which shows had an attendance higher than the average attendance?",
        "SELECT title FROM shows WHERE att > (SELECT AVG(att) FROM shows)",
    ),
]

CONTAINING = [
    (
        "How many venues have a name containing 'Hall'?",
        "SELECT COUNT(*) FROM venues WHERE name LIKE '%Hall%'",
    ),
    (
        "List the venues whose name contains the word 'Exchange'.",
        "SELECT name FROM venues WHERE name LIKE '%Exchange%'",
    ),
]


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_a_cut_off_column_name_is_the_word_it_shortens(
    theatre: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = theatre
    generation = generate(snapshot, question)
    assert "att" in generation.sql
    assert_same_answer(conn, generation.sql, gold)


@pytest.mark.parametrize(("question", "gold"), CONTAINING)
def test_a_word_many_tables_share_before_contains_is_the_table_s_own_column(
    theatre: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = theatre
    generation = generate(snapshot, question)
    assert "troupes" not in generation.sql
    assert_same_answer(conn, generation.sql, gold)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "How many troupes are in the U.S.A.?",
            "SELECT COUNT(*) FROM troupes WHERE country = 'U.S.A.'",
        ),
        (
            "List the names of troupes in the U.K.",
            "SELECT name FROM troupes WHERE country = 'U.K.'",
        ),
    ],
)
def test_a_value_written_with_dots_is_the_stored_value(
    theatre: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = theatre
    assert_same_answer(conn, generate(snapshot, question).sql, gold)


def test_a_negated_value_s_column_named_after_it_is_not_shown(
    theatre: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = theatre
    sql = generate(snapshot, "List the titles of shows that are not a tragedy genre.").sql
    assert_same_answer(conn, sql, "SELECT title FROM shows WHERE genre <> 'tragedy'")


def test_a_column_named_by_a_word_of_its_own_is_not_a_cut_off(
    theatre: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = theatre
    with pytest.raises(QuestionNotUnderstood):
        generate(snapshot, "Which venues have a capacity above 500?")


@pytest.mark.parametrize(
    ("column", "word", "expected"),
    [
        (("enr",), "enrollment", True),
        (("att",), "attendance", True),
        (("cap",), "capacity", False),  # a word of its own
        (("lap",), "laptime", False),
        (("att",), "attic", False),  # too little left off
        (("att", "count"), "attendance", False),  # more than one word
        (("attnd",), "attnd", False),
        (("att",), "attending", False),  # a verb's form: who attends, not the figure
        (("enr",), "enrolled", False),
    ],
)
def test_what_counts_as_a_cut_off(column: tuple[str, ...], word: str, expected: bool) -> None:
    assert _truncates(column, word) is expected
