"""A name after "<rows> of" or "<rows> for" names the row those rows belong to, on a small
hotel group's schema written here (hotels, their guests named by first and last name; more
hotel names than the snapshot samples, so no hotel's name is a value the engine has seen):

* "the email of the guest of Harbor View Lodge": the guests of that hotel, not a guest whose
  first name is 'Harbor' and last name 'View Lodge' (an empty answer shown as right);
* "the email of Mira Kovac" (no rows named before "of") still compares both names.

Each answer is checked by running it and a hand-written gold query on the same SQLite
database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from tests.nl2sql.gym import assert_same_answer, generate, sqlite_loaded, sqlite_snapshot

HOTEL_DDL = """
CREATE TABLE hotels (
    hotel_id INTEGER PRIMARY KEY,
    hotel_name TEXT NOT NULL,
    rooms INTEGER NOT NULL
);
CREATE TABLE guests (
    guest_id INTEGER PRIMARY KEY,
    hotel_id INTEGER NOT NULL REFERENCES hotels(hotel_id),
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    email TEXT NOT NULL
)
"""
PLACES = ["Harbor", "Alpine", "Cedar", "Maple", "Granite", "Willow", "Coral", "Summit"]
KINDS = ["View Lodge", "Court Inn", "Park Hotel", "House", "Gardens", "Suites", "Rest", "Hall"]
FIRST = ["Mira", "Jonas", "Ilse", "Pavel", "Rosa", "Timo", "Alma", "Sven", "Nadia"]
LAST = ["Kovac", "Lind", "Okafor", "Brandt", "Silva", "Haas", "Moreau", "Falk", "Young"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    hotels = [
        (i + 1, f"{place} {kind}", 20 + i)
        for i, (place, kind) in enumerate((p, k) for p in PLACES for k in KINDS)
    ]  # 64 names: more than the snapshot samples
    guests = [
        (n + 1, n % len(hotels) + 1, f, la, f"{f.lower()}.{la.lower()}@example.net")
        for n, (f, la) in enumerate((f, la) for f in FIRST for la in LAST)
    ]  # 81 guests
    return {"hotels": hotels, "guests": guests}


@pytest.fixture(scope="module")
def hotel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hotels") / "hotels.sqlite"
    return sqlite_loaded(path, HOTEL_DDL, _tables())


@pytest.fixture(scope="module")
def hotel(hotel_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(hotel_path, "hotels")


@pytest.fixture(scope="module")
def hotel_db(hotel_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{hotel_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def test_the_snapshot_has_not_seen_the_hotels_names(hotel: SchemaSnapshot) -> None:
    sampled = {(t.name, c.name) for t in hotel.tables for c in t.columns if c.sample_values}
    assert ("hotels", "hotel_name") not in sampled
    assert ("guests", "first_name") in sampled  # few first names: the guests' are seen


@pytest.mark.parametrize(
    ("question", "gold"),
    [
        (
            "What is the email of the guest of Harbor View Lodge?",
            "SELECT g.email FROM guests g JOIN hotels h ON h.hotel_id = g.hotel_id"
            " WHERE h.hotel_name = 'Harbor View Lodge'",
        ),
        (
            "List the emails of the guests of Cedar Park Hotel.",
            "SELECT g.email FROM guests g JOIN hotels h ON h.hotel_id = g.hotel_id"
            " WHERE h.hotel_name = 'Cedar Park Hotel'",
        ),
        (
            "What is the email of Mira Kovac?",
            "SELECT email FROM guests WHERE first_name = 'Mira' AND last_name = 'Kovac'",
        ),
    ],
)
def test_a_name_after_rows_of_names_the_row_they_belong_to(
    hotel: SchemaSnapshot, hotel_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(hotel_db, generate(hotel, question).sql, gold)
