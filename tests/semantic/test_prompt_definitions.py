"""The layer in LLM prompts: chosen by relevance to the question, within the token budget."""

from __future__ import annotations

import datetime as dt

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.prompt import PROMPT_TOKEN_BUDGET, build_prompt
from backend.semantic.layer import Measure, NamedFilter, SemanticLayer, TableDefinition


def _table(name: str, *columns: str) -> TableInfo:
    return TableInfo(name=name, columns=[ColumnInfo(name=c, type="INTEGER") for c in columns])


SNAPSHOT = SchemaSnapshot(
    db_type="sqlite",
    database_name="crm",
    tables=[
        _table("accounts", "id", "name", "churned_at"),
        _table("invoices", "id", "account_id", "amount", "paid_date"),
        *(_table(f"audit_{i}", "id", "payload", "created_at") for i in range(60)),
    ],
)


def _layer(measures: int) -> SemanticLayer:
    return SemanticLayer(
        tables=[TableDefinition(name="accounts", synonyms=["clients"])],
        measures=[
            Measure(
                name="revenue",
                table="invoices",
                expression="SUM(invoices.amount)",
                filter="invoices.paid_date IS NOT NULL",
            ),
            *(
                Measure(
                    name=f"metric number {i}",
                    table=f"audit_{i % 60}",
                    expression="COUNT(*)",
                    description="An internal figure nobody asks about. " * 3,
                )
                for i in range(measures)
            ),
        ],
        filters=[
            NamedFilter(name="active client", table="accounts", condition="churned_at IS NULL")
        ],
        today=dt.date(2024, 6, 30),
        instructions=["Amounts are in USD."],
    )


def test_relevant_definitions_come_first_and_the_prompt_stays_within_budget() -> None:
    request = GenerationRequest(
        question="revenue from active clients", schema=SNAPSHOT, semantic=_layer(400)
    )
    prompt = build_prompt(request)
    assert prompt.estimated_tokens <= PROMPT_TOKEN_BUDGET
    assert set(prompt.definitions[:3]) == {
        "table:accounts",
        "measure:revenue",
        "filter:active client",
    }
    assert "SUM(invoices.amount)" in prompt.system and "Today is 2024-06-30" in prompt.system
    assert "Amounts are in USD." in prompt.system
    assert len(prompt.definitions) < 400  # the rest did not fit
    # The layer's synonym ranks `accounts` among the tables shown in full.
    assert "accounts" in prompt.tables[:3] and "invoices" in prompt.tables[:3]


def test_without_a_layer_the_prompt_has_no_definitions_section() -> None:
    prompt = build_prompt(GenerationRequest(question="revenue", schema=SNAPSHOT))
    assert prompt.definitions == [] and "Business definitions" not in prompt.system
