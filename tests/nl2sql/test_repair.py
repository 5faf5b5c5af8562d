"""The repair loop with the LLM generators on loopback and the real executor on the demo shop."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlglot
from sqlalchemy import Engine
from sqlglot import exp

from backend.connections.errors import TargetDatabaseError
from backend.connections.executor import QueryResult, execute_query, open_sqlite_read_only
from backend.connections.snapshot import SchemaSnapshot
from backend.core.errors import ValidationFailed
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.nl2sql.engines.repair import generate_with_repair
from backend.nl2sql.errors import LlmTimeout
from tests.nl2sql.provider_server import SQL, Provider, ProviderServer, Reply, ask


class Refused(ValidationFailed):
    code = "sql_refused"


@pytest.fixture(scope="module")
def demo_engine() -> Iterator[Engine]:
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    yield engine
    engine.dispose()


def checker(engine: Engine, shop: SchemaSnapshot):  # type: ignore[no-untyped-def]
    """A small guard (one SELECT over known tables), then the real read-only executor."""

    def check(sql: str) -> QueryResult:
        statements = sqlglot.parse(sql, read="sqlite")
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise Refused("Only one read-only SELECT is allowed.")
        for table in statements[0].find_all(exp.Table):
            if shop.table(table.name) is None:
                raise Refused(f"Unknown table {table.name!r}.")
        return execute_query(engine, sql, row_cap=100)

    return check


REPAIRABLE = (Refused, TargetDatabaseError)


def test_repair_after_a_guard_refusal(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, demo_engine: Engine
) -> None:
    server.add(provider.reply("```sql\nDELETE FROM customers\n```"), provider.reply(SQL))
    outcome = generate_with_repair(
        provider.make(server), ask(shop), checker(demo_engine, shop), repairable=REPAIRABLE
    )

    assert outcome.succeeded
    assert outcome.generation.sql == SQL
    assert outcome.result is not None and outcome.result.row_count > 5
    assert [f.sql for f in outcome.failures] == ["DELETE FROM customers"]
    assert (outcome.generation.prompt_tokens, outcome.generation.completion_tokens) == (240, 60)
    repair_message = server.requests[1].body["messages"][-1]["content"]
    assert "DELETE FROM customers" in repair_message
    assert "Only one read-only SELECT is allowed." in repair_message


def test_repair_after_a_database_error(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, demo_engine: Engine
) -> None:
    server.add(provider.reply("SELECT contry FROM customers LIMIT 5"), provider.reply(SQL))
    outcome = generate_with_repair(
        provider.make(server), ask(shop), checker(demo_engine, shop), repairable=REPAIRABLE
    )

    assert outcome.succeeded
    assert "no such column: contry" in outcome.failures[0].error
    assert "no such column: contry" in server.requests[1].body["messages"][-1]["content"]


def test_repairs_are_bounded_and_the_last_error_is_returned(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, demo_engine: Engine
) -> None:
    server.add(*[provider.reply("SELECT nope FROM customers")] * 4)
    outcome = generate_with_repair(
        provider.make(server),
        ask(shop),
        checker(demo_engine, shop),
        repairable=REPAIRABLE,
        max_repairs=2,
    )

    assert not outcome.succeeded
    assert isinstance(outcome.error, TargetDatabaseError)
    assert len(outcome.failures) == 3
    assert len(server.requests) == 3
    assert outcome.generation.prompt_tokens == 360


def test_a_provider_failure_during_repair_propagates(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, demo_engine: Engine
) -> None:
    server.add(
        provider.reply("SELECT nope FROM customers"),
        Reply(200, provider.reply(SQL).body, delay_seconds=1.0),
    )
    with pytest.raises(LlmTimeout):
        generate_with_repair(
            provider.make(server, timeout_seconds=0.3),
            ask(shop),
            checker(demo_engine, shop),
            repairable=REPAIRABLE,
        )


class FixedGenerator(SqlGenerator):
    """A generator that cannot repair: always the same SQL."""

    name = "fixed"

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.calls = 0

    def generate(self, request: GenerationRequest) -> Generation:
        self.calls += 1
        return Generation(sql=self.sql, explanation="fixed", prompt_tokens=1)


def test_a_generator_without_repair_gets_one_attempt(
    shop: SchemaSnapshot, demo_engine: Engine
) -> None:
    generator = FixedGenerator("SELECT nope FROM customers")
    outcome = generate_with_repair(
        generator, ask(shop), checker(demo_engine, shop), repairable=REPAIRABLE
    )
    assert generator.calls == 1
    assert isinstance(outcome.error, TargetDatabaseError)
