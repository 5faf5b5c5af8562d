"""Prompt building (relevant tables within a token budget) and SQL extraction from replies."""

from __future__ import annotations

import pytest

from backend.connections.snapshot import ColumnInfo, ForeignKeyInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.engines.base import Example, GenerationRequest, Turn
from backend.nl2sql.engines.prompt import (
    PROMPT_TOKEN_BUDGET,
    build_prompt,
    estimate_tokens,
    extract_sql,
    rank_tables,
    render_table,
    split_identifier,
)
from backend.nl2sql.errors import LlmReplyInvalid

WORDS = [
    "account",
    "audit",
    "batch",
    "campaign",
    "channel",
    "contract",
    "device",
    "event",
    "feature",
    "grant",
    "incident",
    "ledger",
    "license",
    "metric",
    "note",
    "partner",
    "plan",
    "policy",
    "queue",
    "region",
    "release",
    "request",
    "rule",
    "segment",
    "session",
    "shift",
    "sku",
    "team",
    "ticket",
    "token",
    "usage",
    "warehouse",
    "widget",
    "workflow",
    "zone",
]


def _column(name: str, type_: str = "TEXT", **kw: object) -> ColumnInfo:
    return ColumnInfo(name=name, type=type_, **kw)  # type: ignore[arg-type]


def synthetic_schema(table_count: int = 300) -> SchemaSnapshot:
    """A large schema: filler tables made of common words, plus the few a question names."""
    tables = [
        TableInfo(
            name="vendors",
            columns=[
                _column("id", "INTEGER", primary_key=True),
                _column("vendor_name"),
                _column("country", sample_values=["France", "Japan", "Peru"]),
            ],
        ),
        TableInfo(
            name="invoices",
            columns=[
                _column("id", "INTEGER", primary_key=True),
                _column("vendor_id", "INTEGER"),
                _column("amount", "NUMERIC(12,2)"),
                _column("issued_on", "DATE"),
            ],
            foreign_keys=[
                ForeignKeyInfo(
                    columns=["vendor_id"], referred_table="vendors", referred_columns=["id"]
                )
            ],
        ),
        TableInfo(
            name="invoice_lines",
            columns=[
                _column("id", "INTEGER", primary_key=True),
                _column("invoice_id", "INTEGER"),
                _column("sku_code"),
            ],
            foreign_keys=[
                ForeignKeyInfo(
                    columns=["invoice_id"], referred_table="invoices", referred_columns=["id"]
                )
            ],
        ),
    ]
    index = 0
    while len(tables) < table_count:
        first, second = WORDS[index % len(WORDS)], WORDS[(index * 7 + 3) % len(WORDS)]
        name = f"{first}_{second}_{index}"
        columns = [_column("id", "INTEGER", primary_key=True)]
        columns += [
            _column(f"{WORDS[(index + k) % len(WORDS)]}_{suffix}", type_)
            for k, (suffix, type_) in enumerate(
                [
                    ("code", "TEXT"),
                    ("name", "VARCHAR(200)"),
                    ("created_at", "TIMESTAMP"),
                    ("status", "TEXT"),
                    ("amount", "NUMERIC(12,2)"),
                    ("owner_id", "INTEGER"),
                    ("notes", "TEXT"),
                    ("updated_at", "TIMESTAMP"),
                    ("count", "INTEGER"),
                ]
            )
        ]
        tables.append(TableInfo(name=name, columns=columns, row_count=1000 + index))
        index += 1
    return SchemaSnapshot(db_type="postgresql", database_name="erp", tables=tables)


