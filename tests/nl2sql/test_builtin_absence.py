"""Absence said without "no" or "without": a lending library written here (members, some
without an email; membership tiers whose loan limit may be unset; loans).

* "missing X", "lacking X", "that lack X" deny the attribute as "without X" does: the nullable
  column left empty (`email IS NULL`), also where the column's name ends in a generic word
  ("missing a phone number" is `phone IS NULL`).
* "unlimited X" / "uncapped X" deny the bound that a `max_X` column records: `max_loans IS
  NULL`; where no column records such a bound the word is not read as some other negation (no
  anti-join against a table named after it): the reading declines or leaves the rows alone.
* A negation typed without its apostrophe ("didnt", "doesnt", "cannot", "didnt'") is read as
  "didn't" is; quoted text keeps its words ("Dont Panic" is a title, no negation).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.doubts import lost_disjunction
from backend.nl2sql.engines.builtin.lexicon import tokenise
from tests.nl2sql.gym import assert_same_answer, generate, sqlite_loaded, sqlite_snapshot

LIBRARY_DDL = """
CREATE TABLE tiers (
    tier_id INTEGER PRIMARY KEY,
    tier_name TEXT NOT NULL,
    max_loans INTEGER,
    yearly_fee REAL NOT NULL
);
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT,
    phone TEXT,
    tier_id INTEGER NOT NULL REFERENCES tiers(tier_id)
);
CREATE TABLE books (
    book_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL
);
CREATE TABLE loans (
    loan_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    book_id INTEGER NOT NULL REFERENCES books(book_id),
    lent_on DATE NOT NULL
)
"""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    tiers = [(1, "Basic", 3, 0.0), (2, "Plus", 10, 20.0), (3, "Patron", None, 60.0)]
    names = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"]
    members = [
        (
            i + 1,
            name,
            None if i % 3 == 0 else f"{name.lower()}@mail.test",
            None if i % 4 == 1 else f"555-01{i:02d}",
            1 + i % 3,
        )
        for i, name in enumerate(names)
    ]
    books = [(i, f"Book {i}") for i in range(1, 5)] + [(5, "Dont Panic")]
    loans = [(i, 1 + i % 6, 1 + i % 5, f"2025-0{1 + i % 9}-1{i % 10}") for i in range(1, 15)]
    return {"tiers": tiers, "members": members, "books": books, "loans": loans}


@pytest.fixture(scope="module")
def library_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("library") / "library.sqlite"
    return sqlite_loaded(path, LIBRARY_DDL, _tables())


@pytest.fixture(scope="module")
def library(library_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(library_path, "library")


@pytest.fixture(scope="module")
def library_db(library_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{library_path}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "For how many members are we missing an email?",
            "SELECT COUNT(*) FROM members WHERE email IS NULL",
        ),
        (
            "How many members are missing a phone number?",
            "SELECT COUNT(*) FROM members WHERE phone IS NULL",
        ),
        (
            "Which members are lacking an email?",
            "SELECT full_name FROM members WHERE email IS NULL",
        ),
        (
            "Which tiers allow unlimited loans?",
            "SELECT tier_name FROM tiers WHERE max_loans IS NULL",
        ),
        (
            "List the tiers with uncapped loans",
            "SELECT tier_name FROM tiers WHERE max_loans IS NULL",
        ),
    ],
)
def test_absence_said_as_missing_lacking_or_unlimited_is_an_empty_column(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str, gold: str
) -> None:
    sql = generate(library, question).sql
    assert "IS NULL" in sql.upper()
    assert_same_answer(library_db, sql, gold)


def test_unlimited_without_a_bound_column_is_no_anti_join(library: SchemaSnapshot) -> None:
    """No column bounds the books a member may read: "unlimited books" is not "without books"."""
    try:
        sql = generate(library, "Which members have unlimited books?").sql
    except QuestionNotUnderstood:
        return
    assert "NOT" not in sql.upper()


NEVER_BORROWED = (
    "SELECT full_name FROM members WHERE member_id NOT IN (SELECT member_id FROM loans)"
)


@pytest.mark.parametrize(
    "question",
    [
        "Which members didn't borrow any book?",
        "Which members didnt borrow any book?",
        "Which members didnt' borrow any book?",
        "Which members havent borrowed any book?",
    ],
)
def test_a_negation_typed_without_its_apostrophe_is_a_negation(
    library: SchemaSnapshot, library_db: sqlite3.Connection, question: str
) -> None:
    sql = generate(library, question).sql
    assert "NOT" in sql.upper()
    assert_same_answer(library_db, sql, NEVER_BORROWED)


@pytest.mark.parametrize(
    ("said", "read"),
    [
        ("who doesnt pay", ["who", "do", "not", "pay"]),
        ("who cannot pay", ["who", "can", "not", "pay"]),
        ('loans of "Dont Panic"', ["loan", "of", "dont panic"]),
        ("the canton", ["the", "canton"]),
    ],
)
def test_unmarked_negations_are_split_outside_quotes_only(said: str, read: list[str]) -> None:
    assert [t.lemma for t in tokenise(said)] == read


def test_an_or_between_two_group_bounds_read_as_both_is_doubted() -> None:
    """ "more than 2 loans or more than 1 hold" read as two HAVING bounds ANDed asks for both:
    the `lost_disjunction` doubt sees HAVING conditions as it sees WHERE conditions."""
    both = sqlglot.parse_one(
        "SELECT m.full_name FROM members AS m JOIN loans AS l ON m.member_id = l.member_id "
        "JOIN holds AS h ON m.member_id = h.member_id GROUP BY m.member_id, m.full_name "
        "HAVING COUNT(DISTINCT l.loan_id) > 2 AND COUNT(DISTINCT h.hold_id) > 1"
    )
    either = "Which members have more than 2 loans or more than 1 hold?"
    assert lost_disjunction(both, either)
    assert not lost_disjunction(both, either.replace(" or ", " and "))
    one = sqlglot.parse_one(
        "SELECT m.full_name FROM members AS m JOIN loans AS l ON m.member_id = l.member_id "
        "GROUP BY m.member_id, m.full_name HAVING COUNT(*) > 2"
    )
    assert not lost_disjunction(one, "members with 3 or more loans")
