"""Keys named for a role, on a small hiking schema written here: huts, and trails that start
at one hut and end at another (`start_hut_id`, `end_hut_id`, no declared foreign key), each
trail walked by hikers (`walks`, declared keys).

* A key `<role>_<table>_id` refers to the table its last words name, as `<table>_id` does:
  trails and huts join though no foreign key says so.
* Each role is a join of its own; the question's words say which ("trails that end at",
  "the hut where the trail starts"), and where they say neither, the question is declined
  with both joins as suggestions.
* Of two keys of one table to another, one named plainly for it (`tongue_id`) and one for a
  role (`original_tongue_id`), a question naming no role means the plain one ("the tongue of
  the guidebook"), and is answered as no guess; naming the role ("its original tongue")
  picks the other.
* A table named only by words of a table asked about is not joined for a column both have
  ("the type of badge Summit": `badge_type`, not through `has_badge`, which would repeat the
  type once per hiker holding the badge).

Each answer is checked by running it and a hand-written gold query on the same SQLite
database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.linking import SchemaIndex
from tests.nl2sql.gym import generate, sqlite_loaded, sqlite_snapshot
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

HIKING_DDL = """
CREATE TABLE hut (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    altitude INTEGER NOT NULL
);
CREATE TABLE trail (
    id INTEGER PRIMARY KEY,
    start_hut_id INTEGER NOT NULL,
    end_hut_id INTEGER NOT NULL,
    length_km REAL NOT NULL
);
CREATE TABLE hiker (
    hiker_id INTEGER PRIMARY KEY,
    hiker_name TEXT NOT NULL
);
CREATE TABLE walks (
    hiker_id INTEGER NOT NULL REFERENCES hiker(hiker_id),
    trail_id INTEGER NOT NULL REFERENCES trail(id),
    PRIMARY KEY (hiker_id, trail_id)
);
CREATE TABLE tongue (
    tongue_id INTEGER PRIMARY KEY,
    tongue_name TEXT NOT NULL
);
CREATE TABLE guidebook (
    guidebook_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    tongue_id INTEGER NOT NULL REFERENCES tongue(tongue_id),
    original_tongue_id INTEGER REFERENCES tongue(tongue_id)
);
CREATE TABLE badge_type (
    badge TEXT PRIMARY KEY,
    badge_type TEXT NOT NULL
);
CREATE TABLE has_badge (
    hiker_id INTEGER NOT NULL REFERENCES hiker(hiker_id),
    badge TEXT NOT NULL REFERENCES badge_type(badge)
)
"""
REGIONS = ["Dolomites", "Tatra", "Pyrenees"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    huts = [(i, f"Hut {i}", REGIONS[i % 3], 1200 + 150 * i) for i in range(1, 10)]
    # start and end regions differ often, so reading the wrong role gives another answer
    trails = [(i, 1 + i % 9, 1 + (i * i) % 9, 3.0 + (i * 7) % 20) for i in range(1, 25)]
    hikers = [(i, f"Hiker {i}") for i in range(1, 6)]
    walks = sorted({(1 + i % 5, 1 + (i * 3) % 24) for i in range(30)})
    tongues = [(1, "Italian"), (2, "Polish"), (3, "Catalan"), (4, "German")]
    guidebooks = [(1, "High Passes", 4, 1), (2, "Tatra Ridges", 1, 2), (3, "Pyrenean Ways", 2, 3)]
    return {
        "hut": huts,
        "trail": trails,
        "hiker": hikers,
        "walks": walks,
        "tongue": tongues,
        "guidebook": guidebooks,
        "badge_type": [("Summit", "altitude"), ("Marathon", "distance"), ("Owl", "night")],
        # two hikers hold the Summit badge: a join through `has_badge` repeats its type
        "has_badge": [(1, "Summit"), (2, "Summit"), (3, "Owl")],
    }


@pytest.fixture(scope="module")
def hiking_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hiking") / "hiking.sqlite"
    return sqlite_loaded(path, HIKING_DDL, _tables())


@pytest.fixture(scope="module")
def hiking(hiking_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(hiking_path, "hiking")


@pytest.fixture(scope="module")
def hiking_db(hiking_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{hiking_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_role_prefixed_keys_join_the_table_their_last_words_name(
    hiking: SchemaSnapshot,
) -> None:
    """Before: no edge between trail and hut (`start_hut_id` names no table whole)."""
    index = SchemaIndex(hiking)
    ways = sorted((own, theirs) for other, own, theirs in index.edges["trail"] if other == "hut")
    assert ways == [("end_hut_id", "id"), ("start_hut_id", "id")]
    assert index.join_origin("trail", "hut") == "inferred"


def test_a_declared_key_between_the_tables_is_not_doubled(tmp_path: Path) -> None:
    """A role key beside a declared foreign key between the same two tables is left alone:
    the schema's author said which column refers."""
    ddl = HIKING_DDL.replace(
        "start_hut_id INTEGER NOT NULL,", "start_hut_id INTEGER NOT NULL REFERENCES hut(id),"
    )
    path = sqlite_loaded(tmp_path / "declared.sqlite", ddl, _tables())
    index = SchemaIndex(sqlite_snapshot(path, "declared"))
    ways = [(own, theirs) for other, own, theirs in index.edges["trail"] if other == "hut"]
    assert ways == [("start_hut_id", "id")]


