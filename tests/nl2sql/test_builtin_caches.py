"""The builtin engine's per-index and per-word memos answer exactly what they remember: a
phrase's table and column matches (`phrase_match`, kept on the linking index) and whether a
question says a word (`column_choice._said`). Readings are the same asked once or again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator, column_choice, schema_index
from backend.nl2sql.engines.builtin.linking import (
    SchemaIndex,
    _match_columns,
    _match_table,
    phrase_match,
)

SHOP = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, customer_name TEXT NOT NULL, country TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
    order_date TEXT NOT NULL, total_amount REAL NOT NULL, status TEXT NOT NULL);
INSERT INTO customers VALUES (1, 'Ada Park', 'France'), (2, 'Ben Ortiz', 'Spain');
INSERT INTO orders VALUES (1, 1, '2024-01-03', 12.5, 'shipped'), (2, 2, '2024-02-10', 40.0,
    'pending'), (3, 1, '2024-03-01', 7.0, 'shipped');
"""
PHRASES = [
    ("customers",),
    ("customer",),
    ("order", "date"),
    ("total",),
    ("amount",),
    ("country",),
    ("ordered",),
    ("nothing", "here"),
    ("revenue",),
]
QUESTIONS = [
    "How many orders are there?",
    "Total amount of orders per country",
    "Which customers ordered the most?",
    "Orders shipped in 2024",
]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SchemaSnapshot]:
    path = tmp_path_factory.mktemp("shop") / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(SHOP)
    conn.commit()
    conn.close()
    engine = open_sqlite_read_only(path)
    try:
        yield introspect(engine, db_type="sqlite", database_name="shop")
    finally:
        engine.dispose()


def test_a_phrase_match_is_what_the_matchers_answer_and_kept_per_index(
    shop: SchemaSnapshot,
) -> None:
    index = SchemaIndex(shop)
    for phrase in PHRASES:
        expected = (*_match_table(index, phrase), *_match_columns(index, phrase))
        assert phrase_match(index, phrase) == expected
        assert phrase in index.phrase_matches
        # Remembered: asked again, the same answer, in lists of its own each time.
        first = phrase_match(index, phrase)
        first[1].clear()
        first[3].clear()
        assert phrase_match(index, phrase) == expected
    # Another index of the same schema remembers for itself.
    assert SchemaIndex(shop).phrase_matches == {}


def test_said_answers_as_the_words_do() -> None:
    question = frozenset({"revenue", "customer", "ordered"})
    column_choice._said.cache_clear()
    assert column_choice._said("customers", question)  # another inflection
    assert not column_choice._said("shipment", question)
    assert column_choice._said.cache_info().misses == 2
    assert column_choice._said("customers", question)
    assert column_choice._said.cache_info().hits == 1


def test_readings_are_the_same_asked_once_or_again(shop: SchemaSnapshot) -> None:
    generator = BuiltinGenerator()

    def sql_of(question: str) -> str:
        return generator.generate(
            GenerationRequest(question=question, schema=shop, dialect="sqlite", row_cap=100)
        ).sql

    column_choice._said.cache_clear()
    first = [sql_of(q) for q in QUESTIONS]
    assert schema_index(shop).phrase_matches  # the engine's own index remembered its phrases
    assert [sql_of(q) for q in QUESTIONS] == first
