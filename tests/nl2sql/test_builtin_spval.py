"""Values the samples never showed, placed by the snapshot's value index, on a small veterinary
practice written here (owners named by first and last name in many towns, their pets of many
breeds, vets with a home town, visits):

* the index holds the distinct values of text columns with too many of them to be samples
  (towns, breeds, people's names), within a byte budget per column and per schema; values
  with quotes, NUL characters or thousands of characters never break it or the snapshot;
* "how many owners live in Coeur d'Alene" compares `owners.town` with the value as stored
  (its apostrophe kept and quoted in the SQL);
* a value stored in two columns goes to the one whose table the question names, and without
  one, the question is declined with both columns as suggestions;
* "how many pets does Ada Quist own": a first and a last name stored in two columns;
* "vets who report to <a vet>" is not read as that vet's own row, and two values of one column
  for different rows ("from X to Y") are declined, not compared with one column at once.

Each answer is checked by running it and a hand-written gold query on the same SQLite
database; the SQL also runs on DuckDB and PostgreSQL, and PostgreSQL's introspection builds
the same index."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from backend.connections.introspection import introspect
from backend.connections.schemas import SchemaColumnRead
from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.connections.value_index import (
    INDEX_COLUMN_BYTES,
    INDEX_MAX_VALUE_LENGTH,
    INDEX_SCHEMA_BYTES,
    bound_schema_index,
    column_index,
    index_bytes,
)
from backend.nl2sql.engines.base import QuestionNotUnderstood
from tests.nl2sql.gym import (
    assert_same_answer,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

VET_DDL = """
CREATE TABLE owners (
    owner_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    town TEXT NOT NULL
);
CREATE TABLE vets (
    vet_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    home_town TEXT NOT NULL,
    country TEXT NOT NULL,
    supervisor_id INTEGER REFERENCES vets(vet_id)
);
CREATE TABLE pets (
    pet_id INTEGER PRIMARY KEY,
    pet_name TEXT NOT NULL,
    breed TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES owners(owner_id)
);
CREATE TABLE visits (
    visit_id INTEGER PRIMARY KEY,
    pet_id INTEGER NOT NULL REFERENCES pets(pet_id),
    vet_id INTEGER NOT NULL REFERENCES vets(vet_id),
    visited_on DATE NOT NULL,
    fee REAL NOT NULL,
    remark TEXT
)
"""

TOWNS = [
    f"{head}{tail}"
    for head in ("Ash", "Bram", "Cor", "Dun", "Elm", "Fen", "Gar")
    for tail in ("by", "ford", "holm", "wick", "stead", "moor", "ton", "vale", "mere", "ley")
]
TOWNS[3] = "Coeur d'Alene"
TOWNS[4] = "Lindqvist Harbour"
TOWNS[5] = 'Quay "Old" Flats; DROP TABLE owners --'
FIRST = [f"Fn{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(80)]
LAST = [f"Ln{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(80)]
FIRST[7], LAST[7] = "Ada", "Quist"
LAST[9] = "O'Neil"
COUNTRIES = ["Bangladesh", "Canada", "Italy", "Norway", "Japan"]
BREEDS = [f"Breed{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(60)]
BREEDS[2] = "Norwegian Forest"


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    owners = [(i + 1, FIRST[i], LAST[i], TOWNS[i % 70]) for i in range(80)]
    # vets' home towns: other words, except "Lindqvist Harbour", also an owners' town
    vets: list[tuple[Any, ...]] = [
        (i + 1, f"Vet {FIRST[(i * 7) % 80]} {LAST[(i * 3) % 80]}", f"Home{i:02d}", COUNTRIES[i % 5])
        for i in range(60)
    ]
    vets[9] = (10, "Vet Bo Ek", "Lindqvist Harbour", "Norway")
    vets = [(*v, None if v[0] <= 3 else 1 + v[0] % 3) for v in vets]
    pets = [(i + 1, f"Pet{i}", BREEDS[i % 60], i % 80 + 1) for i in range(160)]
    visits = [
        (i + 1, i % 160 + 1, i % 60 + 1, f"2024-{i % 12 + 1:02d}-{i % 27 + 1:02d}", 20.0 + i,
         ("x" * 5000 if i == 3 else "nul\x00inside" if i == 4 else f"remark {i}"))
        for i in range(300)
    ]  # fmt: skip
    return {"owners": owners, "vets": vets, "pets": pets, "visits": visits}


@pytest.fixture(scope="module")
def vet_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vet") / "vet.sqlite"
    return sqlite_loaded(path, VET_DDL, _tables())


@pytest.fixture(scope="module")
def vet(vet_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(vet_path, "vet")


@pytest.fixture(scope="module")
def vet_db(vet_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{vet_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def without_value_index(snapshot: SchemaSnapshot) -> SchemaSnapshot:
    """The snapshot as if its value index held none of the values (a large table's rows past
    the scan, a schema over its budget): what other tests use to read names never seen."""
    copy = snapshot.model_copy(deep=True)
    for table in copy.tables:
        for column in table.columns:
            column.indexed_values = None
    return copy


def _column(snapshot: SchemaSnapshot, table: str, column: str) -> ColumnInfo:
    info = snapshot.table(table)
    assert info is not None
    col = info.column(column)
    assert col is not None
    return col


# --- the index in the snapshot ---------------------------------------------------------------


def test_many_valued_text_columns_are_indexed_not_sampled(vet: SchemaSnapshot) -> None:
    town = _column(vet, "owners", "town")
    assert town.sample_values is None  # 70 towns: too many to be the column's categories
    assert town.indexed_values is not None
    assert "Coeur d'Alene" in town.indexed_values
    assert 'Quay "Old" Flats; DROP TABLE owners --' in town.indexed_values
    assert len(town.indexed_values) == 70
    assert _column(vet, "pets", "breed").indexed_values is not None
    assert _column(vet, "visits", "fee").indexed_values is None  # numbers are not indexed


def test_free_text_and_nul_never_reach_the_index(vet: SchemaSnapshot) -> None:
    remark = _column(vet, "visits", "remark")
    # a column holding a 5,000-character text is free text: not sampled, not indexed
    assert remark.sample_values is None
    assert remark.indexed_values is None
    assert column_index(["a\x00b", "x" * (INDEX_MAX_VALUE_LENGTH + 1), "  ok  ", None, b"raw"]) == [
        "ab",
        "ok",
    ]
    # the snapshot survives its JSON round trip (the schema cache stores it so)
    assert SchemaSnapshot.model_validate_json(vet.model_dump_json()) == vet


def test_the_cache_keeps_the_index_and_the_schema_api_does_not_show_it(
    vet: SchemaSnapshot,
) -> None:
    owners = vet.table("owners")
    assert owners is not None
    stored = TableInfo.model_validate(owners.model_dump(mode="json"))  # as the cache does
    assert stored.column("town") == owners.column("town")
    town = _column(vet, "owners", "town")
    shown = SchemaColumnRead(**town.model_dump(), hidden=False).model_dump(mode="json")
    assert "indexed_values" not in shown
    assert "Coeur d'Alene" not in json.dumps(shown)


def test_the_index_keeps_to_its_budgets() -> None:
    many = [f"value number {i:06d}" for i in range(20_000)]
    kept = column_index(many)
    assert 0 < len(kept) < len(many)
    assert sum(len(v.encode()) + 1 for v in kept) <= INDEX_COLUMN_BYTES
    assert kept == many[: len(kept)]  # in the order the scan met them
    columns = [
        ColumnInfo(name=f"c{i}", type="TEXT", indexed_values=column_index(many[i::100]))
        for i in range(100)
    ]
    table = TableInfo(name="wide", columns=columns)
    assert index_bytes(table.columns) > INDEX_SCHEMA_BYTES
    bound_schema_index(table.columns)
    assert 0 < index_bytes(table.columns) <= INDEX_SCHEMA_BYTES
    assert any(c.indexed_values for c in table.columns)


# --- the engine placing a value by the index ---------------------------------------------------

ANSWERS = [
    ("How many owners live in Coeur d'Alene?",
     "SELECT COUNT(*) FROM owners WHERE town = 'Coeur d''Alene'"),
    # beside "pets" the name would be a pet's own (`pet_name`), which the index knows it is not
    ("List the names of Norwegian Forest pets.",
     "SELECT pet_name FROM pets WHERE breed = 'Norwegian Forest'"),
    ("List the names of pets of owners in Coeur d'Alene.",
     "SELECT p.pet_name FROM pets p JOIN owners o ON o.owner_id = p.owner_id"
     " WHERE o.town = 'Coeur d''Alene'"),
    # the town named before the name is what is asked, not the name's column
    ("Which town does Ada Quist live in?",
     "SELECT town FROM owners WHERE first_name = 'Ada' AND last_name = 'Quist'"),
    # a word for a country's people: the country, not a vet's name beside "vets"
    ("How many Canadian vets are there?", "SELECT COUNT(*) FROM vets WHERE country = 'Canada'"),
    ("How many Bangladeshi vets are there?",
     "SELECT COUNT(*) FROM vets WHERE country = 'Bangladesh'"),
    ("How many owners live in Ashford or Brammoor?",
     "SELECT COUNT(*) FROM owners WHERE town IN ('Ashford', 'Brammoor')"),
    ("How many pets does Ada Quist own?",
     "SELECT COUNT(*) FROM pets p JOIN owners o ON o.owner_id = p.owner_id"
     " WHERE o.first_name = 'Ada' AND o.last_name = 'Quist'"),
    ("How many owners live in Lindqvist Harbour?",
     "SELECT COUNT(*) FROM owners WHERE town = 'Lindqvist Harbour'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ANSWERS)
def test_an_unsampled_value_is_compared_with_the_column_that_stores_it(
    vet: SchemaSnapshot, vet_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(vet_db, generate(vet, question).sql, gold)


def test_the_stored_value_keeps_its_apostrophe_in_the_sql(vet: SchemaSnapshot) -> None:
    sql = generate(vet, "How many owners live in Coeur d'Alene?").sql
    assert "'Coeur d''Alene'" in sql


@pytest.mark.parametrize("indexed", [True, False])
def test_a_name_keeps_its_apostrophe(
    vet: SchemaSnapshot, vet_db: sqlite3.Connection, indexed: bool
) -> None:
    """With the index or without it (a name past the scan), "O'Neil" is never "O Neil"."""
    schema = vet if indexed else without_value_index(vet)
    sql = generate(schema, "List the names of pets of owners whose last name is O'Neil.").sql
    assert "'O''Neil'" in sql
    gold = (
        "SELECT p.pet_name FROM pets p JOIN owners o ON o.owner_id = p.owner_id"
        " WHERE o.last_name = 'O''Neil'"
    )
    assert_same_answer(vet_db, sql, gold)


def test_a_value_in_two_columns_without_a_named_table_is_declined_with_both(
    vet: SchemaSnapshot,
) -> None:
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(vet, "How many visits involve Lindqvist Harbour?")
    suggestions = " ".join(s.text for s in caught.value.suggestions)
    assert "owners.town" in suggestions
    assert "vets.home_town" in suggestions


DECLINED = [
    # two values of one column for different rows: a contradiction if compared at once
    "How many pets moved from owners in Ashford to owners in Brammoor?",
    # the name is a row of `owners` and what is asked is the owners' own: how the vets or
    # visits the question also names come in is not said
    "Which town does Ada Quist of the vets live in?",
    "Which town did Ada Quist move to after the visits?",
]


@pytest.mark.parametrize("question", DECLINED)
def test_unsure_placements_are_declined(vet: SchemaSnapshot, question: str) -> None:
    with pytest.raises(QuestionNotUnderstood):
        generate(vet, question)


def test_a_name_after_report_to_is_not_the_rows_own(
    vet: SchemaSnapshot, vet_db: sqlite3.Connection
) -> None:
    """ "vets who report to Vet Bo Ek": the supervisor's name, never `full_name = ...`."""
    try:
        sql = generate(vet, "Which vets report to Vet Bo Ek?").sql
    except QuestionNotUnderstood:
        return
    got = vet_db.execute(sql).fetchall()
    assert ("Vet Bo Ek",) not in [tuple(r)[:1] for r in got]