def test_the_role_the_question_names_picks_the_key(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    """Before: declined, no foreign-key path joins trail and hut."""
    sql = generate(
        hiking,
        "What is the name and altitude of the hut where the trail with the greatest length ends?",
    ).sql
    gold = (
        "SELECT h.name, h.altitude FROM hut h JOIN trail t ON h.id = t.end_hut_id"
        " ORDER BY t.length_km DESC LIMIT 1"
    )
    start = gold.replace("t.end_hut_id", "t.start_hut_id")
    assert rows(hiking_db, gold) != rows(hiking_db, start)
    assert "end_hut_id" in sql and "start_hut_id" not in sql
    assert_same_answer(hiking_db, sql, gold)


def test_the_other_role_named_picks_the_other_key(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    sql = generate(
        hiking, "What is the id of the trail that starts from the hut with the highest altitude?"
    ).sql
    gold = (
        "SELECT t.id FROM trail t JOIN hut h ON t.start_hut_id = h.id"
        " ORDER BY h.altitude DESC LIMIT 1"
    )
    end = gold.replace("t.start_hut_id", "t.end_hut_id")
    assert rows(hiking_db, gold) != rows(hiking_db, end)
    assert "start_hut_id" in sql and "end_hut_id" not in sql
    assert_same_answer(hiking_db, sql, gold)


def test_a_role_named_further_along_a_path(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    sql = generate(hiking, "How many trails start at a hut in the Dolomites region?").sql
    gold = (
        "SELECT COUNT(*) FROM trail t JOIN hut h ON t.start_hut_id = h.id"
        " WHERE h.region = 'Dolomites'"
    )
    end = gold.replace("t.start_hut_id", "t.end_hut_id")
    assert rows(hiking_db, gold) != rows(hiking_db, end)
    assert_same_answer(hiking_db, sql, gold)


def test_no_role_said_is_declined_with_both_joins(hiking: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood, match="more than one way") as caught:
        generate(hiking, "Show the length of each trail and the altitude of its hut.")
    text = str(caught.value)
    assert "start_hut_id" in text and "end_hut_id" in text


def test_the_plain_key_is_meant_where_no_role_is_said(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    """Before: declined, tongue can be joined in more than one way."""
    sql = generate(hiking, "What is the tongue name of the guidebook High Passes?").sql
    gold = (
        "SELECT t.tongue_name FROM guidebook g JOIN tongue t ON g.tongue_id = t.tongue_id"
        " WHERE g.title = 'High Passes'"
    )
    assert "original_tongue_id" not in sql
    assert_same_answer(hiking_db, sql, gold)


def test_the_role_said_still_picks_the_role_key(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    sql = generate(hiking, "What is the original tongue name of the guidebook High Passes?").sql
    gold = (
        "SELECT t.tongue_name FROM guidebook g"
        " JOIN tongue t ON g.original_tongue_id = t.tongue_id WHERE g.title = 'High Passes'"
    )
    assert_same_answer(hiking_db, sql, gold)


def test_a_table_named_only_by_the_asked_tables_words_is_not_joined(
    hiking: SchemaSnapshot, hiking_db: sqlite3.Connection
) -> None:
    """Before: `has_badge` joined for its `badge` column, the type shown twice."""
    sql = generate(hiking, "What is the type of badge Summit?").sql
    gold = "SELECT badge_type FROM badge_type WHERE badge = 'Summit'"
    assert "has_badge" not in sql.lower()
    assert rows(hiking_db, sql) == rows(hiking_db, gold)
