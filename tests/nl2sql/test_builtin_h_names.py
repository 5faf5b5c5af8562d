"""Names the schema's sampled values never showed ("claims for Nordic Freight", "shipments
packed by Omar Larsen"), on a small freight schema written here: the name is the label of the
table the rows are attached to, compared ignoring case (first and last name both for a person),
said so in the explanation, with a little less confidence; two tables it could name are never
guessed between.

Each answer is checked by running it and the hand-written gold SQL on the same database
(SQLite, DuckDB and PostgreSQL); MySQL's rendering is checked as text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy
import sqlglot

from backend.connections.introspection import SAMPLE_MAX_DISTINCT
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.confidence import assess
from backend.nl2sql.evaluation import results_match
from tests.nl2sql.gym import (
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows
from tests.nl2sql.test_builtin_spval import without_value_index

FREIGHT_DDL = """
CREATE TABLE carriers (
    carrier_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT NOT NULL
);
CREATE TABLE dispatchers (
    dispatcher_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL
);
CREATE TABLE shipments (
    shipment_id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers(carrier_id),
    packed_by INTEGER NOT NULL REFERENCES dispatchers(dispatcher_id),
    weight_kg REAL NOT NULL
);
CREATE TABLE claims (
    claim_id INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers(carrier_id),
    amount REAL NOT NULL
);
"""
PEOPLE = 3 * SAMPLE_MAX_DISTINCT
"""More carriers and dispatchers than are sampled: their names are not in the snapshot."""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    carriers = [(1, "Nordic Freight", "NO"), (2, "Baltic Lines", "LV"), (3, "Zephyr Cargo", "DK")]
    carriers += [(i, f"Carrier {i:03d}", "BE") for i in range(4, PEOPLE + 1)]
    dispatchers = [(1, "Omar", "Larsen"), (2, "Omar", "Berg"), (3, "Ines", "Larsen")] + [
        (i, f"First{i}", f"Last{i}") for i in range(4, PEOPLE + 1)
    ]
    shipments = [
        (i, (i * 7) % PEOPLE + 1, (i * 11) % PEOPLE + 1, float(10 + i % 40)) for i in range(1, 1200)
    ]
    claims = [(i, (i * 7) % PEOPLE + 1, float(100 + (i * 37) % 900)) for i in range(1, 600)]
    return {
        "carriers": carriers,
        "dispatchers": dispatchers,
        "shipments": shipments,
        "claims": claims,
    }


@pytest.fixture(scope="module")
def freight_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_loaded(
        tmp_path_factory.mktemp("freight") / "freight.sqlite", FREIGHT_DDL, _tables()
    )


@pytest.fixture(scope="module")
def freight(freight_path: Path) -> SchemaSnapshot:
    # names past what the value index holds: the reading of names places them
    return without_value_index(sqlite_snapshot(freight_path, "freight"))


@pytest.fixture(scope="module")
def freight_db(freight_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{freight_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_the_names_are_not_in_the_snapshot(freight: SchemaSnapshot) -> None:
    carriers = next(t for t in freight.tables if t.name == "carriers")
    name = next(c for c in carriers.columns if c.name == "name")
    assert not name.sample_values  # otherwise this file would test the sampled-value linking


UNSEEN = [
    # the one table claims are attached to that names its rows
    ("Total claim amount for Nordic Freight",
     "SELECT SUM(cl.amount) FROM claims cl JOIN carriers c ON c.carrier_id = cl.carrier_id"
     " WHERE c.name = 'Nordic Freight'"),
    # case in the question need not be the stored case
    ("How many claims of NORDIC FREIGHT are there?",
     "SELECT COUNT(*) FROM claims cl JOIN carriers c ON c.carrier_id = cl.carrier_id"
     " WHERE c.name = 'Nordic Freight'"),
    ("List the claims of Zephyr Cargo",
     "SELECT cl.claim_id FROM claims cl JOIN carriers c ON c.carrier_id = cl.carrier_id"
     " WHERE c.name = 'Zephyr Cargo'"),
    ("Total claim amount for 'baltic lines'",
     "SELECT SUM(cl.amount) FROM claims cl JOIN carriers c ON c.carrier_id = cl.carrier_id"
     " WHERE c.name = 'Baltic Lines'"),
    # the verb before "by" names the reference ("packed_by"); a person's first and last name
    ("How many shipments were packed by Omar Larsen?",
     "SELECT COUNT(*) FROM shipments s JOIN dispatchers d ON d.dispatcher_id = s.packed_by"
     " WHERE d.first_name = 'Omar' AND d.last_name = 'Larsen'"),
    ("Total weight of shipments packed by OMAR LARSEN",
     "SELECT SUM(s.weight_kg) FROM shipments s JOIN dispatchers d"
     " ON d.dispatcher_id = s.packed_by WHERE d.first_name = 'Omar' AND d.last_name = 'Larsen'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), UNSEEN)
def test_an_unseen_name_is_the_label_of_the_attached_table(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert all(v is not None for r in rows(freight_db, gold) for v in r), "a vacuous gold"
    answer = generate(freight, question)
    assert_same_answer(freight_db, answer.sql, gold)
    assert "ignoring case" in answer.explanation
    assert "not seen in the sampled data" in answer.explanation


def test_an_unseen_name_lowers_the_confidence_a_little(freight: SchemaSnapshot) -> None:
    answer = generate(freight, "Total claim amount for Nordic Freight")
    assert answer.confidence is not None
    clean = {"content_words": 4.0, "links": 3.0, "strong_links": 3.0, "subject_named": 1.0}
    lowered = assess({**clean, "unseen_names": 1.0})
    assert lowered.confidence < assess(clean).confidence
    assert assess(clean).confidence - lowered.confidence < 0.15  # a little, not a veto
    assert any("sampled values" in reason for reason in lowered.reasons)


def test_two_tables_the_name_could_label_are_offered_not_guessed(
    freight: SchemaSnapshot,
) -> None:
    # shipments are attached to a carrier and to a dispatcher: "of" does not say which
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(freight, "How many shipments of Nordic Freight?")
    offered = " ".join(s.text for s in caught.value.suggestions)
    assert "carriers.name" in offered
    assert "dispatchers.first_name + dispatchers.last_name" in offered


def test_one_word_that_could_be_a_person_is_not_read_as_the_other_table_s_name(
    freight: SchemaSnapshot,
) -> None:
    # a dispatcher's first or last name, or a carrier's name: not guessed
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(freight, "How many shipments for Omar?")
    assert "dispatchers" in " ".join(s.text for s in caught.value.suggestions)


def test_a_person_named_after_their_table_compares_first_and_last_name(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection
) -> None:
    # was `first_name = 'Omar Larsen'`, which no row has
    sql = generate(freight, "How many shipments were packed by the dispatcher Omar Larsen?").sql
    gold = (
        "SELECT COUNT(*) FROM shipments s JOIN dispatchers d ON d.dispatcher_id = s.packed_by"
        " WHERE d.first_name = 'Omar' AND d.last_name = 'Larsen'"
    )
    assert_same_answer(freight_db, sql, gold)


def test_a_name_that_is_a_schema_word_or_unattached_is_still_declined(
    freight: SchemaSnapshot,
) -> None:
    # no "of"/"for"/"by" before it: nothing says which rows the name belongs to
    with pytest.raises(QuestionNotUnderstood):
        generate(freight, "How many claims Zephyr Cargo?")


_DIALECT_QUESTIONS = [q for q, _ in UNSEEN]


@pytest.fixture(scope="module")
def freight_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(FREIGHT_DDL, _tables())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def freight_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, FREIGHT_DDL, _tables()) as conn:
        yield conn


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_duckdb_compares_the_name_ignoring_case(
    freight: SchemaSnapshot,
    freight_db: sqlite3.Connection,
    freight_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = rows(freight_db, generate(freight, question).sql)
    sql = generate(freight, question, dialect="duckdb").sql
    got = [tuple(r) for r in freight_duckdb.execute(sql).fetchall()]
    assert results_match(plain(expected), plain(got), ordered=False), sql


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_postgres_compares_the_name_ignoring_case(
    freight: SchemaSnapshot,
    freight_db: sqlite3.Connection,
    freight_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(freight_db, generate(freight, question).sql)
    sql = generate(freight, question, dialect="postgresql").sql
    got = [tuple(r) for r in freight_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(plain(expected), plain(got), ordered=False), sql


def test_mysql_rendering_lowers_both_sides(freight: SchemaSnapshot) -> None:
    sql = generate(freight, "Total claim amount for Nordic Freight", dialect="mysql").sql
    tree = sqlglot.parse_one(sql, read="mysql")
    lowered = [str(node.sql(dialect="mysql")) for node in tree.find_all(sqlglot.exp.Lower)]
    assert "LOWER(carriers.`name`)" in lowered
    assert "LOWER('Nordic Freight')" in lowered
