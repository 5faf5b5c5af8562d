"""A reading that adds every row up into one and then ranks by a plain column is declined: the
ranking has nothing left to rank ("which three books have the most pages, and how many for
each?" was answered `SELECT COUNT(*) FROM books ORDER BY pages DESC LIMIT 3` at confidence
0.82: one number shown as the answer)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.confidence import ranked_single_row

BOOKS = """
CREATE TABLE books (book_id INTEGER PRIMARY KEY, title TEXT, pages INTEGER, genre TEXT);
INSERT INTO books VALUES (1, 'Alder', 100, 'poetry'), (2, 'Birch', 300, 'novel'),
  (3, 'Cedar', 250, 'poetry'), (4, 'Damson', 90, 'novel'), (5, 'Elm', 410, 'essay');
"""


@pytest.mark.parametrize(
    "sql,ranked",
    [
        ('SELECT COUNT(*) AS "count" FROM books ORDER BY pages DESC LIMIT 3', True),
        ("SELECT SUM(pages) FROM books ORDER BY genre", True),
        ("SELECT title FROM books ORDER BY pages DESC LIMIT 3", False),
        ("SELECT genre, COUNT(*) FROM books GROUP BY genre ORDER BY COUNT(*) DESC", False),
        ("SELECT COUNT(*) AS c FROM books ORDER BY c", False),
        ("SELECT MAX(pages) FROM books ORDER BY MAX(pages)", False),
        ("SELECT title, RANK() OVER (ORDER BY pages) FROM books ORDER BY pages", False),
        (
            "SELECT title FROM books WHERE pages > (SELECT AVG(pages) FROM books) ORDER BY pages",
            False,
        ),
        ("SELECT title, (SELECT COUNT(*) FROM books AS b) FROM books ORDER BY pages", False),
    ],
)
def test_ranked_single_row(sql: str, ranked: bool) -> None:
    assert ranked_single_row(sqlglot.parse_one(sql, read="sqlite")) is ranked


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> tuple[SchemaSnapshot, Path]:
    path = tmp_path_factory.mktemp("ranking") / "books.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(BOOKS)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="books")
    engine.dispose()
    return snapshot, path


def test_a_count_ranked_by_a_column_is_not_shown_as_the_answer(
    books: tuple[SchemaSnapshot, Path],
) -> None:
    snapshot, path = books
    question = "Which three books have the most pages, and how many for each?"
    try:
        generation = BuiltinGenerator().generate(
            GenerationRequest(question=question, schema=snapshot, dialect="sqlite")
        )
    except QuestionNotUnderstood as declined:
        assert "ranks by a column" in declined.message
        assert declined.recognised["doubts"] == [
            "the answer adds every row up into one, yet ranks by a column"
        ]
        return
    # If it is answered, it must be the three books, not one total.
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(generation.sql).fetchall()
    assert len(rows) == 3, generation.sql
