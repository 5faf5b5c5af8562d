"""Which table a column is read from, and the two roles one table plays (issue 12, precision).

The schema is a railway (a domain the dev sets do not have): passengers buy tickets for
trips, each trip refers to the stations table twice, where it starts and where it ends, and
companions pairs two passengers by name (a traveller and their companion).
`trips.trip_date` is a date two joins away from passengers, so a loose "date" in a question
about passengers once pulled it in. Gold is checked by result on a real SQLite database; the
role-joined SQL (the stations table once, or once per role under an alias) is also run on
DuckDB and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
import sqlglot

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin import schema_index
from backend.nl2sql.engines.builtin.column_choice import prefer_named_columns, unjustified
from backend.nl2sql.engines.builtin.intents import Measure
from backend.nl2sql.engines.builtin.interpret import parse
from backend.nl2sql.engines.builtin.lexicon import tokenise
from backend.nl2sql.engines.builtin.roles import one_row_for_two_roles, role_words, split_roles
from tests.nl2sql.gym import (
    Rows,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

DDL = """
CREATE TABLE passengers (passenger_id INTEGER PRIMARY KEY, passenger_name TEXT UNIQUE,
                         date_passenger_registered TEXT);
CREATE TABLE stations (station_id INTEGER PRIMARY KEY, station_name TEXT, city TEXT);
CREATE TABLE trips (trip_id INTEGER PRIMARY KEY, trip_date TEXT,
                    origin_station_id INTEGER REFERENCES stations(station_id),
                    destination_station_id INTEGER REFERENCES stations(station_id));
CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY,
                      passenger_id INTEGER REFERENCES passengers(passenger_id),
                      trip_id INTEGER REFERENCES trips(trip_id), fare REAL);
CREATE TABLE companions (traveller TEXT REFERENCES passengers(passenger_name),
                         companion TEXT REFERENCES passengers(passenger_name),
                         since_year INTEGER)
