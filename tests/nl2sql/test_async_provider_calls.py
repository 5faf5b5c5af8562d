"""The LLM providers' event-loop path (`generate_async`, what every HTTP ask uses) against a
real provider server on loopback: many calls waiting at once share one pool of reused
connections, and slow, failing and unreachable providers end as the blocking path ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import Generation
from backend.nl2sql.engines.http import close_clients
from backend.nl2sql.errors import LlmProviderError, LlmTimeout
from tests.nl2sql.provider_server import (
    API_KEY,
    SQL,
    Provider,
    ProviderServer,
    Reply,
    ask,
    provider_server,
)

_T = TypeVar("_T")
WAITING_AT_ONCE = 64


def _run(work: Coroutine[Any, Any, _T]) -> _T:
    """Run `work` on a fresh event loop, then close that loop's pooled provider connections."""

    async def main() -> _T:
        try:
            return await work
        finally:
            await close_clients()

    return asyncio.run(main())


@pytest.fixture
def keep_alive_server() -> Any:
    with provider_server(keep_alive=True) as running:
        yield running


def test_many_waiting_calls_complete_and_reuse_their_connections(
    provider: Provider, keep_alive_server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server = keep_alive_server
    for _ in range(2 * WAITING_AT_ONCE):
        reply = provider.reply(SQL)
        reply.delay_seconds = 0.3
        server.add(reply)
    generator = provider.make(server)

    async def rounds() -> list[list[Generation]]:
        done = []
        for _ in range(2):
            calls: list[Awaitable[Generation]] = [
                generator.generate_async(ask(shop)) for _ in range(WAITING_AT_ONCE)
            ]
            done.append(list(await asyncio.gather(*calls)))
        return done

    first, second = _run(rounds())
    assert [g.sql for g in first + second] == [SQL] * (2 * WAITING_AT_ONCE)
    ports = [r.client_port for r in server.requests]
    assert len(ports) == 2 * WAITING_AT_ONCE
    first_ports, second_ports = set(ports[:WAITING_AT_ONCE]), set(ports[WAITING_AT_ONCE:])
    # Every call of the first round waited at once, each on a connection of its own; the
    # second round opened none: it reused the first round's connections.
    assert len(first_ports) == WAITING_AT_ONCE
    assert second_ports <= first_ports


def test_a_slow_reply_times_out_without_retrying(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(200, provider.reply(SQL).body, delay_seconds=1.5))
    generator = provider.make(server, timeout_seconds=0.3)
    with pytest.raises(LlmTimeout) as caught:
        _run(generator.generate_async(ask(shop)))
    assert (caught.value.status_code, caught.value.code) == (504, "llm_timeout")
    assert len(server.requests) == 1


def test_a_trickling_reply_times_out(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    # Each byte arrives well within the read timeout, the whole answer far beyond it.
    server.add(Reply(200, {"pad": "x" * 200}, trickle_seconds=0.02))
    generator = provider.make(server, timeout_seconds=0.5)
    with pytest.raises(LlmTimeout):
        _run(generator.generate_async(ask(shop)))


def test_a_503_is_retried_then_answers(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(503, {"error": {"message": "overloaded"}}), provider.reply(SQL))
    generator = provider.make(server, backoff_base_seconds=0.01)
    generation = _run(generator.generate_async(ask(shop)))
    assert generation.sql == SQL
    assert len(server.requests) == 2


def test_a_401_fails_at_once_without_the_key_in_the_error(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(401, {"error": {"message": f"Incorrect API key provided: {API_KEY}"}}))
    with pytest.raises(LlmProviderError) as caught:
        _run(provider.make(server).generate_async(ask(shop)))
    assert len(server.requests) == 1
    assert caught.value.details["status_code"] == 401
    assert API_KEY not in f"{caught.value.message} {caught.value.details}"


def test_an_unreachable_provider_ends_in_llm_provider_error(
    provider: Provider, shop: SchemaSnapshot
) -> None:
    with provider_server() as stopped:
        base_url = stopped.base_url
    generator = provider.build(
        base_url=base_url, api_key=API_KEY, model="m", backoff_base_seconds=0.01, max_retries=1
    )
    with pytest.raises(LlmProviderError) as caught:
        _run(generator.generate_async(ask(shop)))
    assert caught.value.details["attempts"] == 2
    assert caught.value.status_code == 502
