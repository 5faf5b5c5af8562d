"""Rankings by an action or an amount over related rows, on a small freight company's schema
written here (depots, clients named by a trading name, contracts, the bills of each contract,
drivers named by first and last name, deliveries):

* a verb before a superlative names the related rows that carry the action: "which three
  clients have we billed the most" adds up the bills' amount per client, two joins away;
  "which driver delivered the most" counts the deliveries each driver made;
* "the biggest client by total billed" ranks the clients by that amount, not by themselves;
* "which client signed the most contracts": the verb names the counted rows' date
  (`signed_on`), not a value to group by;
* "over time" / "in total" after the superlative asks for no period and compares nothing;
* "how much for each" shows the ranked figure beside each row;
* in such a ranking a client is shown by its own label (`trading_name`: other tables refer to
  clients and no table is a "trading"), not declined as a name borrowed from something else;
* "per depot, which client was billed the most" (a breakdown that would rank the depots) and
  a verb linked to the table of who acts ("drive" -> `drivers`) are still declined.

Each answer is checked by running it and a hand-written gold query on the same SQLite
database; the ranked shape also runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin import schema_index
from backend.nl2sql.engines.builtin.labels import names_its_rows
from tests.nl2sql.gym import (
    assert_same_answer,
    duckdb_loaded,
    generate,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)
from tests.nl2sql.test_builtin_grammar import rows

FREIGHT_DDL = """
CREATE TABLE depots (
    depot_id INTEGER PRIMARY KEY,
    depot_name TEXT NOT NULL,
    city TEXT NOT NULL
);
CREATE TABLE clients (
    client_id INTEGER PRIMARY KEY,
    trading_name TEXT NOT NULL,
    city TEXT NOT NULL,
    depot_id INTEGER NOT NULL REFERENCES depots(depot_id)
);
CREATE TABLE contracts (
    contract_id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(client_id),
    signed_on DATE NOT NULL,
    pallets INTEGER NOT NULL
);
CREATE TABLE contacts (
    contact_id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(client_id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL,
    is_primary INTEGER NOT NULL
);
CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts(contract_id),
    issued_on DATE NOT NULL,
    amount REAL NOT NULL
);
CREATE TABLE drivers (
    driver_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    hired_on DATE NOT NULL,
    depot_id INTEGER NOT NULL REFERENCES depots(depot_id)
);
CREATE TABLE deliveries (
    delivery_id INTEGER PRIMARY KEY,
    contract_id INTEGER NOT NULL REFERENCES contracts(contract_id),
    driver_id INTEGER NOT NULL REFERENCES drivers(driver_id),
    delivered_at DATE,
    weight_kg REAL NOT NULL
)
"""
CITIES = ["Ghent", "Leuven", "Namur"]
FIRST = ["Ines", "Tomas", "Lotte", "Bram", "Noor", "Wout"]
LAST = ["Claes", "Peeters", "Maes", "Jacobs", "Willems", "Goossens"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    depots = [(i, f"Depot {c}", c) for i, c in enumerate(CITIES, start=1)]
    clients = [(i, f"Trader {chr(64 + i)}", CITIES[i % 3], i % 3 + 1) for i in range(1, 10)]
    holders = [1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 9]  # the client of each
    contracts = [(i, c, f"2024-{i % 12 + 1:02d}-10", 5 + i % 7) for i, c in enumerate(holders, 1)]
    # distinct totals per client: no tie decides a ranking
    bills = [
        (i, i % 18 + 1, f"2024-{i % 12 + 1:02d}-{i % 27 + 1:02d}", 100.0 + i * 13.5 + (i % 18) * 7)
        for i in range(1, 61)
    ]
    drivers = [(i, FIRST[i - 1], LAST[i - 1], f"20{10 + i}-03-01", i % 3 + 1) for i in range(1, 7)]
    # driver i makes i * 2 deliveries (one still on the road each), the later ones in 2025;
    # in 2024 the first drivers deliver the most: a ranking over all years differs
    deliveries: list[tuple[Any, ...]] = []
    for d in range(1, 7):
        for j in range(d * 2):
            n = len(deliveries) + 1
            year = 2024 if j <= 7 - d else 2025
            done = None if j == 0 else f"{year}-{n % 12 + 1:02d}-{n % 27 + 1:02d}"
            deliveries.append((n, n % 18 + 1, d, done, 50.0 + n))
    # two contacts per client, the second one its primary contact
    contacts = [
        (i, (i + 1) // 2, FIRST[i % 6], LAST[(i * 5) % 6], f"c{i}@example.org", 1 - i % 2)
        for i in range(1, 19)
    ]
    return {
        "depots": depots,
        "clients": clients,
        "contracts": contracts,
        "contacts": contacts,
        "bills": bills,
        "drivers": drivers,
        "deliveries": deliveries,
    }


@pytest.fixture(scope="module")
def freight_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("freight") / "freight.sqlite"
    return sqlite_loaded(path, FREIGHT_DDL, _tables())


@pytest.fixture(scope="module")
def freight(freight_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(freight_path, "freight")


@pytest.fixture(scope="module")
def freight_db(freight_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{freight_path}?mode=ro", uri=True)
    yield conn
    conn.close()


_BILLED = (
    "SELECT c.trading_name, SUM(b.amount) AS total FROM bills b"
    " JOIN contracts k ON k.contract_id = b.contract_id JOIN clients c ON c.client_id = k.client_id"
    " GROUP BY c.client_id, c.trading_name ORDER BY total DESC"
)
RANKINGS = [
    ("Which three clients have we billed the most over time, and how much for each?",
     _BILLED + " LIMIT 3"),
    ("Which 3 clients did we bill the most in total, and how much each?", _BILLED + " LIMIT 3"),
    ("Who is our biggest client by total billed?",
     "SELECT c.trading_name FROM bills b JOIN contracts k ON k.contract_id = b.contract_id"
     " JOIN clients c ON c.client_id = k.client_id GROUP BY c.client_id, c.trading_name"
     " ORDER BY SUM(b.amount) DESC LIMIT 1"),
    ("Top 4 clients by total amount billed", _BILLED + " LIMIT 4"),
    ("Top 4 clients ranked by total billed", _BILLED + " LIMIT 4"),
    ("Top 4 clients by billed amount", _BILLED + " LIMIT 4"),
    ("Which driver delivered the most in 2024?",
     "SELECT d.first_name, d.last_name FROM deliveries v JOIN drivers d ON d.driver_id ="
     " v.driver_id WHERE v.delivered_at >= '2024-01-01' AND v.delivered_at < '2025-01-01'"
     " GROUP BY d.driver_id, d.first_name, d.last_name ORDER BY COUNT(*) DESC LIMIT 1"),
    ("Which client signed the most contracts?",
     "SELECT c.trading_name FROM contracts k JOIN clients c ON c.client_id = k.client_id"
     " GROUP BY c.client_id, c.trading_name ORDER BY COUNT(*) DESC LIMIT 1"),
    ("Which driver delivered the most?",
     "SELECT d.first_name, d.last_name FROM deliveries v JOIN drivers d ON d.driver_id ="
     " v.driver_id WHERE v.delivered_at IS NOT NULL GROUP BY d.driver_id, d.first_name,"
     " d.last_name ORDER BY COUNT(*) DESC LIMIT 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), RANKINGS)
def test_a_ranking_by_a_verb_or_a_related_amount_adds_up_the_related_rows(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection, question: str, gold: str
) -> None:
    """Before: declined ("could not tell what 'highest/most/least' refers to", "could not tell
    what to rank clients by", "the rows are shown by a name that seems to belong to something
    else")."""
    assert_same_answer(freight_db, generate(freight, question).sql, gold)


def test_the_ranked_figure_is_shown_when_asked_how_much(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection
) -> None:
    got = rows(freight_db, generate(freight, RANKINGS[0][0]).sql)
    assert len(got) == 3 and all(len(r) == 2 for r in got)
    assert [r[1] for r in got] == sorted((r[1] for r in got), reverse=True)


def test_a_ranking_by_a_verb_without_how_much_shows_only_the_rows(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection
) -> None:
    sql = generate(freight, "Which client have we billed the most?").sql
    assert rows(freight_db, sql) == rows(
        freight_db, "SELECT trading_name FROM (" + _BILLED + " LIMIT 1)"
    )


def test_the_ranked_shape_runs_on_duckdb_and_postgresql(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection, request: pytest.FixtureRequest
) -> None:
    question, gold = RANKINGS[0]
    expected = plain(rows(freight_db, gold))
    duck = duckdb_loaded(FREIGHT_DDL, _tables())
    try:
        sql = generate(freight, question, dialect="duckdb").sql
        assert plain([tuple(r) for r in duck.execute(sql).fetchall()]) == expected
    finally:
        duck.close()
    with postgres_loaded(request, FREIGHT_DDL, _tables()) as conn:
        import sqlalchemy  # noqa: PLC0415

        sql = generate(freight, question, dialect="postgresql").sql
        got = [tuple(r) for r in conn.execute(sqlalchemy.text(sql)).fetchall()]
        assert plain(got) == expected


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("clients", "trading_name", True),  # referred to by contracts; no table is a "trading"
        ("depots", "depot_name", False),  # its own name: not a qualifier to judge
        ("drivers", "first_name", False),  # one of two name columns
    ],
)
def test_a_qualified_name_column_labels_its_own_rows(
    freight: SchemaSnapshot, table: str, column: str, expected: bool
) -> None:
    index = schema_index(freight)
    col = index.column(table, column)
    assert col is not None
    assert names_its_rows(index, col) is expected