"""

ROWS: Rows = {
    "passengers": [(1, "Ann", "2020-01-05"), (2, "Bob", "2021-03-01"), (3, "Cy", "2022-07-09")],
    "stations": [(1, "Leeds Central", "Leeds"), (2, "York", "York"), (3, "Hull Paragon", "Hull")],
    "trips": [
        (1, "2024-01-01", 1, 2),
        (2, "2024-01-02", 2, 3),
        (3, "2024-01-03", 1, 3),
        (4, "2024-01-04", 3, 1),
        (5, "2024-01-05", 2, 1),
    ],
    "tickets": [
        (1, 1, 1, 10.0),
        (2, 1, 2, 12.5),
        (3, 2, 3, 8.0),
        (4, 3, 4, 20.0),
        (5, 2, 1, 10.0),
        (6, 3, 5, 9.5),
    ],
    "companions": [("Ann", "Bob", 2020), ("Bob", "Cy", 2021), ("Cy", "Ann", 2022)],
}


@pytest.fixture(scope="module")
def railway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path: Path = tmp_path_factory.mktemp("spcols") / "railway.sqlite"
    sqlite_loaded(path, DDL, ROWS)
    snapshot = sqlite_snapshot(path, "railway")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, conn
    conn.close()


def _rows(conn: sqlite3.Connection, sql: str) -> Counter[tuple[object, ...]]:
    return Counter(tuple(r) for r in conn.execute(sql).fetchall())


# ------------------------------------------------------------------ answered, right by result

ANSWERED = [
    # "dates" of a question about passengers: the passengers' own date, not the trips'
    (
        "What are the ids, names and dates of registration of all passengers?",
        "SELECT passenger_id, passenger_name, date_passenger_registered FROM passengers",
    ),
    # the same, with the date named already: not shown twice, no trips joined
    (
        "Show the id, the date of passenger registered, and the name for all passengers.",
        "SELECT passenger_id, date_passenger_registered, passenger_name FROM passengers",
    ),
    # a column of the pairs, with no name to place in a role
    (
        "Which companions have been together since 2021?",
        "SELECT companion FROM companions WHERE since_year >= 2021",
    ),
    # a column of another table the question names by its own word stays
    (
        "What is the total fare of each passenger?",
        "SELECT p.passenger_name, SUM(t.fare) FROM passengers p JOIN tickets t"
        " ON t.passenger_id = p.passenger_id GROUP BY p.passenger_id",
    ),
    # "from <name>": the key of the trip's start
    (
        "List the trip dates of trips from Leeds Central.",
        "SELECT t.trip_date FROM trips t JOIN stations s ON t.origin_station_id = s.station_id"
        " WHERE s.station_name = 'Leeds Central'",
    ),
    # "to <name>": the key of the trip's end
    (
        "How many trips go to Hull Paragon?",
        "SELECT COUNT(*) FROM trips t JOIN stations s ON t.destination_station_id = s.station_id"
        " WHERE s.station_name = 'Hull Paragon'",
    ),
    # both: the stations table once per role, each joined by its own key
    (
        "How many trips go from York to Hull Paragon?",
        "SELECT COUNT(*) FROM trips t JOIN stations o ON t.origin_station_id = o.station_id"
        " JOIN stations d ON t.destination_station_id = d.station_id"
        " WHERE o.station_name = 'York' AND d.station_name = 'Hull Paragon'",
    ),
    (
        "List the dates of trips from Leeds Central to York.",
        "SELECT t.trip_date FROM trips t JOIN stations o ON t.origin_station_id = o.station_id"
        " JOIN stations d ON t.destination_station_id = d.station_id"
        " WHERE o.station_name = 'Leeds Central' AND d.station_name = 'York'",
    ),
]


@pytest.mark.parametrize(("question", "gold"), ANSWERED)
def test_the_reading_is_answered_and_right(
    railway: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: str
) -> None:
    snapshot, conn = railway
    generation = generate(snapshot, question)
    assert _rows(conn, generation.sql) == _rows(conn, gold), generation.sql
    assert "trips" not in generation.sql or "trip" in question.lower()


# ------------------------------------------------------------------ declined, with the doubt

DECLINED = [
    # the stations shown are where trips end, the one named where they start
    ("Which stations do trips go to from Leeds Central?", "more than one way"),
    # Ann is stored as a traveller and as a companion: which role is she asked about?
    ("Who are Ann's companions?", "play two roles"),
    ("Who are the companions of Bob?", "play two roles"),
    # the name of the passenger named Ann is Ann: some other column was meant
    ("Where is the passenger Ann?", "only repeat the values"),
]


@pytest.mark.parametrize(("question", "reason"), DECLINED)
def test_unsure_roles_and_echoes_are_declined(
    railway: tuple[SchemaSnapshot, sqlite3.Connection], question: str, reason: str
) -> None:
    snapshot, _ = railway
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(snapshot, question)
    text = str(caught.value) + " ".join(caught.value.recognised.get("doubts", []))
    assert reason in text, text
    assert caught.value.suggestions, "a decline offers the reading as a suggestion"


def test_a_column_of_an_unnamed_table_without_a_counterpart_is_unjustified(
    railway: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    """Before the named table's column is preferred, the reading takes `trips.trip_date` for
    "dates" of passengers; the check calls it unjustified, and the preference replaces it."""
    snapshot, _ = railway
    index = schema_index(snapshot)
    intent = parse("What are the ids, names and dates of registration of all passengers?", index)
    found = unjustified(intent, index)
    assert [(c.table, c.name) for c in found] == [("trips", "trip_date")]
    fixed = prefer_named_columns(intent, index)
    assert unjustified(fixed, index) == []
    shown = [(m.column.table, m.column.name) for m in fixed.select if m.column is not None]
    assert ("passengers", "date_passenger_registered") in shown
    assert len(shown) == len(set(shown))


def test_a_column_the_question_names_by_its_own_word_is_justified(
    railway: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = railway
    index = schema_index(snapshot)
    intent = parse("What is the total fare of each passenger?", index)
    assert unjustified(intent, index) == []


@pytest.mark.parametrize(
    ("question", "roles"),
    [
        ("Trips from Leeds to York", {"origin", "destination"}),
        ("Trips from 'Leeds Central'", {"origin"}),
        ("How to count trips from the list?", set()),
        ("Which trips go to each station?", set()),
    ],
)
def test_prepositions_before_a_name_carry_a_role(question: str, roles: set[str]) -> None:
    assert role_words(tokenise(question)) == roles


def test_one_row_shown_and_picked_by_the_same_column_is_two_roles(
    railway: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = railway
    index = schema_index(snapshot)
    both = (
        "SELECT stations.station_name FROM stations JOIN trips"
        " ON stations.station_id = trips.origin_station_id"
        " WHERE stations.station_name = 'Leeds Central'"
    )
    one = (
        "SELECT trips.trip_date FROM trips JOIN stations"
        " ON trips.origin_station_id = stations.station_id"
        " WHERE stations.station_name = 'Leeds Central'"
    )
    assert one_row_for_two_roles(both, "sqlite", index) == 1
    assert one_row_for_two_roles(one, "sqlite", index) == 0


# ------------------------------------------------------------------ the role joins on every dialect

ROLE_CASES = [
    ("List the trip dates of trips from Leeds Central.", [("2024-01-01",), ("2024-01-03",)]),
    ("List the dates of trips from Leeds Central to York.", [("2024-01-01",)]),
]


@pytest.mark.parametrize(("question", "gold"), ROLE_CASES)
def test_the_role_joins_run_on_duckdb(
    railway: tuple[SchemaSnapshot, sqlite3.Connection], question: str, gold: list[tuple[str]]
) -> None:
    snapshot, _ = railway
    sql = generate(snapshot, question, "duckdb").sql
    assert "origin_station_id" in sql
    conn = duckdb_loaded(DDL, ROWS)
    try:
        assert sorted(plain(conn.execute(sql).fetchall())) == gold
    finally:
        conn.close()


@pytest.mark.parametrize(("question", "gold"), ROLE_CASES)
def test_the_role_joins_run_on_postgresql(
    railway: tuple[SchemaSnapshot, sqlite3.Connection],
    request: pytest.FixtureRequest,
    question: str,
    gold: list[tuple[str]],
) -> None:
    snapshot, _ = railway
    sql = generate(snapshot, question, "postgresql").sql
    sqlglot.parse_one(sql, read="postgres")
    with postgres_loaded(request, DDL, ROWS) as conn:
        rows = [tuple(r) for r in conn.execute(sqlalchemy.text(sql)).fetchall()]
    assert sorted(plain(rows)) == gold


def test_a_filter_holding_both_roles_is_split_per_key(
    railway: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, _ = railway
    index = schema_index(snapshot)
    question = "How many trips go from York to Hull Paragon?"
    intent = parse(question, index)
    split, settled = split_roles(intent, index, tokenise(question))
    assert settled == 2
    vias = sorted(
        (f.column.via.name, f.values[0])
        for f in split.filters
        if isinstance(f.column, Measure) and f.column.via is not None
    )
    assert vias == [("destination_station_id", "Hull Paragon"), ("origin_station_id", "York")]
    # one role only: the join planner reads it, nothing is split
    single = "List the trip dates of trips from Leeds Central."
    assert split_roles(parse(single, index), index, tokenise(single))[1] == 0
