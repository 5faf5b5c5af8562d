"""Superlatives and numbers the builtin engine reads over a kennel schema:

* a superlative in a list of aggregate words over one figure ("the highest, lowest and average
  weight for every breed") is that figure's MAX or MIN beside the others, per group when
  groups are named, not a ranking of rows (was declined as "the highest or lowest within each
  group" or "could not tell what to rank by");
* "the dog with the highest and lowest weight" picks rows and is not read as the figures;
* "exactly N <rows>" compares a count with N ("breeds with exactly two dogs"), and
  "exactly 12.5" a value (the number was declined as placed nowhere).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator, schema_index
from backend.nl2sql.engines.builtin.doubts import uncounted_thresholds

KENNELS = """
CREATE TABLE kennel (kennel_id INTEGER PRIMARY KEY, kennel_name TEXT, region TEXT);
CREATE TABLE dog (
  dog_id INTEGER PRIMARY KEY, dog_name TEXT, breed TEXT, weight REAL, age INTEGER,
  kennel_id INTEGER REFERENCES kennel(kennel_id)
);
INSERT INTO kennel VALUES (1, 'North Paws', 'north'), (2, 'South Barks', 'south'),
  (3, 'East Tails', 'east');
INSERT INTO dog VALUES (1, 'Rex', 'collie', 20.5, 3, 1), (2, 'Fido', 'beagle', 11.0, 5, 1),
  (3, 'Bella', 'collie', 24.0, 2, 2), (4, 'Max', 'pug', 8.0, 9, 2),
  (5, 'Luna', 'beagle', 12.5, 4, 3);
"""

Rows = set[tuple[object, ...]]


@pytest.fixture(scope="module")
def kennels(tmp_path_factory: pytest.TempPathFactory) -> tuple[SchemaSnapshot, Path]:
    path = tmp_path_factory.mktemp("spsup") / "kennels.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(KENNELS)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="kennels")
    engine.dispose()
    return snapshot, path


def _ask(kennels: tuple[SchemaSnapshot, Path], question: str) -> tuple[str, Rows]:
    snapshot, path = kennels
    generation = BuiltinGenerator().generate(
        GenerationRequest(question=question, schema=snapshot, dialect="sqlite")
    )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = {tuple(r) for r in conn.execute(generation.sql).fetchall()}
    return generation.sql, rows


def _sorted_values(rows: Rows) -> set[tuple[object, ...]]:
    """Each row's values as a sorted tuple of their text (column order is not asked)."""
    return {tuple(sorted(str(v) for v in row)) for row in rows}


@pytest.mark.parametrize(
    "question,expected",
    [
        (
            "What is the highest, lowest, and average weight for every breed?",
            {
                ("beagle", 12.5, 11.0, 11.75),
                ("collie", 24.0, 20.5, 22.25),
                ("pug", 8.0, 8.0, 8.0),
            },
        ),
        (
            "What are the greatest and average weight for dogs in each breed?",
            {("beagle", 12.5, 11.75), ("collie", 24.0, 22.25), ("pug", 8.0, 8.0)},
        ),
        ("What are the highest and lowest weights?", {(24.0, 8.0)}),
        ("What is the lowest and highest age of dogs?", {(2, 9)}),
        (
            "Show the average and highest weight of dogs for each kennel name.",
            {("North Paws", 15.75, 20.5), ("South Barks", 16.0, 24.0), ("East Tails", 12.5, 12.5)},
        ),
    ],
)
def test_superlatives_listed_with_aggregates_are_the_figure_extremes(
    kennels: tuple[SchemaSnapshot, Path], question: str, expected: Rows
) -> None:
    sql, rows = _ask(kennels, question)
    assert _sorted_values(rows) == _sorted_values(expected), sql
    assert "ORDER BY" not in sql.upper() or "GROUP BY" in sql.upper(), sql


@pytest.mark.parametrize(
    "question",
    [
        "What is the name of the dog with the highest and lowest weight?",
        "Which breed has the highest and lowest weight?",
    ],
)
def test_rows_picked_at_both_ends_are_not_read_as_the_figures(
    kennels: tuple[SchemaSnapshot, Path], question: str
) -> None:
    try:
        sql, _rows = _ask(kennels, question)
    except QuestionNotUnderstood:
        return
    assert "MAX(" not in sql.upper() or "GROUP BY DOG_NAME" not in sql.upper(), sql


