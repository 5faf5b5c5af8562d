"""The known `system_config` keys: each with its type, default, validation and description.

Unknown keys are refused; a stored value overrides the default. Values are read through an
in-process cache (all rows of the small table at once) that is dropped when this process
commits a change to `system_config` through the ORM (and by `invalidate_config_cache`), and
expires after `CACHE_TTL_SECONDS`, so other processes' changes arrive within that time.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig

logger = logging.getLogger("nlsql.config")

CACHE_TTL_SECONDS = 5.0
ROLE_NAMES = ("viewer", "admin")


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[float, Field(ge=0)]
    """USD per 1,000 prompt tokens."""
    completion: Annotated[float, Field(ge=0)]
    """USD per 1,000 completion tokens."""


@dataclass(frozen=True)
class ConfigKey:
    key: str
    default: Any
    description: str
    is_sensitive: bool = False
    type_: Any = Any
    """The value's type for pydantic (with its constraints); validates every write."""
    type_name: str = "any"
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.type_))

    def validate(self, value: Any) -> Any:
        """The value as stored (JSON-ready); raises pydantic's ValidationError."""
        return self.adapter.dump_python(self.adapter.validate_python(value, strict=True))


def _int(lo: int, hi: int) -> Any:
    return Annotated[int, Field(ge=lo, le=hi, strict=True)]


HEADER_SAFE_PATTERN = r"^[\x21-\x7e]+$"
"""Visible ASCII without spaces: a secret that goes into an HTTP header as it is."""
HeaderSafeSecret = Annotated[str, Field(min_length=1, max_length=500, pattern=HEADER_SAFE_PATTERN)]

_QuotaPerRole = dict[Literal["viewer", "admin"], Annotated[int, Field(ge=0)] | None]

KNOWN_KEYS: dict[str, ConfigKey] = {
    k.key: k
    for k in (
        ConfigKey(
            "query.row_cap",
            1000,
            "Most rows a query returns to the API (1..100000).",
            type_=_int(1, 100_000),
            type_name="integer",
        ),
        ConfigKey(
            "query.statement_timeout_seconds",
            15,
            "Longest a query may run on a user's database, in seconds (1..600).",
            type_=_int(1, 600),
            type_name="integer",
        ),
        ConfigKey(
            "query.max_cell_bytes",
            262_144,
            "Most bytes one value of a result carries; a longer one is cut and the result "
            "says `truncated_reason: cell_limit` (1024..16777216).",
            type_=_int(1024, 16 * 1024 * 1024),
            type_name="integer",
        ),
        ConfigKey(
            "query.max_result_bytes",
            8 * 1024 * 1024,
            "Most bytes of values one result carries; fetching stops there and the result "
            "says `truncated_reason: byte_limit` (65536..268435456).",
            type_=_int(65_536, 256 * 1024 * 1024),
            type_name="integer",
        ),
        ConfigKey(
            "chat.preview_max_bytes",
            65_536,
            "Most bytes of rows an answer keeps in its chat message (the export re-runs the "
            "query for all of them) (0..16777216).",
            type_=_int(0, 16 * 1024 * 1024),
            type_name="integer",
        ),
        ConfigKey(
            "auth.registration_open",
            True,
            "Whether anyone may register an account.",
            type_=Annotated[bool, Field(strict=True)],
            type_name="boolean",
        ),
        ConfigKey(
            "auth.login_max_failures",
            5,
            "Failed logins per email or IP before throttling (1..1000).",
            type_=_int(1, 1000),
            type_name="integer",
        ),
        ConfigKey(
            "auth.login_window_seconds",
            900,
            "Window over which failed logins count, in seconds (1..86400).",
            type_=_int(1, 86_400),
            type_name="integer",
        ),
        ConfigKey(
            "quota.tokens_per_role",
            {"viewer": 1_000_000, "admin": None},
            "LLM tokens a user of each role may use; null means unlimited.",
            type_=_QuotaPerRole,
            type_name="object{role: integer|null}",
        ),
        ConfigKey(
            "quota.period",
            "month",
            "How often token usage starts again: a UTC calendar day or month, or never.",
            type_=Literal["day", "month", "never"],
            type_name="enum",
        ),
        ConfigKey(
            "nl2sql.default_generator",
            "builtin",
            "Generator used when none is chosen: builtin, openai or anthropic.",
            type_=Literal["builtin", "openai", "anthropic"],
            type_name="enum",
        ),
        ConfigKey(
            "nl2sql.default_model",
            None,
            "Model used by LLM generators when none is chosen (null: the settings' model).",
            type_=Annotated[str, Field(min_length=1, max_length=100)] | None,
            type_name="string|null",
        ),
        ConfigKey(
            "llm.price_table",
            {},
            "USD per 1,000 tokens by model: {model: {prompt, completion}}.",
            type_=dict[Annotated[str, Field(min_length=1, max_length=100)], ModelPrice],
            type_name="object{model: {prompt, completion}}",
        ),
        ConfigKey(
            "llm.openai_api_key",
            None,
            "API key for the OpenAI-compatible generator; overrides NLSQL_OPENAI_API_KEY.",
            is_sensitive=True,
            type_=HeaderSafeSecret | None,
            type_name="string (visible ASCII)|null",
        ),
        ConfigKey(
            "llm.anthropic_api_key",
            None,
            "API key for the Anthropic generator; overrides NLSQL_ANTHROPIC_API_KEY.",
            is_sensitive=True,
            type_=HeaderSafeSecret | None,
            type_name="string (visible ASCII)|null",
        ),
        ConfigKey(
            "export.max_rows",
            10_000_000,
            "Most rows one CSV export streams (1..100,000,000); the row cap does not apply.",
            type_=_int(1, 100_000_000),
            type_name="integer",
        ),
        ConfigKey(
            "export.timeout_seconds",
            600,
            "Time limit of one export's query, streaming included (1..3600 seconds).",
            type_=_int(1, 3600),
            type_name="integer",
        ),
        ConfigKey(
            "retention.events_days",
            90,
            "Events older than this many days are pruned by `nlsql prune` (1..3650).",
            type_=_int(1, 3650),
            type_name="integer",
        ),
        ConfigKey(
            "retention.metrics_days",
            30,
            "Performance metrics older than this many days are pruned (1..3650).",
            type_=_int(1, 3650),
            type_name="integer",
        ),
        ConfigKey(
            "retention.job_results_days",
            7,
            "Result files of background jobs (exports) that finished more than this many days"
            " ago are deleted by the scheduled pruning (1..3650); the job rows stay.",
            type_=_int(1, 3650),
            type_name="integer",
        ),
    )
}


