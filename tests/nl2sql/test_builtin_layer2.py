"""How the builtin engine uses a semantic layer's measures and filters, on a business of another
domain written here: Spokewise, a bicycle workshop that repairs bikes for the shops it serves,
with its own layer document.

* a period next to a named measure is dated by the measure's own time column, even when a verb
  elsewhere names another event of the rows listed ("our 2024 takings came from shops ...");
* a one-word named filter that is an end of "from X to Y" is an event of a time span, not a
  segment ("hours from open to close" is not about open jobs only);
* a named filter set against its opposite ("rush versus non-rush jobs", "current and former
  clients") groups the rows by the filter's test instead of restricting them;
* a measure said to belong to the rows listed ("shops with their takings") is a figure for each,
  and so is one the rows are ranked by ("rank shops by takings": highest first);
* a superlative inside a measure's words ("lost the most clients") ranks by that measure;
* a word that names the measure's own filter ("settled takings") is read as part of it;
* "this / last fiscal year (quarter)" is the whole fiscal period, from the layer's fiscal year
  start month and its `today`;
* the layer's exact word for a column ("bill amount") wins over a measure named in another
  inflection ("billed amount");
* a filter named "<state> <rows>" is recognised said as a predicate ("bills that are settled");
* "how many open jobs ...", "more than 6 current clients" count the rows the named filter
  names; a period never falls on the
  date an "open" filter tests to be empty;
* a question that lists rows ("which shops ...") is not answered with one figure of a measure;
* a name column the layer calls the table's own (`shop_name` of a table users call "shop")
  raises no doubt that it belongs to something else, when each row is listed once.

Each answer is checked by running it and a hand-written gold query on the same SQLite file; the
new SQL shape (a group by a named filter's test) also runs on DuckDB and PostgreSQL."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

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
    sqlite_snapshot,
)

SPOKEWISE_DDL = """
CREATE TABLE mechanics (
    mechanic_id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL
);
CREATE TABLE clients (
    client_id INTEGER PRIMARY KEY,
    shop_name TEXT NOT NULL,
    town TEXT NOT NULL,
    region TEXT NOT NULL,
    created_on DATE NOT NULL,
    left_on DATE,
    look_after INTEGER
);
CREATE TABLE jobs (
    job_id INTEGER PRIMARY KEY,
    client_id INTEGER NOT NULL REFERENCES clients(client_id),
    kind TEXT NOT NULL,
    is_rush INTEGER NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(job_id),
    billed_on DATE NOT NULL,
    paid_on DATE,
    amount DOUBLE PRECISION NOT NULL
);
"""
TOWNS = [("Ashby", "North"), ("Brill", "North"), ("Colne", "South"), ("Dent", "West")]
KINDS = ["puncture", "service", "wheel build", "brakes"]
SHOPS = ["Chainring", "Freewheel", "Derailleur", "Cog", "Saddle", "Pedal", "Crank", "Sprocket"]


def _rows() -> Rows:
    rng = random.Random(23)
    clients = []
    for i in range(1, 25):
        town, region = TOWNS[i % 4]
        joined = date(2021, 3, 1) + timedelta(days=41 * i)
        gone = i % 5 == 0 or (i % 4 == 2 and i < 12)  # the South loses the most
        left = str(joined + timedelta(days=400 + 13 * i)) if gone else None
        mechanic = 1 + i % 3 if i % 4 else 1
        clients.append((i, f"{SHOPS[i % 8]} Cycles {i}", town, region, str(joined), left, mechanic))
    jobs, bills = [], []
    for i in range(1, 401):
        client = 1 + (i * 7) % 24
        opened = datetime(2023, 1, 2, 8) + timedelta(hours=rng.randint(0, 24 * 800))
        closed = None if rng.random() < 0.06 else opened + timedelta(hours=rng.randint(2, 24 * 12))
        rush = 1 if rng.random() < 0.3 else 0
        jobs.append(
            (i, client, KINDS[i % 4], rush, f"{opened:%Y-%m-%d %H:%M:%S}",
             None if closed is None else f"{closed:%Y-%m-%d %H:%M:%S}")
        )  # fmt: skip
        billed = (opened + timedelta(days=rng.randint(0, 20))).date()
        for k in range(1 if i % 5 else 2):  # some jobs are billed twice (parts, then labour)
            paid = None if rng.random() < 0.25 else str(billed + timedelta(days=rng.randint(1, 40)))
            amount = round(40 + rng.random() * 300 + 3 * client, 2)
            bills.append((len(bills) + 1, i, str(billed + timedelta(days=k)), paid, amount))
    mechanics = [(1, "Ada Spoke"), (2, "Ben Crank"), (3, "Cleo Hub")]
    return {"mechanics": mechanics, "clients": clients, "jobs": jobs, "bills": bills}


ROWS = _rows()

LAYER = SemanticLayer.model_validate(
    {
        "today": "2025-03-31",
        "tables": [
            {
                "name": "clients",
                "description": "A bike shop whose repairs we do; shops that left stay.",
                "synonyms": ["shop", "bike shop", "retailer"],
                "time_column": "created_on",
                "columns": [
                    {"name": "shop_name", "synonyms": ["shop name"]},
                    {"name": "look_after", "synonyms": ["mechanic", "mechanics"]},
                ],
            },
            {"name": "jobs", "synonyms": ["repair", "repair job"], "time_column": "opened_at"},
            {
                "name": "bills",
                "synonyms": ["invoice"],
                "time_column": "billed_on",
                "columns": [{"name": "amount", "synonyms": ["bill amount"]}],
            },
        ],
        "measures": [
            {
                "name": "takings",
                "synonyms": ["earnings"],
                "table": "bills",
                "expression": "SUM(bills.amount)",
                "filter": "bills.paid_on IS NOT NULL",
                "time_column": "bills.billed_on",
            },
            {
                "name": "turnaround",
                "synonyms": ["turnaround time"],
                "table": "jobs",
                "expression": "AVG(julianday(jobs.closed_at) - julianday(jobs.opened_at))",
                "filter": "jobs.closed_at IS NOT NULL",
                "time_column": "jobs.opened_at",
            },
            {
                "name": "amount billed",
                "synonyms": ["billed amount"],
                "table": "bills",
                "expression": "SUM(bills.amount)",
                "time_column": "bills.billed_on",
            },
            {
                "name": "lost clients",
                "synonyms": ["clients lost"],
                "table": "clients",
                "expression": "COUNT(*)",
                "filter": "clients.left_on IS NOT NULL",
                "time_column": "clients.left_on",
            },
        ],
        "joins": [
            {
                "from_table": "clients",
                "from_column": "look_after",
                "to_table": "mechanics",
                "to_column": "mechanic_id",
            }
        ],
        "filters": [
            {
                "name": "open job",
                "synonyms": ["open", "unfinished", "open jobs"],
                "table": "jobs",
                "condition": "jobs.closed_at IS NULL",
            },
            {
                "name": "rush job",
                "synonyms": ["rush", "rush jobs"],
                "table": "jobs",
                "condition": "jobs.is_rush = 1",
            },
            {
                "name": "settled bill",
                "synonyms": ["settled bills"],
                "table": "bills",
                "condition": "bills.paid_on IS NOT NULL",
            },
            {
                "name": "current client",
                "synonyms": ["current clients", "current"],
                "table": "clients",
                "condition": "clients.left_on IS NULL",
            },
            {
                "name": "former client",
                "synonyms": ["former clients", "former"],
                "table": "clients",
                "condition": "clients.left_on IS NOT NULL",
            },
        ],
    }
)


def _build(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SPOKEWISE_DDL)
    for table, data in ROWS.items():
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(data[0]))})", data)
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def spokewise_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spokewise") / "spokewise.sqlite"
    _build(path)
    return path


@pytest.fixture(scope="module")
def spokewise(spokewise_path: Path) -> SchemaSnapshot:
    return sqlite_snapshot(spokewise_path, "spokewise")


@pytest.fixture(scope="module")
def spokewise_db(spokewise_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{spokewise_path}?mode=ro", uri=True)
    yield conn
    conn.close()


def ask(schema: SchemaSnapshot, question: str, dialect: str = "sqlite") -> str:
    request = GenerationRequest(question=question, schema=schema, semantic=LAYER, dialect=dialect)
    return BuiltinGenerator().generate(request).sql


def test_the_gold_data_has_what_the_questions_need(spokewise_db: sqlite3.Connection) -> None:
    def one(sql: str) -> Any:
        return spokewise_db.execute(sql).fetchone()[0]

    assert one("SELECT COUNT(*) FROM clients WHERE left_on IS NOT NULL") >= 3
    assert one("SELECT COUNT(*) FROM jobs WHERE closed_at IS NULL") >= 15
    # sign-up years and billing years differ, so dating by the wrong one changes the answer
    assert one("SELECT COUNT(*) FROM clients WHERE created_on >= '2024-01-01'") == 0
    assert one("SELECT COUNT(*) FROM bills WHERE billed_on >= '2024-01-01'") >= 100
    # shops with more than one open job exist, and some with one only
    per_shop = "SELECT COUNT(*) AS n FROM jobs WHERE closed_at IS NULL GROUP BY client_id"
    assert one(f"SELECT COUNT(*) FROM ({per_shop}) WHERE n > 1") >= 2  # noqa: S608
    assert one(f"SELECT COUNT(*) FROM ({per_shop}) WHERE n = 1") >= 2  # noqa: S608


ANSWERED = [
    # the measure's own date, though "came" names the shops' joining event
    ("How much of our 2024 takings came from shops in the North?",
     "SELECT SUM(b.amount) FROM bills b JOIN jobs j ON j.job_id = b.job_id"
     " JOIN clients c ON c.client_id = j.client_id WHERE c.region = 'North'"
     " AND b.paid_on IS NOT NULL AND b.billed_on >= '2024-01-01' AND b.billed_on < '2025-01-01'"),
    ("What share of 2024 takings came from shops in the North?",
     "SELECT 100.0 * SUM(CASE WHEN c.region = 'North' THEN b.amount ELSE 0 END) / SUM(b.amount)"
     " FROM bills b JOIN jobs j ON j.job_id = b.job_id JOIN clients c ON c.client_id = j.client_id"
     " WHERE b.paid_on IS NOT NULL AND b.billed_on >= '2024-01-01' AND b.billed_on < '2025-01-01'"),
    ("Takings in 2024 that came from shops in the North",
     "SELECT SUM(b.amount) FROM bills b JOIN jobs j ON j.job_id = b.job_id"
     " JOIN clients c ON c.client_id = j.client_id WHERE c.region = 'North'"
     " AND b.paid_on IS NOT NULL AND b.billed_on >= '2024-01-01' AND b.billed_on < '2025-01-01'"),
    # "open" and "close" are the ends of the span, not the open-job segment
    ("Average hours from open to close, by kind",
     "SELECT kind, AVG((julianday(closed_at) - julianday(opened_at)) * 24) FROM jobs"
     " GROUP BY kind"),
    # a named filter against its opposite: one figure for each side
    ("Average turnaround for rush versus non-rush jobs",
     "SELECT is_rush, AVG(julianday(closed_at) - julianday(opened_at)) FROM jobs"
     " WHERE closed_at IS NOT NULL GROUP BY is_rush"),
    ("How many current and former clients are there?",
     "SELECT left_on IS NULL, COUNT(*) FROM clients GROUP BY left_on IS NULL"),
    ("Takings of current versus former clients",
     "SELECT c.left_on IS NULL, SUM(b.amount) FROM clients c"
     " JOIN jobs j ON j.client_id = c.client_id JOIN bills b ON b.job_id = j.job_id"
     " WHERE b.paid_on IS NOT NULL GROUP BY c.left_on IS NULL"),
    # ... but a segment said twice ("current and not former") stays one condition
    ("How many clients are current and not former?",
     "SELECT COUNT(*) FROM clients WHERE left_on IS NULL"),
    ("How many clients are not former and current?",
     "SELECT COUNT(*) FROM clients WHERE left_on IS NULL"),
    # a measure of each row listed
    ("List shops with their takings",
     "SELECT c.shop_name, SUM(b.amount) FROM clients c JOIN jobs j ON j.client_id = c.client_id"
     " JOIN bills b ON b.job_id = j.job_id WHERE b.paid_on IS NOT NULL"
     " GROUP BY c.client_id, c.shop_name"),
    ("Show the current clients and their total takings",
     "SELECT c.shop_name, SUM(b.amount) FROM clients c JOIN jobs j ON j.client_id = c.client_id"
     " JOIN bills b ON b.job_id = j.job_id WHERE b.paid_on IS NOT NULL AND c.left_on IS NULL"
     " GROUP BY c.client_id, c.shop_name"),
    # the layer's own word for a column beats a measure's name in another inflection
    ("What is the biggest bill amount?", "SELECT MAX(amount) FROM bills"),
    # a superlative inside a measure's words ranks by the measure
    ("Which region has lost the most clients?",
     "SELECT region FROM clients WHERE left_on IS NOT NULL GROUP BY region"
     " ORDER BY COUNT(*) DESC LIMIT 1"),
    # a word naming the measure's own filter ("settled" bills) is part of the measure
    ("Top 3 shops by settled takings",
     "SELECT c.shop_name, SUM(b.amount) AS t FROM clients c"
     " JOIN jobs j ON j.client_id = c.client_id JOIN bills b ON b.job_id = j.job_id"
     " WHERE b.paid_on IS NOT NULL GROUP BY c.client_id, c.shop_name ORDER BY t DESC LIMIT 3"),
    ("What were our settled takings in 2024?",
     "SELECT SUM(amount) FROM bills WHERE paid_on IS NOT NULL"
     " AND billed_on >= '2024-01-01' AND billed_on < '2025-01-01'"),
    # rows ranked by a measure: a figure for each, highest first
    ("Rank shops by takings",
     "SELECT c.shop_name, SUM(b.amount) AS t FROM clients c"
     " JOIN jobs j ON j.client_id = c.client_id JOIN bills b ON b.job_id = j.job_id"
     " WHERE b.paid_on IS NOT NULL GROUP BY c.client_id, c.shop_name ORDER BY t DESC"),
    ("Clients ranked by takings in 2024",
     "SELECT c.shop_name, SUM(b.amount) AS t FROM clients c"
     " JOIN jobs j ON j.client_id = c.client_id JOIN bills b ON b.job_id = j.job_id"
     " WHERE b.paid_on IS NOT NULL AND b.billed_on >= '2024-01-01' AND b.billed_on < '2025-01-01'"
     " GROUP BY c.client_id, c.shop_name ORDER BY t DESC"),
    # a filter named "<state> <rows>" said as a predicate: "<rows> are <state>"
    ("What percentage of bills are settled?",
     "SELECT 100.0 * SUM(paid_on IS NOT NULL) / COUNT(*) FROM bills"),
    ("How many bills are not settled?", "SELECT COUNT(*) FROM bills WHERE paid_on IS NULL"),
    # the rows a named filter names are what "how many" counts, not a table a verb names
    ("How many open jobs are billed?",
     "SELECT COUNT(DISTINCT j.job_id) FROM jobs j JOIN bills b ON b.job_id = j.job_id"
     " WHERE j.closed_at IS NULL"),
    # ... and what "more than N" compares in number ("more than 6" is no mechanic's id)
    ("Which mechanics look after more than 6 current clients?",
     "SELECT m.full_name FROM mechanics m JOIN clients c ON c.look_after = m.mechanic_id"
     " WHERE c.left_on IS NULL GROUP BY m.mechanic_id, m.full_name HAVING COUNT(*) > 6"),
    # a period does not fall on the date an "open" filter leaves empty
    ("How many open jobs were billed in 2024?",
     "SELECT COUNT(DISTINCT j.job_id) FROM jobs j JOIN bills b ON b.job_id = j.job_id"
     " WHERE j.closed_at IS NULL AND j.opened_at >= '2024-01-01' AND j.opened_at < '2025-01-01'"),
    # the shops' own name, each shop once: no doubt about whose name it is
    ("Which shops currently have more than one open job?",
     "SELECT c.shop_name FROM clients c JOIN jobs j ON j.client_id = c.client_id"
     " WHERE j.closed_at IS NULL GROUP BY c.client_id, c.shop_name HAVING COUNT(*) > 1"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), ANSWERED, ids=[q for q, _ in ANSWERED])
def test_layer_readings_answer_right(
    spokewise: SchemaSnapshot, spokewise_db: sqlite3.Connection, question: str, gold: str
) -> None:
    assert_same_answer(spokewise_db, ask(spokewise, question), gold)


def test_a_measure_next_to_a_period_is_dated_by_its_own_date(spokewise: SchemaSnapshot) -> None:
    sql = ask(spokewise, "How much of our 2024 takings came from shops in the North?")
    assert "billed_on >= '2024-01-01'" in sql
    assert "created_on" not in sql


@pytest.mark.parametrize(
    "question",
    ["Which shops brought in takings in 2024?", "Which clients are behind our takings?"],
)
def test_rows_asked_for_are_not_answered_by_one_figure(
    spokewise: SchemaSnapshot, question: str
) -> None:
    with pytest.raises(QuestionNotUnderstood) as declined:
        ask(spokewise, question)
    assert "lists rows" in declined.value.message


def test_one_figure_asked_for_by_a_listing_word_is_still_answered(
    spokewise: SchemaSnapshot, spokewise_db: sqlite3.Connection
) -> None:
    assert_same_answer(
        spokewise_db,
        ask(spokewise, "Show the total takings in 2024"),
        "SELECT SUM(amount) FROM bills WHERE paid_on IS NOT NULL"
        " AND billed_on >= '2024-01-01' AND billed_on < '2025-01-01'",
    )


FISCAL = [
    # the fiscal year starts in April; today is 2025-03-31 (the last day of fiscal 2024-25)
    ("What were our takings this fiscal year?",
     "SELECT SUM(amount) FROM bills WHERE paid_on IS NOT NULL"
     " AND billed_on >= '2024-04-01' AND billed_on < '2025-04-01'"),
    ("How many jobs were opened in the last financial year?",
     "SELECT COUNT(*) FROM jobs WHERE opened_at >= '2023-04-01' AND opened_at < '2024-04-01'"),
    ("Takings in the previous fiscal quarter",
     "SELECT SUM(amount) FROM bills WHERE paid_on IS NOT NULL"
     " AND billed_on >= '2024-10-01' AND billed_on < '2025-01-01'"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "gold"), FISCAL, ids=[q for q, _ in FISCAL])
def test_fiscal_periods_start_in_the_layers_month(
    spokewise: SchemaSnapshot, spokewise_db: sqlite3.Connection, question: str, gold: str
) -> None:
    layer = LAYER.model_copy(update={"fiscal_year_start_month": 4})
    request = GenerationRequest(question=question, schema=spokewise, semantic=layer)
    assert_same_answer(spokewise_db, BuiltinGenerator().generate(request).sql, gold)


def _confidence(schema: SchemaSnapshot, question: str, layer: SemanticLayer) -> float:
    request = GenerationRequest(question=question, schema=schema, semantic=layer)
    confidence = BuiltinGenerator().generate(request).confidence
    assert confidence is not None
    return confidence


# the same layer without its words for the shops: `shop_name` is not said to be theirs
UNNAMED = LAYER.model_copy(
    update={
        "tables": [
            t.model_copy(update={"synonyms": [], "columns": []}) if t.name == "clients" else t
            for t in LAYER.tables
        ]
    }
)


def test_the_layers_name_for_the_rows_lifts_the_doubt_about_their_label(
    spokewise: SchemaSnapshot,
) -> None:
    """Listed once each, clients shown by `shop_name`: answered when the layer calls clients
    "shops"; declined when nothing says whose name `shop_name` is."""
    question = "Which clients currently have more than one open job?"
    assert _confidence(spokewise, question, LAYER) > 0.5
    with pytest.raises(QuestionNotUnderstood) as declined:
        _confidence(spokewise, question, UNNAMED)
    assert "belong to something else" in declined.value.message


def test_rows_repeated_by_a_join_keep_the_doubt(spokewise: SchemaSnapshot) -> None:
    """Listed through their jobs, each client would show once per job: the layer's name for
    them does not make the reading any surer."""
    question = "Which clients have open rush jobs?"
    assert _confidence(spokewise, question, LAYER) == _confidence(spokewise, question, UNNAMED)


DIALECT_QUESTIONS = [
    "How many current and former clients are there?",
    "Takings of current versus former clients",
]


def _typed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """ISO text to dates and timestamps, for PostgreSQL's typed columns."""

    def value(v: Any) -> Any:
        if isinstance(v, str) and len(v) == 19 and v[4] == "-" and v[10] == " ":
            return datetime.fromisoformat(v)
        if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
            return date.fromisoformat(v)
        return v

    return tuple(value(v) for v in row)