@pytest.mark.parametrize(
    "question,expected",
    [
        ("Which breeds have exactly 2 dogs?", {("beagle",), ("collie",)}),
        ("What are the breeds with exactly two dogs?", {("beagle",), ("collie",)}),
        ("Which kennels have exactly one dog?", {("East Tails",)}),
        ("Which dogs weigh exactly 12.5?", {("Luna",)}),
    ],
)
def test_exactly_n_compares_as_equal(
    kennels: tuple[SchemaSnapshot, Path], question: str, expected: Rows
) -> None:
    sql, rows = _ask(kennels, question)
    assert rows == expected, sql


def test_exactly_without_a_number_is_no_comparison(
    kennels: tuple[SchemaSnapshot, Path],
) -> None:
    sql, rows = _ask(kennels, "What exactly is the weight of Rex?")
    assert rows == {(20.5,)}, sql


@pytest.mark.parametrize(
    "question,expected",
    [
        ("Which breed is registered the most?", {("beagle",), ("collie",)}),
        ("What breed appears the most?", {("beagle",), ("collie",)}),
        ("Which breed is listed the least?", {("pug",)}),
    ],
)
def test_a_verb_then_the_most_ranks_values_by_their_rows(
    kennels: tuple[SchemaSnapshot, Path], question: str, expected: Rows
) -> None:
    sql, rows = _ask(kennels, question)
    assert "COUNT(" in sql.upper(), sql
    assert rows <= expected and len(rows) == 1, sql


def test_a_verb_then_the_most_over_named_rows_is_not_a_count_of_them(
    kennels: tuple[SchemaSnapshot, Path],
) -> None:
    """Each dog is one row: counting the dogs named would rank nothing."""
    try:
        sql, _rows = _ask(kennels, "What is the name of the dog that was registered the most?")
    except QuestionNotUnderstood:
        return
    assert "COUNT(" not in sql.upper(), sql


@pytest.mark.parametrize(
    "question",
    [
        "What is the age of the oldest and youngest collie dogs?",
        "Give the names of the oldest and the youngest dogs.",
    ],
)
def test_one_figure_ranked_both_ways_is_declined_with_a_suggestion(
    kennels: tuple[SchemaSnapshot, Path], question: str
) -> None:
    """Was `ORDER BY age DESC, age ASC LIMIT 1`: one dog shown as both ends."""
    with pytest.raises(QuestionNotUnderstood) as declined:
        _ask(kennels, question)
    assert "maximum and minimum age" in declined.value.message


def test_two_figures_ranked_in_turn_are_still_one_row(
    kennels: tuple[SchemaSnapshot, Path],
) -> None:
    sql, rows = _ask(kennels, "Which dog has the highest weight and the lowest age?")
    assert rows == {("Bella",)}, sql


def test_a_bound_on_rows_read_with_no_count_is_still_a_doubt(
    kennels: tuple[SchemaSnapshot, Path],
) -> None:
    """The doubt that once caught "exactly two dogs" read as no count still catches a query
    that counts nothing (the engine now reads the bound; the doubt guards other readings)."""
    index = schema_index(kennels[0])
    question = "Which breeds have exactly 2 dogs?"
    uncounted = sqlglot.parse_one("SELECT breed FROM dog", read="sqlite")
    counted = sqlglot.parse_one(
        "SELECT breed FROM dog GROUP BY breed HAVING COUNT(*) = 2", read="sqlite"
    )
    assert uncounted_thresholds(uncounted, question, index)
    assert not uncounted_thresholds(counted, question, index)


def test_exactly_one_of_is_not_a_count_bound(kennels: tuple[SchemaSnapshot, Path]) -> None:
    """ "exactly one of A and B" is either-but-not-both, not a count of rows equal to one."""
    try:
        sql, _rows = _ask(kennels, "Kennels with exactly one of collie and pug dogs")
    except QuestionNotUnderstood as declined:
        assert "COUNT(" not in str(declined.recognised.get("candidate_sql") or "").upper()
        return
    assert "= 1" not in sql, sql
