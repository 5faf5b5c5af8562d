"""The OpenAI-compatible and Anthropic generators against a real HTTP server on loopback."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.core.errors import UpstreamError, UpstreamTimeout, install_error_handlers
from backend.nl2sql.engines.anthropic import ANTHROPIC_VERSION, AnthropicGenerator
from backend.nl2sql.engines.base import Example, GenerationError, Turn
from backend.nl2sql.engines.http import parse_retry_after, scrub
from backend.nl2sql.engines.llm import build_llm_generator, estimate_cost
from backend.nl2sql.engines.openai_compat import OpenAIGenerator
from backend.nl2sql.errors import LlmNotConfigured, LlmProviderError, LlmReplyInvalid, LlmTimeout
from tests.nl2sql.provider_server import (
    API_KEY,
    OPENAI,
    SQL,
    Provider,
    ProviderServer,
    Reply,
    anthropic_reply,
    ask,
    openai_reply,
    provider_server,
)


def prompt_text(body: dict[str, Any]) -> str:
    """Everything the model was shown, whichever wire format carried it."""
    parts = [str(body.get("system", ""))]
    parts += [str(m["content"]) for m in body["messages"]]
    return "\n".join(parts)


def test_a_plain_reply_becomes_a_generation_with_the_providers_token_counts(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(provider.reply(f"```sql\n{SQL};\n```\nCounts customers per country.", model="m-1"))
    generation = provider.make(server).generate(ask(shop))

    assert generation.sql == SQL
    assert generation.explanation == "Counts customers per country."
    assert (generation.prompt_tokens, generation.completion_tokens) == (120, 30)
    assert generation.model == "m-1"
    assert "customers" in generation.recognised["tables"]


def test_the_request_carries_the_providers_headers_model_and_prompt(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(provider.reply(SQL))
    provider.make(server).generate(ask(shop, model="chosen-model"))

    [request] = server.requests
    assert request.path == provider.path
    body = request.body
    assert body["model"] == "chosen-model"
    assert body["temperature"] == 0
    if provider is OPENAI:
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert "x-api-key" not in request.headers
        assert body["messages"][0]["role"] == "system"
    else:
        assert request.headers["x-api-key"] == API_KEY
        assert request.headers["anthropic-version"] == ANTHROPIC_VERSION
        assert "authorization" not in request.headers
        assert body["max_tokens"] > 0
        assert body["messages"][0]["role"] == "user"
    assert body["messages"][-1] == {"role": "user", "content": "How many customers per country?"}
    text = prompt_text(body)
    assert "CREATE TABLE customers (" in text
    assert "country TEXT NOT NULL" in text
    assert "LIMIT 1000" in text


@pytest.mark.parametrize(
    "reply",
    [
        f'{{"sql": "{SQL};", "explanation": "Counts."}}',
        f"SQL: {SQL}",
        f"Here is the query you asked for:\n\n{SQL};\n\nIt counts customers.",
        f"```\n{SQL}\n```",
    ],
    ids=["json", "sql-prefix", "prose", "plain-fence"],
)
def test_sql_is_extracted_from_each_reply_style(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, reply: str
) -> None:
    server.add(provider.reply(reply))
    assert provider.make(server).generate(ask(shop)).sql == SQL


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, b"{not json"),
        Reply(200, b"[1, 2]"),
        Reply(200, {"id": "x", "usage": {}}),
        "no text",
        "prose",
    ],
    ids=["malformed-json", "json-array", "missing-choices-or-content", "empty-text", "prose"],
)
def test_malformed_replies_end_in_llm_reply_invalid(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot, reply: Reply | str
) -> None:
    if reply == "no text":
        reply = provider.reply(None)
    elif reply == "prose":
        reply = provider.reply("I am sorry, I cannot answer questions about that.")
    assert isinstance(reply, Reply)
    server.add(reply)
    with pytest.raises(LlmReplyInvalid) as caught:
        provider.make(server).generate(ask(shop))
    assert caught.value.status_code == 502
    assert caught.value.code == "llm_reply_invalid"
    assert len(server.requests) == 1, "a malformed 2xx answer is not retried"


def test_a_429_waits_for_retry_after_then_succeeds(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(
        Reply(429, {"error": {"message": "rate limited"}}, headers={"Retry-After": "1"}),
        provider.reply(SQL),
    )
    generation = provider.make(server).generate(ask(shop))

    assert generation.sql == SQL
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.95
    assert generation.recognised["http_attempts"] == 2


def test_a_500_is_retried_with_backoff(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(500, {"error": {"message": "boom"}}), provider.reply(SQL))
    generation = provider.make(server, backoff_base_seconds=0.2).generate(ask(shop))

    assert generation.sql == SQL
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.19


def test_a_persistent_503_ends_in_llm_provider_error_after_the_retries(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(*[Reply(503, {"error": {"message": "overloaded"}})] * 5)
    with pytest.raises(LlmProviderError) as caught:
        provider.make(server, max_retries=2, backoff_base_seconds=0.3).generate(ask(shop))

    assert len(server.requests) == 3
    error = caught.value
    assert (error.status_code, error.code) == (502, "llm_provider_error")
    assert error.details["status_code"] == 503
    assert error.details["attempts"] == 3
    assert "overloaded" in error.message
    gaps = [
        b.received_at - a.received_at
        for a, b in zip(server.requests, server.requests[1:], strict=False)
    ]
    # Lower bounds only (a loaded machine adds time, never removes it): the base of 0.3 s
    # doubles at each retry.
    assert gaps[0] >= 0.29 and gaps[1] >= 0.59, ("back-off grows exponentially", gaps)


def test_a_retry_after_beyond_the_limit_fails_at_once(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "3600"}))
    with pytest.raises(LlmProviderError) as caught:
        provider.make(server).generate(ask(shop))
    assert len(server.requests) == 1
    assert caught.value.details["status_code"] == 429
    assert caught.value.details["retry_after_seconds"] == 3600


def test_a_slow_reply_ends_in_llm_timeout_without_retrying(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(Reply(200, provider.reply(SQL).body, delay_seconds=1.5))
    with pytest.raises(LlmTimeout) as caught:
        provider.make(server, timeout_seconds=0.3).generate(ask(shop))

    assert (caught.value.status_code, caught.value.code) == (504, "llm_timeout")
    assert len(server.requests) == 1


def test_a_401_fails_at_once_without_the_key_in_the_error(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    # Providers echo (parts of) a wrong key back; none of it may reach our message.
    echo = f"Incorrect API key provided: {API_KEY[:12]}...{API_KEY[-6:]} ({API_KEY})"
    server.add(Reply(401, {"error": {"message": echo, "type": "invalid_request_error"}}))
    with pytest.raises(LlmProviderError) as caught:
        provider.make(server).generate(ask(shop))

    assert len(server.requests) == 1
    error = caught.value
    assert error.details["status_code"] == 401
    rendered = f"{error.message} {error.details} {error!r}"
    assert API_KEY not in rendered
    assert API_KEY[:12] not in rendered
    assert API_KEY[-6:] not in rendered
    assert "Incorrect API key provided" in error.message


def test_an_unreachable_provider_ends_in_llm_provider_error(
    provider: Provider, shop: SchemaSnapshot
) -> None:
    with provider_server() as stopped:
        base_url = stopped.base_url
    generator = provider.build(
        base_url=base_url, api_key=API_KEY, model="m", backoff_base_seconds=0.01, max_retries=1
    )
    with pytest.raises(LlmProviderError) as caught:
        generator.generate(ask(shop))
    assert caught.value.details["attempts"] == 2
    assert API_KEY not in repr(generator)


def test_repairing_sends_the_failed_sql_and_its_error(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(provider.reply(SQL))
    failed = "SELECT country, COUNT(*) FROM clients GROUP BY country"
    error = "guard: unknown table 'clients'"
    assert provider.make(server).supports_repair
    provider.make(server).generate(ask(shop, repair_of=failed, repair_error=error))

    last = server.requests[0].body["messages"][-1]
    assert last["role"] == "user"
    assert failed in last["content"]
    assert error in last["content"]
    assert last["content"].startswith("How many customers per country?")


def test_repairing_after_a_database_error(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(provider.reply(SQL))
    failed = "SELECT contry FROM customers"
    error = "(sqlite3.OperationalError) no such column: contry"
    generation = provider.make(server).generate(ask(shop, repair_of=failed, repair_error=error))
    assert generation.sql == SQL
    assert "no such column: contry" in server.requests[0].body["messages"][-1]["content"]


def test_history_and_examples_reach_the_model(
    provider: Provider, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(provider.reply(SQL))
    request = ask(
        shop,
        question="and only in France?",
        history=[Turn("How many customers per country?", SQL), Turn("gibberish", None)],
        examples=[Example("How many orders?", "SELECT COUNT(*) FROM orders", verified=True)],
    )
    provider.make(server).generate(request)

    body = server.requests[0].body
    roles = [m["role"] for m in body["messages"] if m["role"] != "system"]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert SQL in prompt_text(body)
    assert "Q: How many orders?\nSQL: SELECT COUNT(*) FROM orders" in prompt_text(body)


def test_missing_usage_is_estimated_rather_than_zero(
    server: ProviderServer, shop: SchemaSnapshot
) -> None:
    reply = openai_reply(SQL)
    del reply.body["usage"]
    server.add(reply)
    generation = OPENAI.make(server).generate(ask(shop))
    assert generation.prompt_tokens > 100
    assert generation.completion_tokens == math.ceil(len(SQL) / 4)


def test_an_openai_compatible_server_without_a_key_gets_no_authorization_header(
    server: ProviderServer, shop: SchemaSnapshot
) -> None:
    server.add(openai_reply(SQL))
    OpenAIGenerator(base_url=server.base_url + "/", api_key=None, model="local").generate(ask(shop))
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].path == "/chat/completions"


@pytest.mark.parametrize(
    "error_class, status, code",
    [
        (LlmProviderError, 502, "llm_provider_error"),
        (LlmTimeout, 504, "llm_timeout"),
        (LlmReplyInvalid, 502, "llm_reply_invalid"),
        (LlmNotConfigured, 400, "llm_not_configured"),
    ],
)
def test_llm_errors_are_generation_errors_rendered_in_the_one_error_shape(
    error_class: type[Exception], status: int, code: str
) -> None:
    assert issubclass(error_class, GenerationError)
    if status == 502:
        assert issubclass(error_class, UpstreamError)
    if status == 504:
        assert issubclass(error_class, UpstreamTimeout)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise error_class("The provider failed.")

    response = TestClient(app).get("/boom")
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": "The provider failed.", "details": {}}
    }


# --- cost, factory, helpers ------------------------------------------------------------------

PRICES = {
    "gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006},
    "gpt-4o": {"prompt": 0.0025, "completion": 0.01},
}


@pytest.mark.parametrize(
    "model, prompt_tokens, completion_tokens, table, expected",
    [
        ("gpt-4o-mini", 1000, 1000, PRICES, 0.00075),
        ("gpt-4o-mini-2024-07-18", 2000, 0, PRICES, 0.0003),  # longest listed prefix
        ("gpt-4o-2024-08-06", 0, 500, PRICES, 0.005),
        ("claude-x", 1000, 1000, PRICES, None),  # unlisted: unknown, not free
        ("gpt-4o", 10, 10, {"gpt-4o": {"prompt": "cheap"}}, None),
        ("gpt-4o", 10, 10, {}, None),
        (None, 10, 10, PRICES, None),
        ("gpt-4o", 0, 0, PRICES, 0.0),
    ],
)
def test_estimate_cost(
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    table: dict[str, Any],
    expected: float | None,
) -> None:
    cost = estimate_cost(model, prompt_tokens, completion_tokens, table)
    assert cost == (pytest.approx(expected) if expected is not None else None)


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        jwt_secret=SecretStr("x" * 48),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        _env_file=None,
        **values,
    )


def test_build_llm_generator_from_settings(
    tmp_path: Path, server: ProviderServer, shop: SchemaSnapshot
) -> None:
    settings = _settings(
        tmp_path,
        openai_base_url=server.base_url,
        openai_api_key=SecretStr(API_KEY),
        anthropic_base_url=server.base_url,
        anthropic_api_key=SecretStr(API_KEY),
        anthropic_model="claude-from-settings",
        llm_timeout_seconds=7,
    )
    openai = build_llm_generator("openai", settings, model="gpt-chosen")
    anthropic = build_llm_generator("anthropic", settings)
    assert isinstance(openai, OpenAIGenerator) and openai.timeout_seconds == 7
    assert isinstance(anthropic, AnthropicGenerator)

    server.add(openai_reply(SQL), anthropic_reply(SQL))
    openai.generate(ask(shop))
    anthropic.generate(ask(shop))
    assert [r.body["model"] for r in server.requests] == ["gpt-chosen", "claude-from-settings"]


def test_build_llm_generator_refuses_unknown_or_unconfigured(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with pytest.raises(LlmNotConfigured):
        build_llm_generator("anthropic", settings)
    with pytest.raises(LlmNotConfigured):
        build_llm_generator("gpt-magic", settings)


@pytest.mark.parametrize(
    "header, expected",
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("soon", None),
        (None, None),
        ("", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_scrub_masks_whole_and_partial_keys() -> None:
    text = f"key {API_KEY} or {API_KEY[:10]}... or ...{API_KEY[-9:]}"
    assert API_KEY[2:10] not in scrub(text, (API_KEY,))
    assert API_KEY[-9:-1] not in scrub(text, (API_KEY,))
    assert scrub("nothing secret", (API_KEY,)) == "nothing secret"


def test_no_log_line_carries_the_key(
    provider: Provider,
    server: ProviderServer,
    shop: SchemaSnapshot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    echo = {"error": {"message": f"bad key {API_KEY}"}}
    server.add(Reply(503, echo), Reply(503, echo), Reply(401, echo))
    with pytest.raises(LlmProviderError):
        provider.make(server).generate(ask(shop))

    assert len(server.requests) == 3
    assert "retrying" in caplog.text
    assert API_KEY not in caplog.text
    assert API_KEY[8:20] not in caplog.text
