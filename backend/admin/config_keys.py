"""The known `system_config` keys: each with its type, default and description.

Unknown keys are refused; a stored value overrides the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig


@dataclass(frozen=True, slots=True)
class ConfigKey:
    key: str
    default: Any
    description: str
    is_sensitive: bool = False


KNOWN_KEYS: dict[str, ConfigKey] = {
    k.key: k
    for k in (
        ConfigKey("query.row_cap", 1000, "Most rows a query returns to the API (1..100000)."),
        ConfigKey(
            "query.statement_timeout_seconds", 15, "Longest a query may run on a user's database."
        ),
        ConfigKey("auth.registration_open", True, "Whether anyone may register an account."),
        ConfigKey("auth.login_max_failures", 5, "Failed logins per email or IP before throttling."),
        ConfigKey("auth.login_window_seconds", 900, "Window over which failed logins count."),
        ConfigKey(
            "quota.tokens_per_role",
            {"viewer": 1_000_000, "admin": None},
            "LLM tokens a user of each role may use; null means unlimited.",
        ),
        ConfigKey("nl2sql.default_generator", "builtin", "Generator used when none is chosen."),
        ConfigKey(
            "nl2sql.default_model", None, "Model used by LLM generators when none is chosen."
        ),
        ConfigKey(
            "llm.price_table",
            {},
            "USD per 1,000 tokens by model: {model: {prompt, completion}}.",
        ),
        ConfigKey("retention.events_days", 90, "Events older than this are pruned."),
        ConfigKey("retention.metrics_days", 30, "Performance metrics older than this are pruned."),
    )
}


def get_config_value(session: Session, key: str) -> Any:
    """The stored value of a known key, or its default. Raises KeyError on an unknown key."""
    known = KNOWN_KEYS[key]
    stored = session.scalar(select(SystemConfig.config_value).where(SystemConfig.config_key == key))
    return known.default if stored is None else stored
