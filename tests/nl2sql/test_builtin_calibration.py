"""The builtin engine's confidence model: weights that load the same every time, doubts that
come from competing readings, and declines that carry those readings as runnable choices.

The schema is a help desk (a domain the dev sets do not have): tickets refer to agents twice
(who opened, who closed), and customers have two phone numbers, so some questions have two
readings that give different answers.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import sqlglot

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.confidence import (
    ANSWER_THRESHOLD,
    FEATURES,
    WEIGHTS_FILE,
    assess,
    competing_readings,
    dangling_columns,
    load_model,
)

HELP_DESK = """
CREATE TABLE agents (agent_id INTEGER PRIMARY KEY, agent_name TEXT, team TEXT);
CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, full_name TEXT, city TEXT,
                        home_phone TEXT, work_phone TEXT);
CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, subject TEXT, opened_on DATE,
                      customer_id INTEGER REFERENCES customers(customer_id),
                      opened_by INTEGER REFERENCES agents(agent_id),
                      closed_by INTEGER REFERENCES agents(agent_id));
INSERT INTO agents VALUES (1, 'Ines Duarte', 'billing'), (2, 'Tom Becker', 'billing'),
  (3, 'Yuki Sato', 'network');
INSERT INTO customers VALUES (1, 'Ann Lee', 'Oslo', '555-1000', '555-2000'),
  (2, 'Bo Nilsen', 'Bergen', '555-1001', NULL), (3, 'Cara Holm', 'Oslo', NULL, '555-2002');
INSERT INTO tickets VALUES (1, 'invoice wrong', '2024-03-01', 1, 1, 2),
  (2, 'no signal', '2024-03-04', 2, 3, 3), (3, 'refund', '2024-03-09', 1, 1, 2),
  (4, 'slow line', '2024-04-02', 3, 3, NULL);
