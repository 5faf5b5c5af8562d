"""Readings the builtin engine must not answer as if they were right (issue 12, precision).

The schema is an observatory (a domain the dev sets do not have): telescopes (with a yes/no
`is_robotic`), astronomers and the observations they made. Each doubt is shown two ways: a
question whose reading has the defect is declined with the doubt among its reasons, and a
question of the same kind read right is still answered, its result checked against a
hand-written gold query on a real SQLite database. The query offered when an "or" was read as
"and" is run on SQLite, DuckDB and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator

import duckdb
import pytest
import sqlalchemy
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin import schema_index
from backend.nl2sql.engines.builtin.doubts import (
    counted_superlatives,
    empty_ranges,
    lost_contains,
    lost_disjunction,
    split_counts,
    summed_non_additive,
)
from tests.nl2sql.gym import Rows, duckdb_loaded, generate, plain, postgres_loaded

DDL = """
CREATE TABLE telescopes (telescope_id INTEGER PRIMARY KEY, telescope_name TEXT, site TEXT,
                         aperture_cm REAL, built_year INTEGER, is_robotic INTEGER);
CREATE TABLE astronomers (astronomer_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
                          age INTEGER, seniority TEXT);
CREATE TABLE observations (obs_id INTEGER PRIMARY KEY,
                           telescope_id INTEGER REFERENCES telescopes(telescope_id),
                           astronomer_id INTEGER REFERENCES astronomers(astronomer_id),
                           target TEXT, exposure_minutes REAL, seeing_rating INTEGER)
