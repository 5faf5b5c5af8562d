"""How the builtin engine uses a semantic layer, third part, on a business of another domain
written here: Cragline, a climbing gym selling passes to its members, with its own layer.

* a figure computed from several measures, each dated by its own date ("net new members per
  quarter in 2024: joins minus leavers", "joins minus leavers by month", "pass sales minus
  refunds in 2024", "refunds divided by pass sales") is read part by part and the parts are put
  together on the bucket they share; a bucket one part has no rows in counts as 0;
* numbered fiscal years ("FY2024", "Q3 FY2024", "fiscal year 2024") follow the layer's
  `fiscal_year_named_by`, and are declined when a fiscal year that does not start in January
  does not say which calendar year names it;
* "last quarter" / "last month" / "last year" are the whole previous period (quarters of the
  fiscal year), while "the last 3 months" stays a window back from the layer's `today`;
* "rank coaches by pass sales under management and give me the top two" ranks by the measure
  and keeps the first rows ("under management" qualifies the measure, it compares nothing).

Each answer is checked by running it and a hand-written gold query on the same SQLite file; the
new SQL shape (the parts side by side) also runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.prompt import build_prompt
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

CRAGLINE_DDL = """
CREATE TABLE coaches (
    coach_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL
);
CREATE TABLE members (
    member_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL,
    joined_on DATE NOT NULL,
    left_on DATE,
    coach_id INTEGER REFERENCES coaches(coach_id)
);
CREATE TABLE tariffs (
    tariff_id INTEGER PRIMARY KEY,
    tariff_name TEXT NOT NULL,
    monthly_fee DOUBLE PRECISION NOT NULL,
    is_retired INTEGER NOT NULL
);
CREATE TABLE passes (
    pass_id INTEGER PRIMARY KEY,
    member_id INTEGER NOT NULL REFERENCES members(member_id),
    sold_on DATE NOT NULL,
    price DOUBLE PRECISION NOT NULL,
    refunded_on DATE
);
"""
FIRST = ["Ada", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo", "Kit", "Lu"]


def _rows() -> Rows:
    coaches = [(1, "Rhea Rope"), (2, "Sam Belay"), (3, "Tom Crimp")]
    members = []
    for i in range(1, 41):
        joined = date(2023, 1, 5) + timedelta(days=23 * i)
        # leavers only from the second half of 2024: early quarters have joins and no leavers
        left = str(date(2024, 7, 3) + timedelta(days=11 * i)) if i % 4 == 0 else None
        members.append((i, f"{FIRST[i % 12]} Climber {i}", str(joined), left, 1 + i % 3))
    passes = []
    for i in range(1, 161):
        member = 1 + (i * 7) % 40
        sold = date(2023, 3, 1) + timedelta(days=5 * i)
        refunded = str(sold + timedelta(days=9)) if i % 6 == 0 else None
        passes.append((i, member, str(sold), 30.0 + (i % 5) * 12.5, refunded))
    tariffs = [
        (1, "Bouldering", 45.0, 0),
        (2, "Full access", 62.5, 0),
        (3, "Off-peak", 38.0, 1),
        (4, "Student", 30.0, 1),
    ]
    return {"coaches": coaches, "members": members, "tariffs": tariffs, "passes": passes}


ROWS = _rows()

LAYER = SemanticLayer.model_validate(
    {
        "today": "2025-05-20",
        "tables": [
            {
                "name": "members",
                "synonyms": ["member", "climber"],
                "time_column": "joined_on",
                "columns": [{"name": "coach_id", "synonyms": ["instructor"]}],
            },
            {"name": "passes", "synonyms": ["pass"], "time_column": "sold_on"},
            {
                "name": "tariffs",
                "synonyms": ["tariff", "price plan"],
                "columns": [{"name": "monthly_fee", "synonyms": ["per-person fee"]}],
            },
        ],
        "measures": [
            {
                "name": "joins",
                "synonyms": ["new members", "sign-ups"],
                "table": "members",
                "expression": "COUNT(*)",
                "time_column": "members.joined_on",
            },
            {
                "name": "leavers",
                "synonyms": ["members lost", "lost members"],
                "table": "members",
                "expression": "COUNT(*)",
                "filter": "members.left_on IS NOT NULL",
                "time_column": "members.left_on",
            },
            {
                "name": "attrition rate",
                "synonyms": ["attrition"],
                "table": "members",
                "expression": "100.0 * SUM(CASE WHEN members.left_on IS NOT NULL THEN 1 ELSE 0 END)"
                " / COUNT(*)",
            },
            {
                "name": "pass sales",
                "synonyms": ["takings"],
                "table": "passes",
                "expression": "SUM(passes.price)",
                "filter": "passes.refunded_on IS NULL",
                "time_column": "passes.sold_on",
            },
            {
                "name": "refunds",
                "synonyms": ["money refunded"],
                "table": "passes",
                "expression": "SUM(passes.price)",
                "filter": "passes.refunded_on IS NOT NULL",
                "time_column": "passes.refunded_on",
            },
        ],
        "filters": [
            {
                "name": "retired tariff",
                "synonyms": ["no longer sold", "retired"],
                "table": "tariffs",
                "condition": "tariffs.is_retired = 1",
            },
            {
                "name": "current member",
                "synonyms": ["current members"],
                "table": "members",
                "condition": "members.left_on IS NULL",
            },
        ],
    }
)


@pytest.fixture(scope="module")
def cragline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cragline") / "cragline.sqlite"
    return sqlite_loaded(path, CRAGLINE_DDL, ROWS)


@pytest.fixture(scope="module")
def cragline(cragline_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(cragline_path, "cragline")


@pytest.fixture(scope="module")
def cragline_db(cragline_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{cragline_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(
    schema: SchemaSnapshot,
    question: str,
    layer: SemanticLayer = LAYER,
    dialect: str = "sqlite",
) -> str:
    request = GenerationRequest(question=question, schema=schema, semantic=layer, dialect=dialect)
    return BuiltinGenerator().generate(request).sql


def test_the_gold_data_has_what_the_questions_need(cragline_db: sqlite3.Connection) -> None:
    def one(sql: str) -> Any:
        return cragline_db.execute(sql).fetchone()[0]

    # a quarter of 2024 with joins and no leavers: a missing side must count as 0
    assert one("SELECT COUNT(*) FROM members WHERE joined_on BETWEEN '2024-01-01' AND '2024-03-31'")
    assert not one("SELECT COUNT(*) FROM members WHERE left_on < '2024-07-01'")
    assert one("SELECT COUNT(*) FROM members WHERE left_on >= '2024-07-01'") >= 5
    assert one("SELECT COUNT(*) FROM passes WHERE refunded_on IS NOT NULL") >= 10


_QUARTER = "(CAST(strftime('%m', {d}) AS INTEGER) + 2) / 3"
NET_BY_QUARTER = (
    "SELECT q, SUM(delta) FROM ("
    f"SELECT {_QUARTER.format(d='joined_on')} AS q, 1 AS delta FROM members"
    " WHERE joined_on >= '2024-01-01' AND joined_on < '2025-01-01'"
    f" UNION ALL SELECT {_QUARTER.format(d='left_on')} AS q, -1 AS delta FROM members"
    " WHERE left_on >= '2024-01-01' AND left_on < '2025-01-01') GROUP BY q ORDER BY q"
)
NET_BY_MONTH = (
    "SELECT m, SUM(delta) FROM ("
    "SELECT strftime('%Y-%m', joined_on) AS m, 1 AS delta FROM members"
    " WHERE joined_on >= '2024-01-01' AND joined_on < '2025-01-01'"
    " UNION ALL SELECT strftime('%Y-%m', left_on) AS m, -1 AS delta FROM members"
    " WHERE left_on >= '2024-01-01' AND left_on < '2025-01-01') GROUP BY m ORDER BY m"
)
SALES_2024 = (
    "SELECT SUM(price) FROM passes WHERE refunded_on IS NULL"
    " AND sold_on >= '2024-01-01' AND sold_on < '2025-01-01'"
)
REFUNDS_2024 = (
    "SELECT SUM(price) FROM passes WHERE refunded_on IS NOT NULL"
    " AND refunded_on >= '2024-01-01' AND refunded_on < '2025-01-01'"
)

COMBINED = [
    ("Net new members per quarter in 2024: joins minus leavers", NET_BY_QUARTER),
    ("Net change per quarter in 2024: joins minus leavers", NET_BY_QUARTER),
    ("Joins minus leavers by month in 2024", NET_BY_MONTH),
    ("What was the number of joins minus the number of leavers per month in 2024?", NET_BY_MONTH),
    ("Pass sales minus refunds in 2024", f"SELECT ({SALES_2024}) - ({REFUNDS_2024})"),
    ("Refunds divided by pass sales in 2024", f"SELECT 1.0 * ({REFUNDS_2024}) / ({SALES_2024})"),
]


@pytest.mark.parametrize(("question", "gold"), COMBINED, ids=[q for q, _ in COMBINED])
def test_a_figure_from_several_measures_dates_each_by_its_own_date(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(cragline_db, ask(cragline, question), gold)


def test_the_combined_figure_is_explained_part_by_part(cragline: SchemaSnapshot) -> None:
    request = GenerationRequest(
        question="Net new members per quarter in 2024: joins minus leavers",
        schema=cragline,
        semantic=LAYER,
    )
    generation = BuiltinGenerator().generate(request)
    assert generation.recognised["measures"] == ["joins", "leavers"]
    assert "(1) minus (2)" in generation.explanation
    assert "joined_on" in generation.explanation and "left_on" in generation.explanation
    assert generation.confidence is not None and generation.confidence > 0


@pytest.mark.parametrize(
    "question",
    [
        "Pass sales divided by refunds minus joins in 2024",  # no order of operations guessed
        "Bouldering change per quarter in 2024: joins minus leavers",  # a value in the name
    ],
)
def test_a_combination_read_only_in_part_is_declined(
    cragline: SchemaSnapshot, question: str
) -> None:
    with pytest.raises(QuestionNotUnderstood):
        ask(cragline, question)


FISCAL_APRIL = LAYER.model_copy(update={"fiscal_year_start_month": 4})


def _sold(first: str, end: str) -> str:
    return (
        "SELECT SUM(price) FROM passes WHERE refunded_on IS NULL"
        f" AND sold_on >= '{first}' AND sold_on < '{end}'"
    )


NUMBERED = [
    ("end", "Pass sales in FY2024", _sold("2023-04-01", "2024-04-01")),
    ("start", "Pass sales in FY2024", _sold("2024-04-01", "2025-04-01")),
    ("end", "Pass sales for fiscal year 2024", _sold("2023-04-01", "2024-04-01")),
    ("end", "Pass sales in Q3 FY2024", _sold("2023-10-01", "2024-01-01")),
    ("end", "Pass sales in FY24 Q1", _sold("2023-04-01", "2023-07-01")),
    (None, "Pass sales in FY2023-24", _sold("2023-04-01", "2024-04-01")),
]


@pytest.mark.parametrize(
    ("named_by", "question", "gold"), NUMBERED, ids=[f"{n}-{q}" for n, q, _ in NUMBERED]
)
def test_numbered_fiscal_years_follow_the_layers_naming(
    cragline: SchemaSnapshot,
    cragline_db: sqlite3.Connection,
    named_by: str | None,
    question: str,
    gold: str,
) -> None:
    layer = FISCAL_APRIL.model_copy(update={"fiscal_year_named_by": named_by})
    assert_same_answer(cragline_db, ask(cragline, question, layer), gold)


def test_a_numbered_fiscal_year_the_layer_does_not_name_is_declined(
    cragline: SchemaSnapshot,
) -> None:
    with pytest.raises(QuestionNotUnderstood, match="starts or ends in"):
        ask(cragline, "Pass sales in FY2024", FISCAL_APRIL)


def test_a_january_fiscal_year_is_the_calendar_year(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection
) -> None:
    assert_same_answer(
        cragline_db, ask(cragline, "Pass sales in FY2024"), _sold("2024-01-01", "2025-01-01")
    )


PREVIOUS = [
    # today is 2025-05-20; an April fiscal year has quarters Apr-Jun, Jul-Sep, Oct-Dec, Jan-Mar
    ("How much were pass sales last quarter?", LAYER, _sold("2025-01-01", "2025-04-01")),
    ("Pass sales last month", LAYER, _sold("2025-04-01", "2025-05-01")),
    ("Pass sales last year", LAYER, _sold("2024-01-01", "2025-01-01")),
    ("Pass sales in the last 3 months", LAYER, _sold("2025-02-20", "2025-05-21")),
    ("Pass sales year to date", FISCAL_APRIL, _sold("2025-01-01", "2025-05-21")),
    ("Pass sales YTD", LAYER, _sold("2025-01-01", "2025-05-21")),
    ("Pass sales fiscal year to date", FISCAL_APRIL, _sold("2025-04-01", "2025-05-21")),
    (
        "Pass sales FYTD",
        FISCAL_APRIL.model_copy(update={"fiscal_year_start_month": 7}),
        _sold("2024-07-01", "2025-05-21"),
    ),
    (
        "Pass sales quarter to date",
        LAYER.model_copy(update={"fiscal_year_start_month": 2}),
        _sold("2025-05-01", "2025-05-21"),
    ),
    (
        "Pass sales previous quarter",
        LAYER.model_copy(update={"fiscal_year_start_month": 2}),
        _sold("2024-11-01", "2025-02-01"),
    ),
]


@pytest.mark.parametrize(
    ("question", "layer", "gold"),
    PREVIOUS,
    ids=[f"{q}-{layer.fiscal_year_start_month}" for q, layer, _ in PREVIOUS],
)
def test_last_quarter_is_the_whole_previous_period(
    cragline: SchemaSnapshot,
    cragline_db: sqlite3.Connection,
    question: str,
    layer: SemanticLayer,
    gold: str,
) -> None:
    assert_same_answer(cragline_db, ask(cragline, question, layer), gold)


@pytest.mark.parametrize(
    "question",
    [
        "How many joins since last year?",
        "How many members joined before last quarter?",
        "Pass sales compared with last year",
        "Pass sales since FY2024",
    ],
)
def test_a_period_used_as_a_bound_or_a_comparison_is_declined(
    cragline: SchemaSnapshot, question: str
) -> None:
    # the whole period would be read as the time asked about: a wrong answer
    with pytest.raises(QuestionNotUnderstood):
        ask(cragline, question)


RANKED_TOP = (
    "SELECT c.full_name, SUM(p.price) FROM passes p JOIN members m ON m.member_id = p.member_id"
    " JOIN coaches c ON c.coach_id = m.coach_id WHERE p.refunded_on IS NULL"
    " GROUP BY c.coach_id, c.full_name ORDER BY SUM(p.price) DESC LIMIT 2"
)


@pytest.mark.parametrize(
    "question",
    [
        "Rank coaches by pass sales and give me the top 2 with their totals.",
        "Rank coaches by pass sales under management and show the top two",
    ],
)
def test_a_ranking_by_a_measure_keeps_the_top_rows_asked_for(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection, question: str
) -> None:
    assert_same_answer(cragline_db, ask(cragline, question), RANKED_TOP)


def test_the_rows_a_key_refers_to_are_ranked_by_a_quantity_of_a_measure(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection
) -> None:
    sql = ask(cragline, "Which two instructors carry the biggest book of pass sales, and how much?")
    assert_same_answer(cragline_db, sql, RANKED_TOP)


def test_a_measure_after_to_says_how_the_first_came_about(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection
) -> None:
    gold = (
        "SELECT c.full_name FROM members m JOIN coaches c ON c.coach_id = m.coach_id"
        " WHERE m.left_on IS NOT NULL GROUP BY c.coach_id, c.full_name"
        " ORDER BY COUNT(*) DESC LIMIT 1"
    )
    counts = cragline_db.execute(
        "SELECT COUNT(*) FROM members WHERE left_on IS NOT NULL GROUP BY coach_id ORDER BY 1 DESC"
    ).fetchall()
    assert counts[0] > counts[1], "the gold needs one instructor who lost the most"
    sql = ask(cragline, "Which instructor has lost the most members to attrition?")
    assert_same_answer(cragline_db, sql, gold)


def test_words_before_a_column_its_synonym_or_name_holds_are_its_own(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection
) -> None:
    # "monthly" is in `monthly_fee`, "per" in "per-person fee": no bucket, no grouping
    sql = ask(cragline, "List every tariff with its monthly per-person fee, cheapest first.")
    gold = "SELECT tariff_name, monthly_fee FROM tariffs ORDER BY monthly_fee"
    assert_same_answer(cragline_db, sql, gold)


def test_a_segment_said_to_apply_to_a_measures_rows_lists_the_segment(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection
) -> None:
    # "to new members" says to whom the tariffs are no longer sold, not a count of joins
    sql = ask(cragline, "Which tariffs are no longer sold to new members?")
    assert_same_answer(cragline_db, sql, "SELECT tariff_name FROM tariffs WHERE is_retired = 1")


def test_who_they_are_is_not_answered_with_one_figure(cragline: SchemaSnapshot) -> None:
    # (the sentence's capital does not keep "Above-average" one word: read as "above average")
    with pytest.raises(QuestionNotUnderstood, match="which rows|no value to compare with"):
        ask(cragline, "Above-average members by pass sales: who are they?")


def test_the_prompt_says_how_fiscal_years_are_named(cragline: SchemaSnapshot) -> None:
    layer = FISCAL_APRIL.model_copy(update={"fiscal_year_named_by": "end"})
    request = GenerationRequest(question="Pass sales in FY2024", schema=cragline, semantic=layer)
    prompt = build_prompt(request)
    text = "\n".join([prompt.system, *(m.content for m in prompt.messages)])
    assert "The fiscal year starts in April." in text
    assert "FY<year> is the fiscal year that ends in <year>." in text


DIALECT_QUESTIONS = [
    "Net new members per quarter in 2024: joins minus leavers",
    "Joins minus leavers by month in 2024",
    "Pass sales minus refunds in 2024",
]


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        date.fromisoformat(v) if isinstance(v, str) and len(v) == 10 and v[4] == "-" else v
        for v in row
    )


def _rounded(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in plain(result)]


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_duckdb_rendering_runs_and_agrees(
    cragline: SchemaSnapshot, cragline_db: sqlite3.Connection, question: str
) -> None:
    conn = duckdb_loaded(CRAGLINE_DDL, ROWS)
    try:
        expected = cragline_db.execute(ask(cragline, question)).fetchall()
        sql = ask(cragline, question, dialect="duckdb")
        got = conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert results_match(_rounded(expected), _rounded(got), ordered=True), sql


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_postgres_rendering_runs_and_agrees(
    cragline: SchemaSnapshot,
    cragline_db: sqlite3.Connection,
    request: pytest.FixtureRequest,
    question: str,
) -> None:
    with postgres_loaded(request, CRAGLINE_DDL, ROWS, typed=_typed) as conn:
        expected = cragline_db.execute(ask(cragline, question)).fetchall()
        sql = ask(cragline, question, dialect="postgres")
        got = [tuple(r) for r in conn.execute(sqlalchemy.text(sql))]
    assert results_match(_rounded(expected), _rounded(got), ordered=True), sql