class UnknownConfigKey(KeyError):
    pass


def get_known_key(key: str) -> ConfigKey:
    """Raises `UnknownConfigKey` (a KeyError) for a key the registry does not know."""
    try:
        return KNOWN_KEYS[key]
    except KeyError:
        raise UnknownConfigKey(key) from None


@dataclass(slots=True)
class _CacheEntry:
    values: dict[str, Any]
    loaded_at: float


_cache: weakref.WeakKeyDictionary[Engine, _CacheEntry] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
_DIRTY_FLAG = "nlsql_config_changed"


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def invalidate_config_cache(session: Session) -> None:
    """Drop this database's cached values now and again when `session` commits."""
    with _cache_lock:
        _cache.pop(_engine_of(session), None)
    session.info[_DIRTY_FLAG] = True


@event.listens_for(Session, "after_flush")
def _note_config_writes(session: Session, _flush_context: Any) -> None:
    # Rows changed through the ORM anywhere (not only set_config) drop the cache on commit.
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, SystemConfig) for obj in changed):
        session.info[_DIRTY_FLAG] = True


@event.listens_for(Session, "after_commit")
def _invalidate_after_commit(session: Session) -> None:
    # A reader could re-cache the old value between the change and its commit; drop it again.
    if session.info.pop(_DIRTY_FLAG, False):
        with _cache_lock:
            _cache.pop(_engine_of(session), None)


def _stored_values(session: Session) -> dict[str, Any]:
    engine = _engine_of(session)
    now = time.monotonic()
    with _cache_lock:
        entry = _cache.get(engine)
        if entry is not None and now - entry.loaded_at < CACHE_TTL_SECONDS:
            return entry.values
    rows = session.execute(select(SystemConfig.config_key, SystemConfig.config_value)).all()
    values: dict[str, Any] = {row[0]: row[1] for row in rows}
    with _cache_lock:
        _cache[engine] = _CacheEntry(values=values, loaded_at=now)
    return values


SEALED_FIELD = "fernet"


def is_sealed(value: Any) -> bool:
    """Whether a stored value is a sealed secret (`{"fernet": token}`, see `admin.secrets`)."""
    return (
        isinstance(value, dict)
        and list(value) == [SEALED_FIELD]
        and isinstance(value[SEALED_FIELD], str)
    )


def get_config_value(session: Session, key: str) -> Any:
    """The stored value of a known key, or its default. Raises KeyError on an unknown key.

    A stored value that no longer validates (edited by hand) is ignored with a warning.
    """
    known = get_known_key(key)
    stored = _stored_values(session)
    if key not in stored:
        return known.default
    if known.is_sensitive and is_sealed(stored[key]):
        return stored[key]  # opened by `backend.admin.secrets.open_secret`
    try:
        return known.validate(stored[key])
    except ValidationError:
        logger.warning("system_config %s holds an invalid value; using the default", key)
        return known.default