"""


@pytest.fixture(scope="module")
def help_desk(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SchemaSnapshot, sqlite3.Connection]]:
    path = tmp_path_factory.mktemp("calibration") / "help_desk.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(HELP_DESK)
    engine = open_sqlite_read_only(path)
    snapshot = introspect(engine, db_type="sqlite", database_name="help_desk")
    engine.dispose()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield snapshot, conn
    conn.close()


def _ask(snapshot: SchemaSnapshot, question: str) -> QuestionNotUnderstood | float:
    """The decline, or the confidence of the answer."""
    try:
        generation = BuiltinGenerator().generate(
            GenerationRequest(question=question, schema=snapshot, dialect="sqlite")
        )
    except QuestionNotUnderstood as exc:
        return exc
    assert generation.confidence is not None
    return generation.confidence


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return sorted(conn.execute(sql).fetchall(), key=repr)


def test_a_join_that_can_go_two_ways_is_declined_with_both_ways_as_runnable_choices(
    help_desk: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = help_desk
    outcome = _ask(snapshot, "List the subjects of tickets with the names of their agents.")
    assert isinstance(outcome, QuestionNotUnderstood), outcome
    runnable = [s for s in outcome.suggestions if s.sql]
    assert len(runnable) >= 2
    read, other = runnable[0], runnable[1]
    joined = {"opened_by" in s.sql and "closed_by" not in s.sql for s in (read, other) if s.sql}
    assert joined == {True, False}, [read.sql, other.sql]
    assert read.sql is not None and other.sql is not None
    assert _rows(conn, read.sql) != _rows(conn, other.sql)  # two readings, two answers
    assert "instead of" in other.text
    doubts = outcome.recognised.get("doubts")
    assert isinstance(doubts, list) and any("more than one way" in d for d in doubts), doubts


def test_a_word_that_fits_two_columns_is_declined_with_each_column_as_a_choice(
    help_desk: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = help_desk
    outcome = _ask(snapshot, "What is the phone of Ann Lee?")
    assert isinstance(outcome, QuestionNotUnderstood), outcome
    runnable = [s for s in outcome.suggestions if s.sql]
    shown = {
        col for s in runnable for col in ("home_phone", "work_phone") if s.sql and col in s.sql
    }
    assert shown == {"home_phone", "work_phone"}, [s.sql for s in runnable]
    answers = {tuple(_rows(conn, s.sql)) for s in runnable[:2] if s.sql}
    assert answers == {(("555-1000",),), (("555-2000",),)}
    assert any(s.confidence is not None for s in runnable[1:])


def test_a_clear_question_is_answered_above_the_threshold(
    help_desk: tuple[SchemaSnapshot, sqlite3.Connection],
) -> None:
    snapshot, conn = help_desk
    for question in ("How many customers are there?", "Which customers live in Oslo?"):
        outcome = _ask(snapshot, question)
        assert isinstance(outcome, float), outcome
        assert outcome >= ANSWER_THRESHOLD


def test_the_weights_load_the_same_every_time_and_weigh_every_feature() -> None:
    first, second = load_model(), load_model()
    assert first == second
    assert set(first.weights) == set(FEATURES)
    stored = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert set(stored["weights"]) <= set(FEATURES), "a weight for a feature the engine lacks"
    assert 0.0 < first.threshold < 1.0
    signals = {"content_words": 4.0, "links": 2.0, "strong_links": 2.0, "tables": 2.0}
    assert assess(signals).confidence == assess(dict(signals)).confidence


@pytest.mark.parametrize("doubt", ["ambiguous_joins", "tied_links", "ambiguous_dates"])
def test_two_readings_that_fit_equally_well_are_competing_whatever_the_score(doubt: str) -> None:
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    assert assess(clean).confidence >= ANSWER_THRESHOLD
    assert not competing_readings(clean)
    assert competing_readings({**clean, doubt: 1.0})
    assert assess({**clean, doubt: 1.0}).confidence < assess(clean).confidence


def test_a_when_question_answered_without_a_date_is_below_the_threshold() -> None:
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    doubted = assess({**clean, "unanswered_when": 1.0})
    assert doubted.confidence < ANSWER_THRESHOLD
    assert any("when" in reason for reason in doubted.reasons)


def test_sql_reading_a_column_of_a_table_it_does_not_join_is_never_answered() -> None:
    broken = sqlglot.parse_one(
        "SELECT s.name FROM student AS s WHERE s.id NOT IN "
        "(SELECT t.id FROM takes AS t WHERE course.dept = 'Biology')"
    )
    fine = sqlglot.parse_one(
        "SELECT s.name FROM student AS s WHERE s.id NOT IN (SELECT t.id FROM takes AS t "
        "JOIN course ON t.course_id = course.course_id WHERE course.dept = 'Biology')"
    )
    assert dangling_columns(broken) == 1
    assert dangling_columns(fine) == 0
    clean = {"content_words": 3.0, "links": 2.0, "strong_links": 2.0, "subject_named": 1.0}
    assert assess({**clean, "dangling_columns": 1.0}).confidence == 0.0


def _fit_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "fit_confidence.py"
    spec = importlib.util.spec_from_file_location("fit_confidence", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fit_is_deterministic_and_a_rare_signal_keeps_its_judged_weight() -> None:
    fit = _fit_script().fit
    rng = np.random.default_rng(7)
    common = rng.integers(0, 2, 400).astype(float)
    rare = np.zeros(400)
    rare[:2] = 1.0
    x = np.column_stack([common, rare])
    y = (rng.random(400) > 0.3 + 0.4 * common).astype(float)
    w = np.ones(400)
    prior = np.array([0.0, -3.0])
    a = fit(x, y, w, 2.0, prior)
    b = fit(x, y, w, 2.0, prior)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert a[1][0] < -1.0  # the data's own lesson: the common signal predicts wrong answers
    assert a[1][1] < -2.0  # two rows cannot undo the judgement on the rare one
    unpulled = fit(x, y, w, 2.0)
    assert unpulled[1][1] > a[1][1]