def _sides(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A boolean group key as 0/1 and figures rounded, so dialects compare equal."""
    out = []
    for r in plain(result):
        out.append(
            tuple(
                int(v) if isinstance(v, bool) else round(v, 4) if isinstance(v, float) else v
                for v in r
            )
        )
    return out


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_duckdb_rendering_runs_and_agrees(
    spokewise: SchemaSnapshot, spokewise_db: sqlite3.Connection, question: str
) -> None:
    conn = duckdb_loaded(SPOKEWISE_DDL, ROWS)
    try:
        expected = spokewise_db.execute(ask(spokewise, question)).fetchall()
        sql = ask(spokewise, question, dialect="duckdb")
        got = conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert results_match(_sides(expected), _sides(got), ordered=False), sql


@pytest.mark.parametrize("question", DIALECT_QUESTIONS)
def test_postgres_rendering_runs_and_agrees(
    spokewise: SchemaSnapshot,
    spokewise_db: sqlite3.Connection,
    request: pytest.FixtureRequest,
    question: str,
) -> None:
    with postgres_loaded(request, SPOKEWISE_DDL, ROWS, typed=_typed) as conn:
        expected = spokewise_db.execute(ask(spokewise, question)).fetchall()
        sql = ask(spokewise, question, dialect="postgres")
        got = [tuple(r) for r in conn.execute(sqlalchemy.text(sql))]
    assert results_match(_sides(expected), _sides(got), ordered=False), sql
