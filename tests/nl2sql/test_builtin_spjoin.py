"""The join tree, on a small botanical-garden schema written here: zones, gardeners and plants
(both in a zone), the plants each gardener tends (a many-to-many bridge), volunteers who tend
and who donate to plants (two bridges between the same tables), inspections of plants, a
plant status log, events that volunteers (`participates_in`) and gardeners
(`gardener_participates_in`) take part in, volunteers' skills (with the years practised) and
the events they practise at, and the gardeners hosting workshops at events (a key not
declared, only named like `gardeners.gardener_id`).

* Two tables related both through a bridge recording the relation and through a parent they
  share: the bridge ("gardeners and the plants they look after": `gardener_tends`, not every
  plant of the gardener's zone).
* Two bridges between the same tables that the question tells apart by a word are answered;
  where nothing tells them apart, declined with both joins offered (a bridge joined on a key
  only inferred from its name too: being declared does not say which relation is meant).
* A direct join on a key of a role the question does not say (`events.organiser_id`) gives way
  to a path one join longer through a table the question names ("volunteers who participate
  in the Seed swap event": `participates_in`); the role, said, keeps the direct join.
* A table the question names by a word that another table of the tree already stands for is
  not joined ("gardeners who participate in an event": not `participates_in`, the
  volunteers' table; "inspections with status code failed": not the status log; "volunteers
  who practise pruning": the skills say so, not the events practised at).

Each answer is checked by running it and a hand-written gold query on the same SQLite
database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import QuestionNotUnderstood
from tests.nl2sql.gym import generate, sqlite_loaded, sqlite_snapshot
from tests.nl2sql.test_builtin_grammar import assert_same_answer, rows

GARDEN_DDL = """
CREATE TABLE zones (
    zone_name TEXT PRIMARY KEY,
    climate TEXT NOT NULL
);
CREATE TABLE gardeners (
    gardener_id INTEGER PRIMARY KEY,
    gardener_name TEXT NOT NULL,
    zone_name TEXT NOT NULL REFERENCES zones(zone_name),
    years_experience INTEGER NOT NULL
);
CREATE TABLE plants (
    plant_id INTEGER PRIMARY KEY,
    species TEXT NOT NULL,
    zone_name TEXT NOT NULL REFERENCES zones(zone_name),
    height_cm REAL NOT NULL
);
CREATE TABLE gardener_tends (
    gardener_id INTEGER NOT NULL REFERENCES gardeners(gardener_id),
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    hours REAL NOT NULL,
    PRIMARY KEY (gardener_id, plant_id)
);
CREATE TABLE volunteers (
    volunteer_id INTEGER PRIMARY KEY,
    volunteer_name TEXT NOT NULL
);
CREATE TABLE tends (
    volunteer_id INTEGER NOT NULL REFERENCES volunteers(volunteer_id),
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    PRIMARY KEY (volunteer_id, plant_id)
);
CREATE TABLE donations (
    volunteer_id INTEGER NOT NULL REFERENCES volunteers(volunteer_id),
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    amount REAL NOT NULL,
    PRIMARY KEY (volunteer_id, plant_id)
);
CREATE TABLE inspections (
    inspection_id INTEGER PRIMARY KEY,
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    result_status TEXT NOT NULL
);
CREATE TABLE plant_status (
    entry_id INTEGER PRIMARY KEY,
    plant_id INTEGER NOT NULL REFERENCES plants(plant_id),
    note TEXT NOT NULL
);
CREATE TABLE volunteer_skills (
    volunteer_id INTEGER NOT NULL REFERENCES volunteers(volunteer_id),
    skill_name TEXT NOT NULL,
    years_practised INTEGER NOT NULL
);
CREATE TABLE practises (
    volunteer_id INTEGER NOT NULL REFERENCES volunteers(volunteer_id),
    event_id INTEGER NOT NULL REFERENCES events(event_id),
    hours REAL NOT NULL
);
CREATE TABLE workshop_hosts (
    host_id INTEGER PRIMARY KEY,
    gardener_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL REFERENCES events(event_id)
);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    organiser_id INTEGER REFERENCES volunteers(volunteer_id)
);
CREATE TABLE participates_in (
    volunteer_id INTEGER NOT NULL REFERENCES volunteers(volunteer_id),
    event_id INTEGER NOT NULL REFERENCES events(event_id)
);
CREATE TABLE gardener_participates_in (
    gardener_id INTEGER NOT NULL REFERENCES gardeners(gardener_id),
    event_id INTEGER NOT NULL REFERENCES events(event_id)
)
"""
ZONES = ["Tropical", "Desert", "Alpine", "Temperate"]
SPECIES = ["Fern", "Cactus", "Orchid", "Moss", "Palm", "Agave", "Edelweiss", "Oak"]


def _tables() -> dict[str, list[tuple[Any, ...]]]:
    zones = list(zip(ZONES, ["humid", "dry", "cold", "mild"], strict=True))
    gardeners = [(i, f"Gardener {i}", ZONES[i % 4], 2 + i % 7) for i in range(1, 11)]
    plants = [(i, SPECIES[i % 8], ZONES[(i * 3) % 4], 20.0 + (i * 13) % 180) for i in range(1, 25)]
    tends: dict[tuple[int, int], float] = {}
    for i in range(40):
        tends.setdefault((1 + (i * 7) % 10, 1 + (i * 5) % 24), 1.0 + i % 5)
    return {
        "zones": zones,
        "gardeners": gardeners,
        "plants": plants,
        "gardener_tends": [(g, p, h) for (g, p), h in sorted(tends.items())],
        "volunteers": [(i, f"Volunteer {i}") for i in range(1, 5)],
        "tends": sorted({(1 + i % 4, 1 + (i * 11) % 6) for i in range(6)}),
        "donations": [(1, 7, 5.0), (2, 8, 10.0), (3, 2, 15.0), (4, 9, 20.0)],
        "inspections": [
            (i, 1 + (i * 5) % 24, "failed" if i % 4 == 0 else "passed") for i in range(1, 31)
        ],
        "plant_status": [(i, 1 + i % 3, f"note {i}") for i in range(1, 6)],
        # `gardener_id` here is no declared foreign key: the join to gardeners is inferred
        "workshop_hosts": [(1, 3, 1), (2, 6, 2), (3, 7, 3)],
        "events": [
            (1, "Seed swap", 4),
            (2, "Pruning class", 4),
            (3, "Night walk", 1),
            (4, "Compost day", None),
        ],
        # volunteers take part in two of the four events only
        "participates_in": [(1, 1), (2, 1), (3, 2)],
        "volunteer_skills": [(1, "pruning", 3), (2, "grafting", 1), (3, "pruning", 5)],
        # volunteer 3 prunes but has practised at no event
        "practises": [(1, 2, 1.5), (2, 2, 2.0), (4, 3, 1.0)],
        "gardener_participates_in": [(1, 1), (2, 3), (2, 4), (3, 4), (4, 2), (5, 1)],
    }


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


def test_a_bridge_recording_the_relation_beats_a_shared_parent(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    """Before: declined, the path through `zones` (every plant of the gardener's zone) tied
    with the one through `gardener_tends`."""
    sql = generate(
        garden, "Show the names of gardeners and the species of the plants they look after."
    ).sql
    gold = (
        "SELECT g.gardener_name, p.species FROM gardeners g"
        " JOIN gardener_tends t ON t.gardener_id = g.gardener_id"
        " JOIN plants p ON p.plant_id = t.plant_id"
    )
    by_zone = (
        "SELECT g.gardener_name, p.species FROM gardeners g"
        " JOIN plants p ON p.zone_name = g.zone_name"
    )
    assert sorted(rows(garden_db, gold)) != sorted(rows(garden_db, by_zone))
    assert "zones" not in sql
    assert_same_answer(garden_db, sql, gold)


def test_two_bridges_nothing_tells_apart_are_declined_with_both(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    with pytest.raises(QuestionNotUnderstood, match="more than one way") as caught:
        generate(
            garden, "Show the names of volunteers and the species of the plants they look after."
        )
    offered = [s.sql for s in caught.value.suggestions if s.sql]
    assert any("JOIN tends" in sql for sql in offered)
    assert any("JOIN donations" in sql for sql in offered)
    answers = {tuple(sorted(rows(garden_db, sql))) for sql in offered}
    assert len(answers) == 2, "the two readings answer differently: neither may be guessed"


def test_the_bridge_the_question_names_is_taken(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    sql = generate(
        garden, "Show the names of volunteers and the species of the plants they donated to."
    ).sql
    assert_same_answer(
        garden_db,
        sql,
        "SELECT v.volunteer_name, p.species FROM volunteers v"
        " JOIN donations d ON d.volunteer_id = v.volunteer_id"
        " JOIN plants p ON p.plant_id = d.plant_id",
    )


NOT_JOINED = [
    # before: `participates_in` (the volunteers' events) joined too, named by "participate",
    # keeping only the events some volunteer takes part in (3 gardeners, not 5)
    ("How many gardeners participate in an event?",
     "SELECT COUNT(DISTINCT gardener_id) FROM gardener_participates_in",
     "participates_in ON"),
    ("Show the titles of events and the number of gardeners participating in each.",
     "SELECT e.title, COUNT(DISTINCT g.gardener_id) FROM events e"
     " JOIN gardener_participates_in g ON g.event_id = e.event_id GROUP BY e.title",
     "participates_in ON"),
    # before: the status log joined for "status", which the filtered column already says
    ("Which plants have inspections with status code failed? Show their species.",
     "SELECT p.species FROM plants p JOIN inspections i ON i.plant_id = p.plant_id"
     " WHERE i.result_status = 'failed'",
     "plant_status"),
    # before: `participates_in` joined beside the two semi-joins, keeping only the events
    # volunteers take part in (neither of these two)
    ("What are the names of gardeners who participate in both Night walk and Compost day?",
     "SELECT gardener_name FROM gardeners WHERE gardener_id IN (SELECT gardener_id FROM"
     " gardener_participates_in JOIN events USING (event_id) WHERE title = 'Night walk')"
     " AND gardener_id IN (SELECT gardener_id FROM gardener_participates_in"
     " JOIN events USING (event_id) WHERE title = 'Compost day')",
     "participates_in ON"),
    # before: the events practised at joined for "practise", a word of the skills' table
    ("What are the names of volunteers who practise pruning?",
     "SELECT v.volunteer_name FROM volunteers v JOIN volunteer_skills s"
     " ON s.volunteer_id = v.volunteer_id WHERE s.skill_name = 'pruning'",
     "practises"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold", "absent"), NOT_JOINED)
def test_a_table_named_by_a_word_the_tree_already_explains_is_not_joined(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str, absent: str
) -> None:
    sql = generate(garden, question).sql
    assert absent not in sql.replace("gardener_participates_in ON", "")
    assert_same_answer(garden_db, sql, gold)


def test_a_table_named_by_a_word_nothing_else_explains_is_still_joined(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    """Volunteers who take part in events: `participates_in` is theirs, and it is kept."""
    sql = generate(garden, "How many volunteers participate in an event?").sql
    assert_same_answer(garden_db, sql, "SELECT COUNT(DISTINCT volunteer_id) FROM participates_in")


def test_a_bridge_joined_on_an_inferred_key_still_ties_with_a_declared_one(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    """`workshop_hosts.gardener_id` is only named like the gardeners' key; the gardeners the
    events host and the gardeners who go to them differ, and the question does not say."""
    with pytest.raises(QuestionNotUnderstood, match="more than one way") as caught:
        generate(garden, "Show the names of gardeners and the titles of the events they go to.")
    offered = [s.sql for s in caught.value.suggestions if s.sql]
    assert any("workshop_hosts" in sql for sql in offered)
    assert any("gardener_participates_in" in sql for sql in offered)


def test_the_bridge_the_question_names_is_taken_on_an_inferred_key(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection
) -> None:
    sql = generate(
        garden, "Show the names of gardeners and the titles of the events they host."
    ).sql
    assert_same_answer(
        garden_db,
        sql,
        "SELECT g.gardener_name, e.title FROM gardeners g JOIN workshop_hosts h"
        " ON h.gardener_id = g.gardener_id JOIN events e ON e.event_id = h.event_id",
    )


DETOURS = [
    # before: joined on `events.organiser_id` (the event's organiser), with `participates_in`
    # hung on beside it
    ("Which volunteers participate in the Seed swap event?",
     "SELECT v.volunteer_name FROM volunteers v JOIN participates_in p"
     " ON p.volunteer_id = v.volunteer_id JOIN events e ON e.event_id = p.event_id"
     " WHERE e.title = 'Seed swap'"),
    ("Show the titles of events and the names of volunteers who participate in them.",
     "SELECT e.title, v.volunteer_name FROM events e JOIN participates_in p"
     " ON p.event_id = e.event_id JOIN volunteers v ON v.volunteer_id = p.volunteer_id"),
    ("Show the titles of events and the names of their organisers.",
     "SELECT e.title, v.volunteer_name FROM events e"
     " JOIN volunteers v ON v.volunteer_id = e.organiser_id"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), DETOURS)
def test_a_named_bridge_beats_a_direct_key_of_an_unsaid_role(
    garden: SchemaSnapshot, garden_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(garden_db, generate(garden, question).sql, gold)
