"""The LLM providers' event-loop path (`generate_async`, what every HTTP ask uses) against a
real provider server on loopback: many calls waiting at once share one pool of reused
connections, and slow, failing and unreachable providers end as the blocking path ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import Generation
from backend.nl2sql.engines.http import close_clients, env_proxy
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


@pytest.fixture
def fresh_proxy_lookup() -> Any:
    """The environment's proxy is read once per provider origin: forget what earlier tests
    read, before and after."""
    env_proxy.cache_clear()
    yield
    env_proxy.cache_clear()


def test_a_netrc_entry_for_the_provider_does_not_break_a_keyed_call(
    provider: Provider,
    server: ProviderServer,
    shop: SchemaSnapshot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_proxy_lookup: None,
) -> None:
    """The call carries its provider's key and nothing from ~/.netrc (with the environment
    trusted wholesale, a netrc entry for the host failed every OpenAI call: "Cannot combine
    AUTHORIZATION header with AUTH argument")."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    server.add(provider.reply(SQL))
    generation = _run(provider.make(server).generate_async(ask(shop)))
    assert generation.sql == SQL
    headers = server.requests[0].headers
    assert "elsewhere" not in str(headers)
    assert not headers.get("authorization", "").startswith("Basic"), headers


def test_calls_go_through_the_environments_proxy(
    provider: Provider,
    server: ProviderServer,
    shop: SchemaSnapshot,
    monkeypatch: pytest.MonkeyPatch,
    fresh_proxy_lookup: None,
) -> None:
    """`HTTP_PROXY` is honoured (the loopback server stands in for the proxy: it is sent the
    provider's absolute URL); `NO_PROXY` leaves a host out."""
    with provider_server() as unreachable:
        target = unreachable.base_url  # closed: only the proxy can answer
    monkeypatch.setenv("HTTP_PROXY", server.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.add(provider.reply(SQL))
    generator = provider.build(
        base_url=target, api_key=API_KEY, model="m", backoff_base_seconds=0.01, max_retries=0
    )
    assert _run(generator.generate_async(ask(shop))).sql == SQL
    assert server.requests[0].path.startswith(target + "/"), server.requests[0].path

    env_proxy.cache_clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(LlmProviderError):
        _run(generator.generate_async(ask(shop)))
    assert len(server.requests) == 1
