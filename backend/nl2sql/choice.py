"""Which generator answers a question: the request's, else the user's preference, else the
system default; an LLM generator without its API key falls back to `builtin`, and says so."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.admin.secrets import open_secret
from backend.auth.models import User
from backend.core.config import Settings
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.llm import LLM_GENERATORS

ChoiceSource = Literal["request", "preference", "config"]
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class GeneratorChoice:
    name: str
    """The generator that runs."""
    requested: str
    """The generator the request, preference or config named."""
    source: ChoiceSource
    model: str | None = None
    """The model to ask for (None: the generator's configured model)."""
    fallback_reason: str | None = None
    """Why `name` differs from `requested` (an LLM generator is not configured)."""


def llm_settings(session: Session, settings: Settings) -> Settings:
    """`settings` with the API keys stored in system config (`llm.*_api_key`) applied."""
    updates: dict[str, Any] = {}
    for name in LLM_GENERATORS:
        stored = open_secret(session, settings, f"llm.{name}_api_key")
        if stored:
            updates[f"{name}_api_key"] = SecretStr(str(stored))
    return settings.model_copy(update=updates) if updates else settings


def is_configured(name: str, settings: Settings) -> bool:
    """An LLM generator needs an API key; an OpenAI-compatible server other than OpenAI's
    own (a local one) may run without one. Other generators need no configuration."""
    if name == "openai":
        return settings.openai_api_key is not None or (
            settings.openai_base_url.rstrip("/") != DEFAULT_OPENAI_BASE_URL
        )
    if name == "anthropic":
        return settings.anthropic_api_key is not None
    return True


def _preferred(user: User) -> tuple[str | None, str | None]:
    preferences = user.preferences if isinstance(user.preferences, dict) else {}
    name, model = preferences.get("generator"), preferences.get("model")
    if not isinstance(name, str) or name not in registry.generator_names():
        return None, None
    return name, model if isinstance(model, str) and model.strip() else None


def choose_generator(
    session: Session, user: User, requested: str | None, settings: Settings
) -> GeneratorChoice:
    """The generator for one ask. An unknown requested name is kept (the registry answers 422)."""
    source: ChoiceSource
    model: str | None = None
    if requested:
        name, source = requested, "request"
    else:
        preferred, preferred_model = _preferred(user)
        if preferred is not None:
            name, source, model = preferred, "preference", preferred_model
        else:
            name, source = str(get_config_value(session, "nl2sql.default_generator")), "config"
    if model is None and name == get_config_value(session, "nl2sql.default_generator"):
        default_model = get_config_value(session, "nl2sql.default_model")
        model = str(default_model) if default_model else None
    if name in LLM_GENERATORS and not is_configured(name, settings):
        return GeneratorChoice(
            name=registry.DEFAULT_GENERATOR,
            requested=name,
            source=source,
            fallback_reason=f"The {name} generator has no API key on this server; "
            f"the {registry.DEFAULT_GENERATOR} engine answered instead.",
        )
    return GeneratorChoice(name=name, requested=name, source=source, model=model)