LOOKUPS = [
    ("Who is the primary contact at Trader C, and what's their email?",
     "SELECT p.first_name, p.last_name, p.email FROM contacts p JOIN clients c"
     " ON c.client_id = p.client_id WHERE c.trading_name = 'Trader C' AND p.is_primary = 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), LOOKUPS)
def test_a_named_rows_related_rows_are_looked_up(
    freight: SchemaSnapshot, freight_db: sqlite3.Connection, question: str, gold: str
) -> None:
    """The flag's own word before the rows ("the primary contact") picks them, and the name
    after "at" is a row of the table they refer to."""
    assert_same_answer(freight_db, generate(freight, question).sql, gold)


def test_a_breakdown_other_than_in_each_is_not_read_as_a_ranking_of_the_rows(
    freight: SchemaSnapshot,
) -> None:
    """Before the guard this answered the depot ranked first (the rows asked about lost)."""
    with pytest.raises(QuestionNotUnderstood):
        generate(freight, "Per depot, which client was billed the most overall?")


def test_a_verb_linked_to_the_table_of_who_acts_is_not_a_ranking_by_their_count(
    freight: SchemaSnapshot,
) -> None:
    """ "drive" links to `drivers`, who drive: counting drivers per client is not what
    "which client did we drive the most" asks (how many deliveries, or trips?). Before: the
    drivers joined to each client were counted and the answer shown (spider_train's "the movie
    that has been reviewed the most" counted reviewers)."""
    with pytest.raises(QuestionNotUnderstood):
        generate(freight, "Which client did we drive the most?")