"""

ROWS: Rows = {
    "telescopes": [
        (1, "Kestrel", "Andes", 250.0, 1985, 1),
        (2, "Heron", "Alps", 120.0, 2012, 0),
        (3, "Osprey", "Andes", 80.0, 1975, 0),
        (4, "Plover", "Atlas", 310.0, 2001, 1),
        (5, "Wren", "Alps", 60.0, 1995, 0),
    ],
    "astronomers": [
        (1, "Ada", "Lind", 41, "senior"),
        (2, "Boris", "Kern", 29, "junior"),
        (3, "Cleo", "Marsh", 55, "senior"),
        (4, "Dev", "Nair", 33, "junior"),
        (5, "Eva", "Ortiz", 47, "senior"),
    ],
    "observations": [
        (1, 1, 1, "Crab Nebula", 30.0, 4),
        (2, 1, 2, "Vega", 10.0, 3),
        (3, 2, 3, "Orion Nebula", 45.0, 5),
        (4, 4, 1, "Sirius", 5.0, 2),
        (5, 4, 4, "Vega", 12.0, 4),
        (6, 4, 5, "Andromeda", 60.0, 5),
        (7, 3, 2, "Sirius", 8.0, 1),
    ],
}


@pytest.fixture(scope="module")
def observatory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("prec2") / "observatory.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
        for table, data in ROWS.items():
            marks = ", ".join("?" * len(data[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", data)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="observatory")
    engine.dispose()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, conn
    conn.close()


def _rows(conn: sqlite3.Connection, sql: str) -> Counter[tuple[object, ...]]:
    return Counter(tuple(r) for r in conn.execute(sql).fetchall())


# ------------------------------------------------------------------ declined, with the doubt

DECLINED = [
    # "or" between two conditions, read as both at once
    (
        # (a flag's condition names no value of its own, so the "or" is not placed between
        # the two conditions' values: `disjunctions` leaves it, the doubt declines it)
        "What are the names of robotic telescopes or telescopes built before 1990?",
        "the query requires both",
    ),
    # a range no row can fall in
    (
        "List the names of telescopes built before 1980 and after 2010.",
        "contradict each other",
    ),
    # a part of a text matched whole
    ("Which targets have 'Nebula' in their names?", "matches it whole"),
    # "the largest telescope" ranked by how many rows share an aperture
    ("Return the aperture of the largest telescope.", "most common value"),
    # "the astronomer who made the most observations" ranked by seniority
    (
        "What is the seniority of the astronomer who made the most observations?",
        "ranks one of their attributes",
    ),
    # a yes/no column shown beside the answer instead of picking the rows
    (
        "List names and sites of the telescopes with robotic operation",
        "instead of picking the rows",
    ),
]


@pytest.mark.parametrize(("question", "reason"), DECLINED)
def test_a_defective_reading_is_declined_with_its_doubt(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection], question: str, reason: str
) -> None:
    snapshot, _ = observatory
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(snapshot, question)
    doubts = caught.value.recognised.get("doubts", [])
    assert any(reason in d for d in doubts), doubts
    assert caught.value.suggestions, "a decline offers the reading as a suggestion"


# ------------------------------------------------------------------ still answered

ANSWERED = [
    # "exactly one observation", once read with no count (declined as a bound on rows not
    # read as a count): "exactly N" is a comparison (h-spsup)
    (
        "What are the first names of astronomers who made exactly one observation?",
        "SELECT a.first_name FROM astronomers a JOIN observations o"
        " ON a.astronomer_id = o.astronomer_id GROUP BY a.astronomer_id HAVING COUNT(*) = 1",
    ),
    # "how old ... on average", once read as a total of ages (declined): the average said
    # last is the average said first (`idioms.move_trailing_average`)
    (
        "How old is each seniority level, on average?",
        "SELECT seniority, AVG(age) FROM astronomers GROUP BY seniority",
    ),
    (
        "Which telescopes were built before 1990 and have an aperture above 200?",
        "SELECT telescope_name FROM telescopes WHERE built_year < 1990 AND aperture_cm > 200",
    ),
    # the "or" stands between the two conditions' values: read as either (`disjunctions`)
    (
        "What are the names of telescopes built before 1990 or with an aperture above 200?",
        "SELECT telescope_name FROM telescopes WHERE built_year < 1990 OR aperture_cm > 200",
    ),
    # two bounds of one column joined by "or": outside the range (`disjunctions`)
    (
        "List the names of telescopes built before 1980 or after 2010.",
        "SELECT telescope_name FROM telescopes WHERE built_year < 1980 OR built_year > 2010",
    ),
    (
        "What is the average age of astronomers for each seniority?",
        "SELECT seniority, AVG(age) FROM astronomers GROUP BY seniority",
    ),
    # "3 or more" is one bound, not two conditions
    (
        "Which telescopes have 3 or more observations?",
        "SELECT t.telescope_name FROM telescopes t JOIN observations o"
        " ON o.telescope_id = t.telescope_id GROUP BY t.telescope_id HAVING COUNT(*) >= 3",
    ),
    (
        "What are the first names of astronomers who made 2 or more observations?",
        "SELECT a.first_name FROM astronomers a JOIN observations o"
        " ON o.astronomer_id = a.astronomer_id GROUP BY a.astronomer_id HAVING COUNT(*) >= 2",
    ),
    # "4 or more" bounds a column here, not a number of rows
    (
        "Which astronomers have a seeing rating of 4 or more?",
        "SELECT a.first_name, a.last_name FROM astronomers a JOIN observations o"
        " ON o.astronomer_id = a.astronomer_id WHERE o.seeing_rating >= 4",
    ),
    # a superlative that sizes a value, read as a ranking by that value
    (
        "What is the name of the telescope with the largest aperture?",
        "SELECT telescope_name FROM telescopes ORDER BY aperture_cm DESC LIMIT 1",
    ),
    # "the most telescopes" counts rows: a ranking by a count is right here
    (
        "Which telescope site has the most telescopes?",
        "SELECT site FROM telescopes GROUP BY site ORDER BY COUNT(*) DESC LIMIT 1",
    ),
    (
        "Which telescopes are robotic?",
        "SELECT telescope_name FROM telescopes WHERE is_robotic = 1",
    ),
    # the flag's own word as an adjective of its rows picks them ("the robotic telescopes")
    (
        "What are the names and sites of the robotic telescopes?",
        "SELECT telescope_name, site FROM telescopes WHERE is_robotic = 1",
    ),
    # one table: the seniority with the most astronomers is a ranking of seniorities
    (
        "Which seniority has the most astronomers?",
        "SELECT seniority FROM astronomers GROUP BY seniority ORDER BY COUNT(*) DESC LIMIT 1",
    ),
    # a count grouped by the rows it counts for, not by the counted rows
    (
        "How many observations did each telescope make? Show the telescope name and the count.",
        "SELECT t.telescope_name, COUNT(*) FROM telescopes t JOIN observations o"
        " ON o.telescope_id = t.telescope_id GROUP BY t.telescope_id",
    ),
]


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_a_right_reading_of_the_same_kind_is_answered(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = observatory
    try:
        sql = generate(snapshot, question).sql
    except QuestionNotUnderstood as exc:
        pytest.fail(f"declined {question!r}: {exc.message}")
    assert _rows(conn, sql) == _rows(conn, gold), sql


# ------------------------------------------------------------------ the "either" suggestion

EITHER = "What are the names of robotic telescopes or telescopes built before 1990?"
EITHER_GOLD = "SELECT telescope_name FROM telescopes WHERE is_robotic = 1 OR built_year < 1990"


def _either_suggestion(snapshot: SchemaSnapshot, dialect: str) -> str:
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(snapshot, EITHER, dialect)
    offered = [s.sql for s in caught.value.suggestions if s.sql and "either" in s.text]
    assert len(offered) == 1, [s.text for s in caught.value.suggestions]
    return offered[0]


def test_the_either_reading_is_offered_and_right_on_sqlite(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = observatory
    sql = _either_suggestion(snapshot, "sqlite")
    assert _rows(conn, sql) == _rows(conn, EITHER_GOLD), sql


@pytest.fixture(scope="module")
def observatory_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(DDL, ROWS)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def observatory_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, DDL, ROWS) as conn:
        yield conn


def test_the_either_reading_runs_on_duckdb(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection],
    observatory_duckdb: duckdb.DuckDBPyConnection,
) -> None:
    snapshot, conn = observatory
    sql = _either_suggestion(snapshot, "duckdb")
    got = [tuple(r) for r in observatory_duckdb.execute(sql).fetchall()]
    assert Counter(plain(got)) == Counter(plain(list(_rows(conn, EITHER_GOLD)))), sql


def test_the_either_reading_runs_on_postgresql(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection],
    observatory_postgres: sqlalchemy.Connection,
) -> None:
    snapshot, conn = observatory
    sql = _either_suggestion(snapshot, "postgresql")
    got = [tuple(r) for r in observatory_postgres.execute(sqlalchemy.text(sql))]
    assert Counter(plain(got)) == Counter(plain(list(_rows(conn, EITHER_GOLD)))), sql


# ------------------------------------------------------------------ the doubts on SQL alone


def _tree(sql: str) -> sqlglot.exp.Expr:
    return sqlglot.parse_one(sql, read="sqlite")


def test_split_counts_tells_a_count_per_counted_row_from_a_count_per_group(
    observatory: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    index = schema_index(observatory[0])
    per_observer = (
        "SELECT t.telescope_name, a.first_name, COUNT(DISTINCT a.astronomer_id) FROM telescopes t"
        " JOIN observations o ON o.telescope_id = t.telescope_id JOIN astronomers a"
        " ON a.astronomer_id = o.astronomer_id GROUP BY t.telescope_id, a.first_name"
    )
    per_telescope = (
        "SELECT t.telescope_name, COUNT(DISTINCT o.obs_id) FROM telescopes t"
        " JOIN observations o ON o.telescope_id = t.telescope_id GROUP BY t.telescope_id"
    )
    referring = (
        "SELECT o.telescope_id, COUNT(DISTINCT o.obs_id) FROM observations o"
        " JOIN telescopes t ON o.telescope_id = t.telescope_id GROUP BY o.telescope_id, t.site"
    )
    one_table_by_key = "SELECT site, COUNT(*) FROM telescopes GROUP BY telescope_id, site"
    one_table_by_site = "SELECT site, COUNT(*) FROM telescopes GROUP BY site"
    assert split_counts(_tree(per_observer), index) == 1
    assert split_counts(_tree(per_telescope), index) == 0
    assert split_counts(_tree(referring), index) == 0
    assert split_counts(_tree(one_table_by_key), index) == 1
    assert split_counts(_tree(one_table_by_site), index) == 0


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1 FROM t WHERE y < 2000 AND y > 2010", 1),
        ("SELECT 1 FROM t WHERE y >= 2000 AND y <= 2000", 1),
        ("SELECT 1 FROM t WHERE y > 2000 AND y < 2010", 0),
        ("SELECT 1 FROM t WHERE y < 2000 OR y > 2010", 0),
        ("SELECT 1 FROM t WHERE a < 2000 AND b > 2010", 0),
    ],
)
def test_empty_ranges(sql: str, expected: int) -> None:
    assert empty_ranges(_tree(sql)) == expected


@pytest.mark.parametrize(
    ("question", "sql", "expected"),
    [
        (
            "films made before 1980 or directed by Lee",
            "SELECT a FROM t WHERE y < 1980 AND d = 1",
            1,
        ),
        ("films made before 1980 or directed by Lee", "SELECT a FROM t WHERE y < 1980 OR d = 1", 0),
        ("films in French or German", "SELECT a FROM t WHERE l IN ('fr', 'de') AND y > 1", 0),
        ("members with 3 or more loans and a card", "SELECT a FROM t WHERE n >= 3 AND c = 1", 0),
        ("films from 2010 or later, and in colour", "SELECT a FROM t WHERE y >= 2010 AND c = 1", 0),
        ("the name and altitude (or elevation)", "SELECT a FROM t WHERE y = 1 AND c = 2", 0),
        ("a film made before 1980 or in French", "SELECT a FROM t WHERE y < 1980", 0),
    ],
)
def test_lost_disjunction(question: str, sql: str, expected: int) -> None:
    assert lost_disjunction(_tree(sql), question) == bool(expected)


def test_counted_superlatives_and_non_additive_sums() -> None:
    by_count = "SELECT amount FROM pay GROUP BY amount ORDER BY COUNT(*) DESC LIMIT 1"
    assert counted_superlatives(_tree(by_count), "the amount of the largest payment")
    assert not counted_superlatives(_tree(by_count), "the amount paid the most times")
    assert not counted_superlatives(_tree(by_count), "the largest number of payments")
    assert summed_non_additive(_tree("SELECT SUM(age), SUM(min_salary) FROM p")) == 2
    assert summed_non_additive(_tree("SELECT SUM(amount) FROM p")) == 0


def test_lost_contains_needs_a_part_of_a_text() -> None:
    whole = "SELECT name FROM p WHERE title = 'senior'"
    pattern = "SELECT name FROM p WHERE title LIKE '%senior%'"
    assert lost_contains(_tree(whole), "physicians with 'senior' in their titles")
    assert not lost_contains(_tree(pattern), "physicians with 'senior' in their titles")
    assert not lost_contains(_tree(whole), "albums that contain tracks over 3 minutes")
