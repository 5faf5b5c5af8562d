"""Spider-style readings on a small community-garden schema written here (gardeners, the plants
of the garden, who tends which plant):

* "either A or B" between stored values of one column that each row holds once is that
  column's list of values; an "either" joining conditions on different columns, after a
  negation, or between values of related rows a row has many of, stays declined;
* "from least to greatest", "from the highest to the lowest": the direction of an order, not
  a superlative that must refer to something; "appears the most often" ranks by a count;
* "the most recent / newest / oldest plant" on rows dated only by a year number ranks by that
  year; "after the most recent ..." (a comparison with it) stays declined;
* "more than the gardener with id 4": against the value of the row the primary key names;
* "the total number of seeds" over a `seed_count` column: the sum of the count the rows hold
  (the column itself "for each plant"), not a count of rows;
* "45 years old", "over 40 years old": the rows' age; "in the range of 30 and 50": between;
* "from the desert or planted after 2020": the query's two conditions joined by OR when the
  question's "or" stands between their values.

The new SQL shapes (OR of two conditions, a comparison with a keyed row, the sum of a count
column) also run on DuckDB and PostgreSQL.

Each answer is checked by running it and a hand-written gold query on the same SQLite
database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.evaluation import results_match
from tests.nl2sql.gym import (
    assert_same_answer,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

GARDEN_DDL = """
CREATE TABLE gardeners (
    gardener_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    district TEXT NOT NULL,
    age INTEGER NOT NULL
);
CREATE TABLE plants (
    plant_id INTEGER PRIMARY KEY,
    common_name TEXT NOT NULL,
    habitat TEXT NOT NULL,
    height_cm REAL NOT NULL,
    planted_year INTEGER NOT NULL,
    seed_count INTEGER NOT NULL
);
CREATE TABLE tends (
    gardener_id INTEGER NOT NULL REFERENCES gardeners(gardener_id),
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    PRIMARY KEY (gardener_id, plant_id)
)
"""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    gardeners = [
        (1, "Ada Moss", "Northside", 34),
        (2, "Bram Heath", "Riverside", 51),
        (3, "Cleo Fern", "Hillcrest", 27),
        (4, "Dev Rowan", "Northside", 45),
        (5, "Esme Birch", "Oldtown", 62),
        (6, "Finn Alder", "Riverside", 38),
    ]
    plants = [
        (1, "marsh marigold", "wetland", 40.0, 2015, 120),
        (2, "saguaro", "desert", 310.0, 2009, 4000),
        (3, "bluebell", "woodland", 25.0, 2018, 60),
        (4, "water lily", "wetland", 15.0, 2021, 30),
        (5, "agave", "desert", 120.0, 2012, 900),
        (6, "oak sapling", "woodland", 180.0, 2023, 1),
        (7, "cattail", "wetland", 200.0, 2019, 2500),
    ]
    tends = [(1, 1), (1, 4), (2, 2), (2, 5), (3, 3), (3, 6), (4, 7), (5, 2), (6, 1), (6, 6)]
    return {"gardeners": gardeners, "plants": plants, "tends": tends}


@pytest.fixture(scope="module")
def garden_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("garden") / "garden.sqlite"
    return sqlite_loaded(path, GARDEN_DDL, _tables())


@pytest.fixture(scope="module")
def garden(garden_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(garden_path, "garden")


@pytest.fixture(scope="module")
def garden_db(garden_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{garden_path}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "How many gardeners live in either Northside or Riverside?",
            "SELECT COUNT(*) FROM gardeners WHERE district = 'Northside' OR district = 'Riverside'",
        ),
        (
            "What are the names of gardeners living either in Hillcrest or in Oldtown?",
            "SELECT name FROM gardeners WHERE district IN ('Hillcrest', 'Oldtown')",
        ),
        (
            "List the common names of plants from either the wetland or the desert.",
            "SELECT common_name FROM plants WHERE habitat = 'wetland' OR habitat = 'desert'",
        ),
    ],
)
def test_either_of_two_values_of_one_column(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


@pytest.mark.parametrize(
    "question",
    [
        # two conditions on different columns: an OR the engine does not build
        "Which plants are either from the desert or taller than 150 centimetres?",
        # a negation before "either": which reading is meant is unclear
        "How many gardeners do not live in either Northside or Riverside?",
        # values of rows each gardener has many of: "either" may mean exactly one of them
        "Which gardeners tend either the saguaro or the agave?",
    ],
)
def test_other_eithers_stay_declined(garden: SchemaSnapshot, question: str) -> None:
    with pytest.raises(QuestionNotUnderstood):
        generate(garden, question)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "List the common names of all plants in order of height from least to greatest.",
            "SELECT common_name FROM plants ORDER BY height_cm",
        ),
        (
            "Show the name and age of all gardeners sorted by age from the highest to the lowest.",
            "SELECT name, age FROM gardeners ORDER BY age DESC",
        ),
        (
            "List the plants' common names and heights, ordered by height from smallest to "
            "the largest.",
            "SELECT common_name, height_cm FROM plants ORDER BY height_cm",
        ),
    ],
)
def test_an_order_said_as_a_range_of_extremes(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "What is the common name of the most recent plant?",
            "SELECT common_name FROM plants WHERE planted_year = "
            "(SELECT MAX(planted_year) FROM plants)",
        ),
        (
            "What is the common name of the newest plant?",
            "SELECT common_name FROM plants ORDER BY planted_year DESC LIMIT 1",
        ),
        (
            "Which habitat is the oldest plant from?",
            "SELECT habitat FROM plants ORDER BY planted_year LIMIT 1",
        ),
    ],
)
def test_recent_and_old_rank_by_a_year_number(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


def test_the_oldest_person_is_still_by_age(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    gen = generate(garden, "What is the name of the oldest gardener?")
    assert_same_answer(garden_db, gen.sql, "SELECT name FROM gardeners ORDER BY age DESC LIMIT 1")


def test_a_comparison_with_the_most_recent_stays_declined(garden: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood):
        generate(garden, "Which plants were planted after the most recent desert plant?")


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "Which gardeners are older than the gardener with id 4? Give their names.",
            "SELECT name FROM gardeners WHERE age > (SELECT age FROM gardeners "
            "WHERE gardener_id = 4)",
        ),
        (
            "List the common names of plants whose height is greater than the plant whose "
            "plant id is 5.",
            "SELECT common_name FROM plants WHERE height_cm > (SELECT height_cm FROM plants "
            "WHERE plant_id = 5)",
        ),
    ],
)
def test_a_comparison_with_the_row_a_key_names(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "What is the total number of seeds of the wetland plants?",
            "SELECT SUM(seed_count) FROM plants WHERE habitat = 'wetland'",
        ),
        (
            "How many seeds in total do the desert plants have?",
            "SELECT SUM(seed_count) FROM plants WHERE habitat = 'desert'",
        ),
        (
            "List the common name and the number of seeds for each plant.",
            "SELECT common_name, seed_count FROM plants",
        ),
        (
            # the rows themselves counted: no count column is named
            "What is the total number of plants in the desert?",
            "SELECT COUNT(*) FROM plants WHERE habitat = 'desert'",
        ),
    ],
)
def test_a_count_the_rows_hold(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "Which plants are from the desert or were planted after 2020?",
            "SELECT common_name FROM plants WHERE habitat = 'desert' OR planted_year > 2020",
        ),
        (
            "List the names of gardeners who live in Oldtown or are younger than 30.",
            "SELECT name FROM gardeners WHERE district = 'Oldtown' OR age < 30",
        ),
        (
            "How many gardeners are older than 50 or live in Hillcrest?",
            "SELECT COUNT(*) FROM gardeners WHERE age > 50 OR district = 'Hillcrest'",
        ),
        (
            "Which plants were planted before 2012 or after 2020?",
            "SELECT common_name FROM plants WHERE planted_year < 2012 OR planted_year > 2020",
        ),
    ],
)
def test_two_conditions_joined_by_or(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


def test_an_or_inside_a_list_of_values_keeps_the_other_condition(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    gen = generate(garden, "Which plants were planted after 2010 in the wetland or the woodland?")
    assert_same_answer(
        garden_db,
        gen.sql,
        "SELECT common_name FROM plants WHERE planted_year > 2010 "
        "AND habitat IN ('wetland', 'woodland')",
    )


SHAPES = {
    "Which plants are from the desert or were planted after 2020?": (
        "SELECT common_name FROM plants WHERE habitat = 'desert' OR planted_year > 2020"
    ),
    "Which gardeners are older than the gardener with id 4? Give their names.": (
        "SELECT name FROM gardeners WHERE age > (SELECT age FROM gardeners WHERE gardener_id = 4)"
    ),
    "What is the total number of seeds of the wetland plants?": (
        "SELECT SUM(seed_count) FROM plants WHERE habitat = 'wetland'"
    ),
}


@pytest.fixture(scope="module")
def garden_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(GARDEN_DDL, _tables())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def garden_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, GARDEN_DDL, _tables()) as conn:
        yield conn


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sql).fetchall()]


@pytest.mark.parametrize("question", sorted(SHAPES))
def test_duckdb_runs_the_new_shapes(
    garden: SchemaSnapshot,
    garden_db: sqlite3.Connection,
    garden_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = _rows(garden_db, SHAPES[question])
    sql = generate(garden, question, dialect="duckdb").sql
    got = [tuple(r) for r in garden_duckdb.execute(sql).fetchall()]
    assert results_match(plain(expected), plain(got), ordered=False), sql


@pytest.mark.parametrize("question", sorted(SHAPES))
def test_postgres_runs_the_new_shapes(
    garden: SchemaSnapshot,
    garden_db: sqlite3.Connection,
    garden_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = _rows(garden_db, SHAPES[question])
    sql = generate(garden, question, dialect="postgresql").sql
    got = [tuple(r) for r in garden_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(plain(expected), plain(got), ordered=False), sql


@pytest.mark.parametrize(
    "question",
    ["Which habitat appears the most often?", "Which habitat occurs most frequently?"],
)
def test_most_often_ranks_by_how_many_rows(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(
        garden_db,
        gen.sql,
        "SELECT habitat FROM plants GROUP BY habitat ORDER BY COUNT(*) DESC LIMIT 1",
    )


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        ("How many gardeners are 45 years old?", "SELECT COUNT(*) FROM gardeners WHERE age = 45"),
        (
            "List the names of gardeners over 40 years old.",
            "SELECT name FROM gardeners WHERE age > 40",
        ),
        (
            "List the names of gardeners whose age is in the range of 30 and 50.",
            "SELECT name FROM gardeners WHERE age BETWEEN 30 AND 50",
        ),
        (
            "List the common names of plants whose height is within the range 20 to 150.",
            "SELECT common_name FROM plants WHERE height_cm BETWEEN 20 AND 150",
        ),
    ],
)
def test_ages_in_years_and_ranges_of_numbers(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)


def test_years_old_without_an_age_column_stays_declined(garden: SchemaSnapshot) -> None:
    with pytest.raises(QuestionNotUnderstood):
        generate(garden, "Which plants are 10 years old?")


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "List the common names of the desert plants. Sort the list by their height.",
            "SELECT common_name FROM plants WHERE habitat = 'desert' ORDER BY height_cm",
        ),
        (
            "How many plants are there in each habitat? Order the habitats by the number of "
            "plants.",
            "SELECT habitat, COUNT(*) FROM plants GROUP BY habitat ORDER BY COUNT(*)",
        ),
    ],
)
def test_a_later_sentence_opening_with_a_verb_is_no_name(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    gen = generate(garden, question)
    assert_same_answer(garden_db, gen.sql, gold)