def test_a_300_table_schema_fits_the_budget_and_keeps_the_tables_the_question_names() -> None:
    schema = synthetic_schema(300)
    full = sum(estimate_tokens(render_table(t)) for t in schema.tables)
    assert full > 5 * PROMPT_TOKEN_BUDGET, "the schema alone would not fit"

    prompt = build_prompt(
        GenerationRequest(
            question="Total invoice amount per vendor in 2023", schema=schema, dialect="postgres"
        )
    )

    assert prompt.estimated_tokens <= PROMPT_TOKEN_BUDGET
    assert {"invoices", "vendors"} <= set(prompt.tables[:3])
    assert "invoice_lines" in prompt.tables, "an FK neighbour of a named table comes along"
    assert "CREATE TABLE invoices (" in prompt.system
    assert "vendor_id INTEGER REFERENCES vendors(id)" in prompt.system
    assert len(prompt.tables) < 300
    assert "-- Other tables" in prompt.system


def test_a_long_conversation_and_examples_still_fit_the_budget() -> None:
    schema = synthetic_schema(300)
    history = [
        Turn(f"question {i} about audit ledgers " * 20, "SELECT 1 " * 200) for i in range(20)
    ]
    examples = [Example(f"example {i} " * 10, "SELECT * FROM vendors LIMIT 10") for i in range(10)]
    prompt = build_prompt(
        GenerationRequest(
            question="Which vendors in Peru sent invoices?",
            schema=schema,
            history=history,
            examples=examples,
        )
    )
    assert prompt.estimated_tokens <= PROMPT_TOKEN_BUDGET
    assert {"vendors", "invoices"} <= set(prompt.tables)


def test_a_small_schema_is_included_whole() -> None:
    schema = synthetic_schema(12)
    prompt = build_prompt(GenerationRequest(question="anything at all", schema=schema))
    assert len(prompt.tables) == 12
    assert prompt.omitted_tables == 0
    assert "-- Other tables" not in prompt.system


@pytest.mark.parametrize(
    "name, words",
    [
        ("order_items", ["order", "item"]),
        ("OrderItems", ["order", "item"]),
        ("orderItems", ["order", "item"]),
        ("HTTPRequests", ["http", "request"]),
        ("categories", ["category"]),
        ("addresses", ["address"]),
        ("status", ["status"]),
        ("customer_id", ["customer", "id"]),
    ],
)
def test_split_identifier(name: str, words: list[str]) -> None:
    assert split_identifier(name) == words


def test_camel_case_tables_and_sample_values_count_as_matches() -> None:
    schema = SchemaSnapshot(
        db_type="sqlite",
        database_name="x",
        tables=[
            TableInfo(name="Alpha", columns=[_column("id", "INTEGER")]),
            TableInfo(name="PurchaseOrders", columns=[_column("id", "INTEGER")]),
            TableInfo(
                name="sites",
                columns=[_column("id", "INTEGER"), _column("town", sample_values=["Lyon", "Nice"])],
            ),
        ],
    )
    ranked = [t.name for t in rank_tables(schema, "purchase orders shipped to Lyon")]
    assert ranked[:2] == ["PurchaseOrders", "sites"]


def test_examples_prefer_verified_ones_and_are_capped() -> None:
    examples = [Example(f"plain question {i}", f"SELECT {i}") for i in range(6)]
    examples += [Example("verified one", "SELECT 100", verified=True)]
    prompt = build_prompt(
        GenerationRequest(question="q", schema=synthetic_schema(5), examples=examples)
    )
    assert "Q: verified one\nSQL: SELECT 100" in prompt.system
    assert prompt.system.count("Q: ") == 4


def test_rules_name_the_dialect_and_the_row_cap() -> None:
    prompt = build_prompt(
        GenerationRequest(question="q", schema=synthetic_schema(5), dialect="mysql", row_cap=250)
    )
    assert "SQL dialect: mysql" in prompt.system
    assert "LIMIT 250" in prompt.system
    assert "exactly ONE read-only SELECT" in prompt.system


def test_the_repair_section_holds_the_failed_sql_and_the_error() -> None:
    prompt = build_prompt(
        GenerationRequest(
            question="How many vendors?",
            schema=synthetic_schema(5),
            repair_of="SELECT COUNT(*) FROM vendor",
            repair_error="no such table: vendor",
        )
    )
    last = prompt.messages[-1].content
    assert "SELECT COUNT(*) FROM vendor" in last
    assert "no such table: vendor" in last
    assert "corrected query" in last