# --- other dialects ------------------------------------------------------------------------------


def test_the_sql_runs_on_duckdb_and_postgresql_and_postgresql_is_indexed_alike(
    vet: SchemaSnapshot, vet_db: sqlite3.Connection, request: pytest.FixtureRequest
) -> None:
    question, gold = ANSWERS[0]
    expected = plain([tuple(r) for r in vet_db.execute(gold).fetchall()])
    tables = {k: [tuple(_no_nul(v) for v in r) for r in rows] for k, rows in _tables().items()}
    duck = duckdb_loaded(VET_DDL, tables)
    try:
        sql = generate(vet, question, dialect="duckdb").sql
        assert plain([tuple(r) for r in duck.execute(sql).fetchall()]) == expected
    finally:
        duck.close()
    with postgres_loaded(request, VET_DDL, tables) as conn:
        sql = generate(vet, question, dialect="postgresql").sql
        assert plain([tuple(r) for r in conn.execute(sqlalchemy.text(sql)).fetchall()]) == expected
        engine = conn.engine
        snapshot = introspect(engine, db_type="postgresql", database_name="vet")
        town = _column(snapshot, "owners", "town")
        assert town.indexed_values is not None
        assert sorted(town.indexed_values) == sorted(set(TOWNS))


def _no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: the other dialects get the value without it."""
    return value.replace("\x00", "") if isinstance(value, str) else value
