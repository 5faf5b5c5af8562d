"""The join plan, on a small shipping schema written here (ports, ships, voyages with an origin
and a destination port, port inspections, sailors):

* a key's role named by the question picks the join ("voyages with Porto as their
  destination": `destination_port_id`, not `origin_port_id`), and is answered;
* two join paths that fit the question equally well are declined, each offered as a
  suggestion with its SQL ("ships in ports of Greece": inspected there, or sailed there?);
* a table the question names on one of two paths picks that path ("ships inspected in
  Piraeus": through `inspections`);
* a SUM, AVG or COUNT(*) over joined rows that repeat the measured rows only to filter them
  is computed over the measured rows once each (a semi-join), and is refused when the
  repeating rows are added up too ("total tonnage and total cargo of each ship").

Each answer is checked by running it and a hand-written gold query on the same SQLite
database; the semi-join shape also runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.joinplan import related, stem
from tests.nl2sql.gym import (
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

SHIPPING_DDL = """
CREATE TABLE ports (
    port_id INTEGER PRIMARY KEY,
    port_name TEXT NOT NULL,
    country TEXT NOT NULL
);
CREATE TABLE ships (
    ship_id INTEGER PRIMARY KEY,
    ship_name TEXT NOT NULL,
    tonnage REAL NOT NULL,
    built_year INTEGER NOT NULL
);
CREATE TABLE voyages (
    voyage_id INTEGER PRIMARY KEY,
    ship_id INTEGER NOT NULL REFERENCES ships(ship_id),
    origin_port_id INTEGER NOT NULL REFERENCES ports(port_id),
    destination_port_id INTEGER NOT NULL REFERENCES ports(port_id),
    cargo_tons REAL NOT NULL
);
CREATE TABLE inspections (
    inspection_id INTEGER PRIMARY KEY,
    ship_id INTEGER NOT NULL REFERENCES ships(ship_id),
    port_id INTEGER NOT NULL REFERENCES ports(port_id),
    outcome TEXT NOT NULL
);
CREATE TABLE sailors (
    sailor_id INTEGER PRIMARY KEY,
    sailor_name TEXT NOT NULL,
    ship_id INTEGER NOT NULL REFERENCES ships(ship_id),
    rank TEXT NOT NULL
)
"""
RANKS = ["captain", "mate", "deckhand"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    ports = [
        (1, "Lisbon", "Portugal"),
        (2, "Porto", "Portugal"),
        (3, "Valencia", "Spain"),
        (4, "Genoa", "Italy"),
        (5, "Piraeus", "Greece"),
    ]
    ships = [(i, f"Vessel {i}", 1000.0 + 250 * i, 1990 + i) for i in range(1, 9)]
    voyages = [
        (i, i % 8 + 1, i % 3 + 1, i % 4 + 2, 100.0 + (i * 37) % 900)
        for i in range(1, 41)
        if i % 3 + 1 != i % 4 + 2  # (not from a port to itself)
    ]
    inspections = [
        (i, (i * 3) % 8 + 1, (i * 7) % 5 + 1, "passed" if i % 3 else "failed") for i in range(1, 21)
    ]
    # several captains on some ships, none on others: a join to them repeats a ship's row
    sailors = [(i, f"Sailor {i}", (i * 5) % 6 + 1, RANKS[i % 3]) for i in range(1, 31)]
    return {
        "ports": ports,
        "ships": ships,
        "voyages": voyages,
        "inspections": inspections,
        "sailors": sailors,
    }


@pytest.fixture(scope="module")
def shipping_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shipping") / "shipping.sqlite"
    return sqlite_loaded(path, SHIPPING_DDL, _tables())


@pytest.fixture(scope="module")
def shipping(shipping_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(shipping_path, "shipping")


@pytest.fixture(scope="module")
def shipping_db(shipping_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{shipping_path}?mode=ro", uri=True)
    yield conn
    conn.close()


ROLES = [
    ("How many voyages had Porto as their destination?",
     "SELECT COUNT(*) FROM voyages v JOIN ports p ON p.port_id = v.destination_port_id"
     " WHERE p.port_name = 'Porto'"),
    ("How many voyages have their origin in Porto?",
     "SELECT COUNT(*) FROM voyages v JOIN ports p ON p.port_id = v.origin_port_id"
     " WHERE p.port_name = 'Porto'"),
    ("List the ship names and the origin port names of their voyages.",
     "SELECT s.ship_name, p.port_name FROM voyages v JOIN ships s ON s.ship_id = v.ship_id"
     " JOIN ports p ON p.port_id = v.origin_port_id"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ROLES)
def test_the_role_the_question_names_picks_the_key_joined_on(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection, question: str, gold: str
) -> None:
    """Before: declined (two keys refer to `ports`; one was picked, a guess) even where the
    question names the role of one of them."""
    assert_same_answer(shipping_db, generate(shipping, question).sql, gold)


def test_a_role_the_question_does_not_name_is_declined_with_both_joins(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection
) -> None:
    with pytest.raises(QuestionNotUnderstood, match="more than one way") as caught:
        # (not "went to Portugal": "to" before a name is the destination, see test_builtin_spcols)
        generate(shipping, "How many voyages involved Portugal?")
    offered = [s.sql for s in caught.value.suggestions if s.sql]
    assert len(offered) == 2
    assert {"origin_port_id" in sql for sql in offered} == {True, False}
    answers = {rows(shipping_db, sql)[0] for sql in offered}
    assert len(answers) == 2, "the two readings answer differently: neither may be guessed"


def test_equally_good_paths_through_different_tables_are_declined(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection
) -> None:
    """Ships reach ports through inspections and through voyages (two keys): before, the
    first path found was taken silently."""
    with pytest.raises(QuestionNotUnderstood, match="more than one way") as caught:
        generate(shipping, "Which ships are in ports of Greece?")
    offered = [s.sql for s in caught.value.suggestions if s.sql]
    assert any("inspections" in sql for sql in offered)
    assert any("voyages" in sql for sql in offered)
    for sql in offered:
        rows(shipping_db, sql)  # each suggestion runs


def test_a_table_the_question_names_on_one_path_picks_that_path(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection
) -> None:
    sql = generate(shipping, "Which ships were inspected in Piraeus?").sql
    assert "voyages" not in sql
    assert_same_answer(
        shipping_db,
        sql,
        "SELECT s.ship_name FROM ships s JOIN inspections i ON i.ship_id = s.ship_id"
        " JOIN ports p ON p.port_id = i.port_id WHERE p.port_name = 'Piraeus'",
    )


FANOUT = [
    # a ship with three captains counted three times before (its tonnage in the average 3x)
    ("What is the average tonnage of ships with a captain?",
     "SELECT AVG(tonnage) FROM ships WHERE ship_id IN"
     " (SELECT ship_id FROM sailors WHERE rank = 'captain')"),
    ("What is the total tonnage of ships that have deckhands?",
     "SELECT SUM(tonnage) FROM ships WHERE ship_id IN"
     " (SELECT ship_id FROM sailors WHERE rank = 'deckhand')"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), FANOUT)
def test_an_aggregate_over_rows_a_join_repeats_counts_each_row_once(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection, question: str, gold: str
) -> None:
    joined = (
        "SELECT AVG(s.tonnage), SUM(s.tonnage) FROM ships s"
        " JOIN sailors c ON c.ship_id = s.ship_id WHERE c.rank IN ('captain', 'deckhand')"
    )
    once = "SELECT AVG(tonnage), SUM(tonnage) FROM ships WHERE ship_id IN" + (
        " (SELECT ship_id FROM sailors WHERE rank IN ('captain', 'deckhand'))"
    )
    assert rows(shipping_db, joined) != rows(shipping_db, once), "the data must repeat ships"
    sql = generate(shipping, question).sql
    assert_same_answer(shipping_db, sql, gold)
    assert " IN (SELECT" in sql


def test_adding_up_a_parent_beside_its_children_is_declined(shipping: SchemaSnapshot) -> None:
    """SUM(ships.tonnage) next to SUM(voyages.cargo_tons) per ship: each ship's tonnage would
    be added once per voyage."""
    with pytest.raises(QuestionNotUnderstood, match="once per related row"):
        generate(shipping, "What is the total tonnage and total cargo tons of each ship?")


def test_a_share_of_rows_that_a_join_repeats_is_declined(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection
) -> None:
    """Before: the share of *sailors* who are captains, over ships joined to their sailors,
    answered as the share of ships."""
    per_sailor = (
        "SELECT 100.0 * SUM(CASE WHEN c.rank = 'captain' THEN 1 ELSE 0 END) / COUNT(*)"
        " FROM ships s JOIN sailors c ON c.ship_id = s.ship_id"
    )
    per_ship = (
        "SELECT 100.0 * SUM(ship_id IN (SELECT ship_id FROM sailors WHERE rank = 'captain'))"
        " / COUNT(*) FROM ships"
    )
    assert rows(shipping_db, per_sailor) != rows(shipping_db, per_ship)
    with pytest.raises(QuestionNotUnderstood, match="once per related row"):
        generate(shipping, "What percentage of ships have a captain?")


def test_the_semi_join_runs_on_duckdb_and_postgresql(
    shipping: SchemaSnapshot, shipping_db: sqlite3.Connection, request: pytest.FixtureRequest
) -> None:
    question, gold = FANOUT[0]
    expected = plain(rows(shipping_db, gold))
    duck = duckdb_loaded(SHIPPING_DDL, _tables())
    try:
        sql = generate(shipping, question, dialect="duckdb").sql
        assert plain([tuple(r) for r in duck.execute(sql).fetchall()]) == expected
    finally:
        duck.close()
    with postgres_loaded(request, SHIPPING_DDL, _tables()) as conn:
        import sqlalchemy  # noqa: PLC0415

        sql = generate(shipping, question, dialect="postgresql").sql
        got = [tuple(r) for r in conn.execute(sqlalchemy.text(sql)).fetchall()]
        assert plain(got) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("advise", "advisor", True),
        ("departing", "departure", True),
        ("perform", "performance", True),
        ("start", "source", True),
        ("win", "winner", True),
        ("order", "origin", False),
        ("port", "sport", False),
    ],
)
def test_words_related_for_naming_a_table_or_a_role(a: str, b: str, expected: bool) -> None:
    assert related(a, b) is expected
    assert stem("inspected") == stem("inspections")


# ---------------------------------------------------------------- joins no key declares

HARBOUR_DDL = """
CREATE TABLE berths (code TEXT PRIMARY KEY, quay TEXT NOT NULL, depth REAL NOT NULL);
CREATE TABLE cargo_types (
    cargo_type_id INTEGER PRIMARY KEY, code TEXT NOT NULL, description TEXT NOT NULL
);
CREATE TABLE pilots (employee_id INTEGER PRIMARY KEY, pilot_name TEXT NOT NULL, licence TEXT);
CREATE TABLE stevedores (
    employee_id INTEGER PRIMARY KEY, stevedore_name TEXT NOT NULL, crane TEXT NOT NULL
);
CREATE TABLE berth_bookings (
    booking_id INTEGER PRIMARY KEY, berth_code TEXT NOT NULL, vessel TEXT NOT NULL
)
"""
HARBOUR = {
    "berths": [("B1", "North", 12.0), ("G1", "South", 9.5), ("C2", "East", 14.0)],
    # a cargo type's own code, which happens to look like a berth's
    "cargo_types": [(1, "G1", "Grain"), (2, "B1", "Bauxite"), (3, "C2", "Coal")],
    "pilots": [(1, "Ines", "A"), (2, "Tomas", "B"), (3, "Rui", "A")],
    # numbered by their own employer: stevedore 1 is not pilot 1
    "stevedores": [(1, "Marta", "crane 1"), (2, "Joao", "crane 2"), (4, "Luis", "crane 3")],
    "berth_bookings": [(1, "B1", "Aurora"), (2, "B1", "Boreas"), (3, "C2", "Cirrus")],
}


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory) -> tuple[SchemaSnapshot, Path]:
    path = tmp_path_factory.mktemp("harbour") / "harbour.sqlite"
    sqlite_loaded(path, HARBOUR_DDL, HARBOUR)
    return sqlite_snapshot(path, "harbour"), path


@pytest.mark.parametrize(
    "question",
    [
        "Which quay is the cargo type Grain at?",  # cargo_types.code is not a berth's code
        "Which stevedores are pilots?",  # two employers' employee_id: no reference
    ],
)
def test_a_key_name_two_tables_share_is_not_read_as_a_join(
    harbour: tuple[SchemaSnapshot, Path], question: str
) -> None:
    """Before: answered at confidence 0.82 through `cargo_types.code = berths.code` and
    `stevedores.employee_id = pilots.employee_id`, joins no key declares and the names do not
    imply (a plain `code`; a key of both tables that names neither)."""
    with pytest.raises(QuestionNotUnderstood, match="no foreign-key path"):
        generate(harbour[0], question)


def test_a_reference_the_names_imply_still_joins(harbour: tuple[SchemaSnapshot, Path]) -> None:
    snapshot, path = harbour
    sql = generate(snapshot, "List the vessels of berth bookings at the North quay.").sql
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert_same_answer(
            conn,
            sql,
            "SELECT b.vessel FROM berth_bookings b JOIN berths ON berths.code = b.berth_code"
            " WHERE berths.quay = 'North'",
        )
    finally:
        conn.close()


AGENCY_DDL = """
CREATE TABLE offices (
    office_id INTEGER PRIMARY KEY, office_name TEXT NOT NULL, office_phone TEXT NOT NULL
);
CREATE TABLE agents (
    agent_id INTEGER PRIMARY KEY, agent_name TEXT NOT NULL, office_phone TEXT NOT NULL,
    office_id INTEGER NOT NULL REFERENCES offices(office_id)
)
"""
AGENCY = {
    "offices": [(1, "Harbour", "555-0100"), (2, "Station", "555-0200")],
    "agents": [(1, "Rosa", "555-1111", 1), (2, "Ivo", "555-2222", 2), (3, "Ana", "555-3333", 1)],
}


def test_a_column_of_the_rows_asked_about_is_read_there_not_through_a_join(
    tmp_path: Path,
) -> None:
    """Before: `offices.office_phone` through a join to offices, which the question never
    names, though the agent's row has an `office_phone` of its own."""
    path = sqlite_loaded(tmp_path / "agency.sqlite", AGENCY_DDL, AGENCY)
    sql = generate(sqlite_snapshot(path, "agency"), "What is the phone of the agent Rosa?").sql
    assert "JOIN" not in sql
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert_same_answer(conn, sql, "SELECT office_phone FROM agents WHERE agent_name = 'Rosa'")
    finally:
        conn.close()