def test_render_table_with_composite_keys() -> None:
    table = TableInfo(
        name="enrolments",
        schema_name="school",
        columns=[
            _column("student_id", "INTEGER", primary_key=True, nullable=False),
            _column("course_id", "INTEGER", primary_key=True, nullable=False),
            _column("grade", sample_values=["A", "B", "it's"]),
        ],
        foreign_keys=[
            ForeignKeyInfo(
                columns=["student_id", "course_id"],
                referred_table="registrations",
                referred_columns=["student_id", "course_id"],
            )
        ],
        row_count=42,
    )
    assert render_table(table) == (
        "CREATE TABLE school.enrolments (\n"
        "  student_id INTEGER,\n"
        "  course_id INTEGER,\n"
        "  grade TEXT, -- e.g. 'A', 'B', 'it''s'\n"
        "  PRIMARY KEY (student_id, course_id),\n"
        "  FOREIGN KEY (student_id, course_id) REFERENCES registrations(student_id, course_id)\n"
        "); -- 42 rows"
    )


EXTRACTION_CASES = [
    ("```sql\nSELECT 1;\n```", "SELECT 1", None),
    ("```SQL\nSELECT 1\n```\nReturns one.", "SELECT 1", "Returns one."),
    ("Here you go:\n```\nselect * from t;\n```", "select * from t", "Here you go:"),
    ('```json\n{"sql": "SELECT 2"}\n```', "SELECT 2", None),
    ('{"sql": "SELECT 3;;", "explanation": "three"}', "SELECT 3", "three"),
    ("SQL: SELECT 4", "SELECT 4", None),
    (
        "Sure! SELECT a FROM t LIMIT 5;\nThis lists a.",
        "SELECT a FROM t LIMIT 5",
        "Sure! This lists a.",
    ),
    ("SELECT x\nFROM y\n\nThat is all.", "SELECT x\nFROM y", "That is all."),
    ("```sql\nSELECT 6 FROM t", "SELECT 6 FROM t", None),  # cut off before the closing fence
    ("with a as (select 1) select * from a;", "with a as (select 1) select * from a", None),
    ("Explanation first.\n```python\nprint(1)\n```\n```sql\nSELECT 7\n```", "SELECT 7", None),
    ("`SELECT 8`", "SELECT 8", None),
    # A keyword inside a comment is not where the SQL starts: the statement after it is what
    # runs (and the guard refuses a write), never a mangled "SELECT */ DELETE ...".
    ("/* SELECT */ DELETE FROM users", "DELETE FROM users", None),
    ("-- SELECT\nDROP TABLE t", "DROP TABLE t", None),
    ("```sql\n/* top */ SELECT 9\n```", "/* top */ SELECT 9", None),
    # A semicolon inside a string literal does not end the statement.
    (
        "Here's it: SELECT a FROM t WHERE b = 'x;y'; It counts.",
        "SELECT a FROM t WHERE b = 'x;y'",
        "Here's it: It counts.",
    ),
    # Several statements are handed on whole (the guard refuses them), not cut to the first.
    ("SELECT 1; DELETE FROM t", "SELECT 1; DELETE FROM t", None),
]


@pytest.mark.parametrize("reply, sql, explanation", EXTRACTION_CASES)
def test_extract_sql(reply: str, sql: str, explanation: str | None) -> None:
    found = extract_sql(reply)
    assert found.sql == sql
    if explanation is not None:
        assert found.explanation == explanation


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        "I cannot help with that.",
        "```\nhello there\n```",
        '{"answer": 42}',
        "I will start with the basics",
        "/* SELECT */",
        "Here: /* SELECT 1 */ nothing else",
    ],
)
def test_extract_sql_refuses_replies_without_sql(reply: str) -> None:
    with pytest.raises(LlmReplyInvalid):
        extract_sql(reply)
