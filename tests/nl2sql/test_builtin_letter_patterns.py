"""'starting / ending with the letter x' keeps where the letter stands (it was read as
'contains', a wrong answer shown as right). Checked by result on a small SQLite schema of rivers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator

RIVERS = """
CREATE TABLE rivers (river_id INTEGER PRIMARY KEY, river_name TEXT, length_km REAL);
INSERT INTO rivers VALUES (1, 'Amazon', 6400), (2, 'Thames', 346), (3, 'Mekong', 4350),
  (4, 'Rhine', 1230), (5, 'Ebro', 910), (6, 'Marne', 514);
"""


@pytest.fixture(scope="module")
def rivers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SchemaSnapshot, Path]]:
    path = tmp_path_factory.mktemp("letters") / "rivers.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(RIVERS)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="rivers")
    engine.dispose()
    yield snapshot, path


@pytest.mark.parametrize(
    "question,names",
    [
        ("Which rivers have names ending with the letter n?", {"Amazon"}),
        ("Which rivers have names starting with the letter m?", {"Mekong", "Marne"}),
        ("Which rivers have names that begin with the letter R?", {"Rhine"}),
        ("Which rivers have names that end with the letter e?", {"Rhine", "Marne"}),
        ("rivers with the letter k in their name", {"Mekong"}),
    ],
)
def test_the_letter_keeps_its_place(
    rivers: tuple[SchemaSnapshot, Path], question: str, names: set[str]
) -> None:
    snapshot, path = rivers
    sql = (
        BuiltinGenerator()
        .generate(GenerationRequest(question=question, schema=snapshot, dialect="sqlite"))
        .sql
    )
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(sql).fetchall()
    assert {r[0] for r in rows} == names, sql
