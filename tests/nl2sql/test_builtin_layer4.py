"""How the builtin engine uses a semantic layer, fourth part, on a business of another domain
written here: Spokeway, a city bike share whose riders pay fares, with its own layer.

* "above-average riders by fares", "which riders have below-average fares": each row named is
  given the layer's measure and kept where it is above (below) the average of the rows' figures
  (HAVING against the average over the groups), not answered with one figure;
* a date column named for the period it is bucketed by (`report_month` holding the first day
  of each month) is grouped as stored, not reformatted ("docks used per month");
* measures of different tables named as a list ("fares and memberships sold by district"):
  each is read over its own rows and the figures are put side by side on the groups they
  share (was declined: one query over the joined rows would repeat one side's rows).

Each answer is checked by running it and a hand-written gold query on the same SQLite file; the
HAVING and side-by-side shapes also run on DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import results_match
from backend.semantic.layer import SemanticLayer
from tests.nl2sql.gym import (
    Rows,
    assert_same_answer,
    duckdb_loaded,
    plain,
    postgres_loaded,
    sqlite_loaded,
    sqlite_snapshot,
)

SPOKEWAY_DDL = """
CREATE TABLE stations (
    station_id INTEGER PRIMARY KEY,
    station_name TEXT NOT NULL,
    district TEXT NOT NULL
);
CREATE TABLE riders (
    rider_id INTEGER PRIMARY KEY,
    rider_name TEXT NOT NULL,
    joined_on DATE NOT NULL,
    cancelled_on DATE
);
CREATE TABLE trips (
    trip_id INTEGER PRIMARY KEY,
    rider_id INTEGER NOT NULL REFERENCES riders(rider_id),
    station_id INTEGER NOT NULL REFERENCES stations(station_id),
    started_on DATE NOT NULL,
    fare DOUBLE PRECISION NOT NULL,
    refunded INTEGER NOT NULL
);
CREATE TABLE station_usage (
    station_id INTEGER NOT NULL REFERENCES stations(station_id),
    report_month DATE NOT NULL,
    docks_used INTEGER NOT NULL,
    PRIMARY KEY (station_id, report_month)
);
"""
NAMES = ["Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gio", "Hana", "Ike", "Jun", "Kai", "Lea"]


def _rows() -> Rows:
    stations = [(1, "Quayside", "Harbour"), (2, "Old Mill", "Centre"), (3, "Parkgate", "North")]
    riders = []
    for i in range(1, 13):
        joined = date(2023, 2, 1) + timedelta(days=31 * i)
        cancelled = str(joined + timedelta(days=300)) if i % 5 == 0 else None
        riders.append((i, f"{NAMES[i - 1]} Rider", str(joined), cancelled))
    trips = []
    for i in range(1, 121):
        rider = 1 + (i * i) % 12  # uneven: some riders ride (and pay) far more than others
        started = date(2024, 1, 3) + timedelta(days=3 * i)
        trips.append((i, rider, 1 + i % 3, str(started), 2.5 + (i % 4) * 1.75, int(i % 9 == 0)))
    usage = []
    for station in (1, 2, 3):
        for month in range(1, 13):
            for year in (2023, 2024):
                used = 40 + station * 7 + month * 3 + (year - 2023) * 5
                usage.append((station, f"{year}-{month:02d}-01", used))
    return {"stations": stations, "riders": riders, "trips": trips, "station_usage": usage}


ROWS = _rows()

LAYER = SemanticLayer.model_validate(
    {
        "today": "2024-12-31",
        "tables": [
            {"name": "riders", "synonyms": ["rider", "member"], "time_column": "joined_on"},
            {"name": "trips", "synonyms": ["trip", "ride"], "time_column": "started_on"},
            {
                "name": "station_usage",
                "description": "One row per station per month (report_month: its first day).",
                "columns": [{"name": "docks_used", "synonyms": ["docks used", "dock use"]}],
            },
        ],
        "measures": [
            {
                "name": "fares",
                "synonyms": ["fare revenue", "fares paid"],
                "table": "trips",
                "expression": "SUM(trips.fare)",
                "filter": "trips.refunded = 0",
                "time_column": "trips.started_on",
            },
            {
                "name": "memberships sold",
                "synonyms": ["new memberships"],
                "table": "riders",
                "expression": "COUNT(*)",
                "time_column": "riders.joined_on",
            },
        ],
        "filters": [
            {
                "name": "active rider",
                "synonyms": ["active riders", "current riders"],
                "table": "riders",
                "condition": "riders.cancelled_on IS NULL",
            },
        ],
    }
)


@pytest.fixture(scope="module")
def spokeway_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spokeway") / "spokeway.sqlite"
    return sqlite_loaded(path, SPOKEWAY_DDL, ROWS)


@pytest.fixture(scope="module")
def spokeway(spokeway_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(spokeway_path, "spokeway")


@pytest.fixture(scope="module")
def spokeway_db(spokeway_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{spokeway_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    layer: SemanticLayer | None = LAYER,
    dialect: str = "sqlite",
) -> str:
    request = GenerationRequest(question=question, schema=schema, semantic=layer, dialect=dialect)
    return BuiltinGenerator().generate(request).sql


_PER_RIDER = (
    "SELECT r.rider_id, r.rider_name, SUM(t.fare) AS fares FROM riders r"
    " JOIN trips t ON t.rider_id = r.rider_id WHERE t.refunded = 0"
    " GROUP BY r.rider_id, r.rider_name"
)
ABOVE = (
    f"SELECT rider_name FROM ({_PER_RIDER}) WHERE fares > (SELECT AVG(fares) FROM ({_PER_RIDER}))"
)
BELOW = (
    f"SELECT rider_name FROM ({_PER_RIDER}) WHERE fares < (SELECT AVG(fares) FROM ({_PER_RIDER}))"
)


def test_the_gold_data_has_what_the_questions_need(spokeway_db: sqlite3.Connection) -> None:
    above = spokeway_db.execute(ABOVE).fetchall()
    below = spokeway_db.execute(BELOW).fetchall()
    assert above and below and len(above) + len(below) <= 12
    months = spokeway_db.execute("SELECT DISTINCT substr(report_month, 9) FROM station_usage")
    assert [r[0] for r in months] == ["01"]


AVERAGE_ADJECTIVES = [
    ("Above-average riders by fares", ABOVE),
    ("Above-average riders by fares: who are they?", ABOVE),
    ("Which riders have above average fares?", ABOVE),
    ("List the riders with above-average fare revenue", ABOVE),
    ("Which riders have below-average fares?", BELOW),
    ("Above-average fares riders", ABOVE),
]


@pytest.mark.parametrize(
    ("question", "gold"), AVERAGE_ADJECTIVES, ids=[q for q, _ in AVERAGE_ADJECTIVES]
)
def test_above_average_rows_by_a_measure_compare_each_with_the_average_over_them(
    spokeway: SchemaSnapshot, spokeway_db: sqlite3.Connection, question: str, gold: str
) -> None:
    # was one figure (the fares of everyone) or a decline ("no value to compare with")
    assert_same_answer(spokeway_db, ask(spokeway, question), gold)


def test_an_above_average_measure_with_no_rows_to_give_it_to_is_not_a_comparison(
    spokeway: SchemaSnapshot,
) -> None:
    # nothing names the rows the measure would be split over: declined, not one figure
    for question in ("Above-average fares", "What are the above average fares?"):
        with pytest.raises(QuestionNotUnderstood, match="needs the rows"):
            ask(spokeway, question)


def test_above_average_rows_render_on_duckdb_and_postgres(
    spokeway: SchemaSnapshot, spokeway_db: sqlite3.Connection, request: pytest.FixtureRequest
) -> None:
    question = "Above-average riders by fares"
    expected = plain(spokeway_db.execute(ABOVE).fetchall())
    duck = duckdb_loaded(SPOKEWAY_DDL, ROWS)
    try:
        got = plain(duck.execute(ask(spokeway, question, dialect="duckdb")).fetchall())
    finally:
        duck.close()
    assert results_match(expected, got, ordered=False)
    with postgres_loaded(request, SPOKEWAY_DDL, ROWS, typed=_typed) as conn:
        rows = conn.execute(sqlalchemy.text(ask(spokeway, question, dialect="postgresql")))
        assert results_match(expected, plain([tuple(r) for r in rows]), ordered=False)


def _typed(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(
        date.fromisoformat(v) if isinstance(v, str) and v[:2] == "20" and len(v) == 10 else v
        for v in row
    )


MONTHLY = (
    "SELECT report_month, SUM(docks_used) FROM station_usage"
    " WHERE report_month >= '2024-01-01' AND report_month < '2025-01-01'"
    " GROUP BY report_month ORDER BY report_month"
)


@pytest.mark.parametrize("layer", [LAYER, None], ids=["with the layer", "without a layer"])
@pytest.mark.parametrize(
    "question", ["Total docks used per month in 2024", "Docks used by month in 2024"]
)
def test_a_month_column_is_grouped_by_month_as_stored(
    spokeway: SchemaSnapshot,
    spokeway_db: sqlite3.Connection,
    question: str,
    layer: SemanticLayer | None,
) -> None:
    # was STRFTIME('%Y-%m', report_month): '2024-01' where the data says '2024-01-01'
    sql = ask(spokeway, question, layer)
    assert "STRFTIME" not in sql.upper()
    assert_same_answer(spokeway_db, sql, MONTHLY)


def test_a_date_column_not_named_for_the_month_is_still_bucketed(
    spokeway: SchemaSnapshot, spokeway_db: sqlite3.Connection
) -> None:
    gold = (
        "SELECT strftime('%Y-%m', started_on), SUM(fare) FROM trips WHERE refunded = 0"
        " AND started_on >= '2024-01-01' AND started_on < '2025-01-01'"
        " GROUP BY 1 ORDER BY 1"
    )
    assert_same_answer(spokeway_db, ask(spokeway, "Fares per month in 2024"), gold)


_FARES_BY_DISTRICT = (
    "SELECT s.district, SUM(t.fare) AS fares FROM trips t"
    " JOIN stations s ON s.station_id = t.station_id WHERE t.refunded = 0 GROUP BY s.district"
)
SIDE_BY_SIDE = [
    (
        "Fares and memberships sold in 2024",
        "SELECT (SELECT SUM(fare) FROM trips WHERE refunded = 0 AND started_on >= '2024-01-01'"
        " AND started_on < '2025-01-01'), (SELECT COUNT(*) FROM riders"
        " WHERE joined_on >= '2024-01-01' AND joined_on < '2025-01-01')",
    ),
    (
        "Memberships sold and fares by month in 2024",
        "SELECT m, COALESCE(SUM(joins), 0), COALESCE(SUM(fares), 0) FROM ("
        " SELECT strftime('%Y-%m', joined_on) AS m, COUNT(*) AS joins, NULL AS fares FROM riders"
        " WHERE joined_on >= '2024-01-01' AND joined_on < '2025-01-01' GROUP BY m"
        " UNION ALL SELECT strftime('%Y-%m', started_on), NULL, SUM(fare) FROM trips"
        " WHERE refunded = 0 AND started_on >= '2024-01-01' AND started_on < '2025-01-01'"
        " GROUP BY 1) GROUP BY m ORDER BY m",
    ),
]


@pytest.mark.parametrize(("question", "gold"), SIDE_BY_SIDE, ids=[q for q, _ in SIDE_BY_SIDE])
def test_measures_of_different_tables_named_as_a_list_are_put_side_by_side(
    spokeway: SchemaSnapshot, spokeway_db: sqlite3.Connection, question: str, gold: str
) -> None:
    # was declined: "measures over different tables in one answer are not supported"
    assert_same_answer(spokeway_db, ask(spokeway, question), gold)


def test_side_by_side_figures_are_named_by_their_measures(spokeway: SchemaSnapshot) -> None:
    request = GenerationRequest(
        question="Memberships sold and fares by month in 2024", schema=spokeway, semantic=LAYER
    )
    sql = BuiltinGenerator().generate(request).sql
    assert '"memberships_sold"' in sql or "memberships_sold" in sql
    assert "AS fares" in sql


def test_measures_of_different_tables_not_said_as_a_list_are_still_declined(
    spokeway: SchemaSnapshot,
) -> None:
    with pytest.raises(QuestionNotUnderstood):
        ask(spokeway, "Fares per memberships sold in 2024 for each month of the year by rider")


def test_side_by_side_figures_render_on_duckdb_and_postgres(
    spokeway: SchemaSnapshot, spokeway_db: sqlite3.Connection, request: pytest.FixtureRequest
) -> None:
    question, gold = SIDE_BY_SIDE[1]
    expected = plain(spokeway_db.execute(gold).fetchall())
    duck = duckdb_loaded(SPOKEWAY_DDL, ROWS)
    try:
        got = plain(duck.execute(ask(spokeway, question, dialect="duckdb")).fetchall())
    finally:
        duck.close()
    assert results_match(expected, got, ordered=True)
    with postgres_loaded(request, SPOKEWAY_DDL, ROWS, typed=_typed) as conn:
        rows = conn.execute(sqlalchemy.text(ask(spokeway, question, dialect="postgresql")))
        assert results_match(expected, plain([tuple(r) for r in rows]), ordered=True)
