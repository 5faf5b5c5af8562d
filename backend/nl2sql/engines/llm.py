"""Building an LLM generator from settings, and what its tokens cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.core.config import Settings, is_header_safe
from backend.nl2sql.engines.anthropic import AnthropicGenerator
from backend.nl2sql.engines.base import SqlGenerator
from backend.nl2sql.engines.http import DEFAULT_MAX_RETRIES
from backend.nl2sql.engines.openai_compat import OpenAIGenerator
from backend.nl2sql.errors import LlmNotConfigured

LLM_GENERATORS = ("openai", "anthropic")


def build_llm_generator(
    name: str,
    settings: Settings,
    *,
    model: str | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> SqlGenerator:
    """The `openai` or `anthropic` generator; raises `LlmNotConfigured` (400) for another name
    or for Anthropic without a key (an OpenAI-compatible local server may need none)."""
    timeout = settings.llm_timeout_seconds
    secret = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}.get(name)
    if secret is not None and not is_header_safe(secret.get_secret_value()):
        raise LlmNotConfigured(
            f"The {name} generator's API key is not usable: it must be visible ASCII "
            "characters only (it is sent in an HTTP header). Fix the key in the settings "
            "or in system config.",
            details={"generator": name},
        )
    if name == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return OpenAIGenerator(
            base_url=settings.openai_base_url,
            api_key=key,
            model=model or settings.openai_model,
            timeout_seconds=timeout,
            max_retries=max_retries,
            backoff_base_seconds=settings.llm_backoff_base_seconds,
        )
    if name == "anthropic":
        if settings.anthropic_api_key is None:
            raise LlmNotConfigured(
                "The anthropic generator needs NLSQL_ANTHROPIC_API_KEY on the server.",
                details={"generator": name},
            )
        return AnthropicGenerator(
            base_url=settings.anthropic_base_url,
            api_key=settings.anthropic_api_key.get_secret_value(),
            model=model or settings.anthropic_model,
            timeout_seconds=timeout,
            max_retries=max_retries,
            backoff_base_seconds=settings.llm_backoff_base_seconds,
        )
    raise LlmNotConfigured(
        f"Unknown LLM generator {name!r}; choose one of {', '.join(LLM_GENERATORS)}.",
        details={"generator": name},
    )


def _price(entry: Any, key: str) -> float | None:
    if not isinstance(entry, Mapping):
        return None
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def estimate_cost(
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    price_table: Mapping[str, Any] | None,
) -> float | None:
    """USD for the tokens, from `llm.price_table` ({model: {prompt, completion}} per 1,000
    tokens). A dated model name (`gpt-4o-mini-2024-07-18`) falls back to its longest listed
    prefix; an unlisted model or a malformed entry gives None (unknown, not free)."""
    if not model or not price_table:
        return None
    entry = price_table.get(model)
    if entry is None:
        prefixes = [name for name in price_table if model.startswith(name)]
        if not prefixes:
            return None
        entry = price_table[max(prefixes, key=len)]
    prompt_price, completion_price = _price(entry, "prompt"), _price(entry, "completion")
    if prompt_price is None or completion_price is None:
        return None
    cost = (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000
    return round(cost, 8)
