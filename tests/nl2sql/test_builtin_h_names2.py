"""Names and the rows they point to, on a small veterinary practice written here (not the
dev sets' domains): a reference key the answer would show bare is shown as the referred row's
label (a table that refers to itself joined again under an alias), and a proper name the
sampled values never showed is placed by the words around it (a verb that names a key, a
possessive, the column asked about, "at"/"to"/"does ... have"); two tables it fits equally are
offered, not guessed between.

Each answer is checked by running it and the hand-written gold SQL on the same database
(SQLite, and DuckDB and PostgreSQL for the new shapes: aliased self-joins, comparisons through
a reference's own join)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy

from backend.connections.introspection import SAMPLE_MAX_DISTINCT
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
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

CLINIC_DDL = """
CREATE TABLE clinics (
    clinic_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL
);
CREATE TABLE vets (
    vet_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    email TEXT NOT NULL,
    hired_on TEXT NOT NULL,
    salary REAL NOT NULL,
    clinic_id INTEGER NOT NULL REFERENCES clinics(clinic_id),
    supervisor_id INTEGER REFERENCES vets(vet_id)
);
CREATE TABLE owners (
    owner_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL
);
CREATE TABLE pets (
    pet_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    species TEXT NOT NULL,
    owner_id INTEGER NOT NULL REFERENCES owners(owner_id),
    clinic_id INTEGER NOT NULL REFERENCES clinics(clinic_id)
);
CREATE TABLE visits (
    visit_id INTEGER PRIMARY KEY,
    pet_id INTEGER NOT NULL REFERENCES pets(pet_id),
    treated_by INTEGER REFERENCES vets(vet_id),
    visited_on TEXT NOT NULL,
    fee REAL NOT NULL
);
CREATE TABLE insurers (
    insurer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE policies (
    policy_id INTEGER PRIMARY KEY,
    insurer_id INTEGER NOT NULL REFERENCES insurers(insurer_id),
    started_on TEXT NOT NULL
);
CREATE TABLE claims (
    claim_id INTEGER PRIMARY KEY,
    policy_id INTEGER NOT NULL REFERENCES policies(policy_id),
    amount REAL NOT NULL
);
"""
MANY = 3 * SAMPLE_MAX_DISTINCT
"""More rows than are sampled: names are not in the snapshot."""


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    clinics = [(1, "Cedar Point", "Leeds"), (2, "Maple Grove", "York")]
    clinics += [(i, f"Clinic {i:03d}", "Hull") for i in range(3, MANY + 1)]
    vets: list[tuple[Any, ...]] = [
        (1, "Nora Quist", "nora@vets.example", "2015-03-01", 91000.0, 1, None),
        (2, "Omar Lind", "omar@vets.example", "2016-05-10", 78000.0, 1, 1),
        (3, "Ada Brook", "ada@vets.example", "2014-01-20", 80000.0, 2, 1),
        (4, "Ravi Shah", "ravi@vets.example", "2019-09-09", 83000.0, 2, 3),
    ]
    vets += [
        (i, f"Vet {i:03d}", f"v{i}@vets.example", f"20{10 + i % 12:02d}-02-02",
         60000.0 + i * 100, (i % 5) + 1, (i % 3) + 2)
        for i in range(5, MANY + 1)
    ]  # fmt: skip
    owners = [(1, "Nora", "Quist", "nq@home.example"), (2, "Lea", "Park", "lp@home.example")]
    owners += [(i, f"First{i}", f"Last{i}", f"o{i}@home.example") for i in range(3, MANY + 1)]
    pets = [
        (i, f"Pet{i}", "cat" if i % 2 else "dog", (i % MANY) + 1, (i % 7) + 1)
        for i in range(1, 300)
    ]
    visits = [
        (i, (i % 299) + 1, None if i % 13 == 0 else (i % 9) + 1, f"2024-{i % 12 + 1:02d}-10",
         float(40 + i % 60))
        for i in range(1, 900)
    ]  # fmt: skip
    insurers = [(1, "Blue Harbour Mutual"), (2, "Green Field Cover")]
    insurers += [(i, f"Insurer {i:03d}") for i in range(3, MANY + 1)]
    policies = [(i, (i % MANY) + 1, f"2023-{i % 12 + 1:02d}-01") for i in range(1, 200)]
    claims = [(i, (i % 199) + 1, float(100 + i % 300)) for i in range(1, 500)]
    return {
        "clinics": clinics,
        "vets": vets,
        "owners": owners,
        "pets": pets,
        "visits": visits,
        "insurers": insurers,
        "policies": policies,
        "claims": claims,
    }


@pytest.fixture(scope="module")
def clinic_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sqlite_loaded(tmp_path_factory.mktemp("clinic") / "clinic.sqlite", CLINIC_DDL, _tables())


@pytest.fixture(scope="module")
def clinic(clinic_path: Path) -> SchemaSnapshot:
    # names past what the value index holds: the reading of names places them
    return without_value_index(sqlite_snapshot(clinic_path, "clinic"))


@pytest.fixture(scope="module")
def clinic_db(clinic_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{clinic_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_the_names_are_not_in_the_snapshot(clinic: SchemaSnapshot) -> None:
    for table, column in (("vets", "full_name"), ("clinics", "name"), ("owners", "last_name")):
        info = next(t for t in clinic.tables if t.name == table)
        assert not next(c for c in info.columns if c.name == column).sample_values


REFERRED = [
    # a table that refers to itself: grouped by the supervisor's row, shown by name
    ("How many vets report to each supervisor?",
     "SELECT s.full_name, COUNT(*) FROM vets v JOIN vets s ON s.vet_id = v.supervisor_id"
     " GROUP BY s.vet_id, s.full_name"),
    # rows listed beside the name of the row they refer to
    ("List each vet alongside the name of their supervisor.",
     "SELECT v.full_name, s.full_name FROM vets v JOIN vets s ON s.vet_id = v.supervisor_id"),
]  # fmt: skip

PLACED = [
    # a verb after the name names the reference key (`treated_by`)
    ("How many visits did Nora Quist treat?",
     "SELECT COUNT(*) FROM visits v JOIN vets t ON t.vet_id = v.treated_by"
     " WHERE t.full_name = 'Nora Quist'"),
    # a possessive: the one table with a salary
    ("What is Omar Lind's salary?", "SELECT salary FROM vets WHERE full_name = 'Omar Lind'"),
    # the column asked of the rows, beside the name
    ("When was Ada Brook hired?", "SELECT hired_on FROM vets WHERE full_name = 'Ada Brook'"),
    # "at": the one row every vet must refer to
    ("List the vets at Cedar Point",
     "SELECT v.full_name FROM vets v JOIN clinics c ON c.clinic_id = v.clinic_id"
     " WHERE c.name = 'Cedar Point'"),
    # two steps away: claims refer to policies (no name of their own), policies to insurers
    ("How many claims does Blue Harbour Mutual have?",
     "SELECT COUNT(*) FROM claims c JOIN policies p ON p.policy_id = c.policy_id"
     " JOIN insurers i ON i.insurer_id = p.insurer_id WHERE i.name = 'Blue Harbour Mutual'"),
    # "report to": the row of the same table the superior key points to
    ("Which vets report to Nora Quist?",
     "SELECT v.full_name FROM vets v JOIN vets s ON s.vet_id = v.supervisor_id"
     " WHERE s.full_name = 'Nora Quist'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), REFERRED + PLACED)
def test_names_and_the_rows_they_point_to(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert all(v is not None for r in rows(clinic_db, gold) for v in r), "a vacuous gold"
    assert_same_answer(clinic_db, generate(clinic, question).sql, gold)


def test_a_referred_row_is_shown_by_name_not_by_its_key(clinic: SchemaSnapshot) -> None:
    answer = generate(clinic, "How many vets report to each supervisor?")
    assert "supervisor_id AS" not in answer.sql and "AS supervisor" in answer.sql
    assert "supervisor_id refers to" in answer.explanation


def test_asking_for_the_key_keeps_the_key(
    clinic: SchemaSnapshot, clinic_db: sqlite3.Connection
) -> None:
    answer = generate(clinic, "How many vets are there for each supervisor id?")
    gold = "SELECT supervisor_id, COUNT(*) FROM vets GROUP BY supervisor_id"
    assert_same_answer(clinic_db, answer.sql, gold)


def test_a_name_that_fits_two_tables_is_offered_not_guessed(clinic: SchemaSnapshot) -> None:
    # a vet and an owner both have an email (and a Nora Quist is both)
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(clinic, "What is Nora Quist's email?")
    offered = " ".join(s.text for s in caught.value.suggestions)
    assert "vets.full_name" in offered
    assert "owners.first_name + owners.last_name" in offered


def test_two_required_references_are_offered_not_guessed(clinic: SchemaSnapshot) -> None:
    # every pet has an owner and a clinic: "does Maple Grove have" names either
    with pytest.raises(QuestionNotUnderstood) as caught:
        generate(clinic, "How many pets does Maple Grove have?")
    offered = " ".join(s.text for s in caught.value.suggestions)
    assert "clinics.name" in offered and "owners.first_name" in offered


def test_a_name_of_someone_else_s_superior_is_not_read_as_one_s_own(
    clinic: SchemaSnapshot,
) -> None:
    # two steps up the chain: not the vets' own supervisor
    with pytest.raises(QuestionNotUnderstood):
        generate(clinic, "Which vets report to someone who reports to Nora Quist?")


_DIALECT_QUESTIONS = [q for q, _ in REFERRED] + [
    "Which vets report to Nora Quist?",
    "How many visits did Nora Quist treat?",
]


@pytest.fixture(scope="module")
def clinic_duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb_loaded(CLINIC_DDL, _tables())
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def clinic_postgres(request: pytest.FixtureRequest) -> Iterator[sqlalchemy.Connection]:
    with postgres_loaded(request, CLINIC_DDL, _tables()) as conn:
        yield conn


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_duckdb_runs_the_referred_joins(
    clinic: SchemaSnapshot,
    clinic_db: sqlite3.Connection,
    clinic_duckdb: duckdb.DuckDBPyConnection,
    question: str,
) -> None:
    expected = rows(clinic_db, generate(clinic, question).sql)
    assert expected
    sql = generate(clinic, question, dialect="duckdb").sql
    got = [tuple(r) for r in clinic_duckdb.execute(sql).fetchall()]
    assert results_match(plain(expected), plain(got), ordered=False), sql


@pytest.mark.parametrize("question", _DIALECT_QUESTIONS)
def test_postgres_runs_the_referred_joins(
    clinic: SchemaSnapshot,
    clinic_db: sqlite3.Connection,
    clinic_postgres: sqlalchemy.Connection,
    question: str,
) -> None:
    expected = rows(clinic_db, generate(clinic, question).sql)
    sql = generate(clinic, question, dialect="postgresql").sql
    got = [tuple(r) for r in clinic_postgres.execute(sqlalchemy.text(sql))]
    assert results_match(plain(expected), plain(got), ordered=False), sql
