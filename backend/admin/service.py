"""System config (typed, validated, audited) and retention of recorded data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute, Session

from backend.admin.config_keys import (
    KNOWN_KEYS,
    ConfigKey,
    get_config_value,
    invalidate_config_cache,
)
from backend.admin.errors import ConfigKeyNotFound, InvalidConfigValue
from backend.admin.models import SystemConfig
from backend.admin.schemas import ConfigRead, PruneReport
from backend.admin.secrets import seal
from backend.auth.models import RefreshToken
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.observability import recorder
from backend.observability.event_types import AuditAction
from backend.observability.models import Event, PerformanceMetric
from backend.observability.recorder import REDACTED

CONFIG_RESOURCE = "system_config"


def _known(key: str) -> ConfigKey:
    known = KNOWN_KEYS.get(key)
    if known is None:
        raise ConfigKeyNotFound(
            f"Unknown config key {key!r}.", details={"key": key, "known_keys": sorted(KNOWN_KEYS)}
        )
    return known


def _stored_row(session: Session, key: str) -> SystemConfig | None:
    return session.scalar(select(SystemConfig).where(SystemConfig.config_key == key))


def _masked(known: ConfigKey, value: Any) -> Any:
    return REDACTED if known.is_sensitive and value is not None else value


def _read(known: ConfigKey, row: SystemConfig | None, value: Any) -> ConfigRead:
    return ConfigRead(
        key=known.key,
        value=_masked(known, value),
        default=_masked(known, known.default),
        type=known.type_name,
        description=known.description,
        is_sensitive=known.is_sensitive,
        is_set=row is not None,
        updated_by=row.updated_by if row is not None else None,
        updated_at=(row.updated_at or row.created_at) if row is not None else None,
    )


def list_config(session: Session) -> list[ConfigRead]:
    rows = {r.config_key: r for r in session.scalars(select(SystemConfig))}
    return [
        _read(known, rows.get(key), get_config_value(session, key))
        for key, known in sorted(KNOWN_KEYS.items())
    ]


def get_config(session: Session, key: str) -> ConfigRead:
    """Raises `ConfigKeyNotFound` for a key the registry does not know."""
    known = _known(key)
    return _read(known, _stored_row(session, key), get_config_value(session, key))


def _insert_missing_row(
    session: Session, known: ConfigKey, value: Any, *, actor_id: str
) -> SystemConfig:
    """Insert the key's row unless another writer just did (no savepoint: pysqlite's are
    unreliable), then load it; a concurrent first write is simply overwritten by ours."""
    values = {
        "config_key": known.key,
        "config_value": value,
        "description": known.description,
        "is_sensitive": known.is_sensitive,
        "updated_by": actor_id,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            postgresql_insert(SystemConfig)
            .values(values)
            .on_conflict_do_nothing(index_elements=["config_key"])
        )
    elif dialect == "sqlite":
        session.execute(
            sqlite_insert(SystemConfig)
            .values(values)
            .on_conflict_do_nothing(index_elements=["config_key"])
        )
    else:
        session.add(SystemConfig(**values))
        session.flush()
    row = _stored_row(session, known.key)
    if row is None:  # pragma: no cover - the row was inserted above in this transaction
        raise RuntimeError(f"system_config row {known.key!r} vanished")
    return row


def set_config(
    session: Session,
    key: str,
    value: Any,
    *,
    actor_id: str,
    settings: Settings | None = None,
    context: ClientContext | None = None,
) -> ConfigRead:
    """Validate, store and audit a value; raises `ConfigKeyNotFound`, `InvalidConfigValue`.

    A sensitive key's value is stored sealed under the Fernet keys of `settings` (required
    for those keys)."""
    known = _known(key)
    try:
        validated = known.validate(value)
    except ValidationError as exc:
        # The rejected value is left out of the details: it may be a secret.
        raise InvalidConfigValue(
            f"Invalid value for {key!r}: expected {known.type_name}.",
            details={
                "key": key,
                "expected": known.type_name,
                "errors": [
                    {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_input=False)
                ],
            },
        ) from exc
    stored = validated
    if known.is_sensitive and validated is not None:
        if settings is None:
            raise ValueError(f"{key!r} is sensitive: pass the settings to seal it")
        stored = seal(settings, validated)
    old_value = get_config_value(session, key)
    row = _stored_row(session, key)
    if row is None:
        row = _insert_missing_row(session, known, stored, actor_id=actor_id)
    if row.config_value != stored or row.updated_by != actor_id:
        row.config_value = stored
        row.updated_by = actor_id
        row.updated_at = utcnow()
    row.description = known.description
    row.is_sensitive = known.is_sensitive
    session.flush()
    invalidate_config_cache(session)
    recorder.audit(
        session,
        action=AuditAction.CONFIG_CHANGED,
        user_id=actor_id,
        context=context,
        resource_type=CONFIG_RESOURCE,
        resource_id=key,
        old_values={"value": _masked(known, old_value)},
        new_values={"value": _masked(known, validated)},
    )
    return _read(known, row, validated)


def reset_config(
    session: Session, key: str, *, actor_id: str, context: ClientContext | None = None
) -> None:
    """Drop the stored value so the default applies again (audited even when none was set)."""
    known = _known(key)
    old_value = get_config_value(session, key)
    row = _stored_row(session, key)
    if row is not None:
        session.delete(row)
        session.flush()
    invalidate_config_cache(session)
    recorder.audit(
        session,
        action=AuditAction.CONFIG_DELETED,
        user_id=actor_id,
        context=context,
        resource_type=CONFIG_RESOURCE,
        resource_id=key,
        old_values={"value": _masked(known, old_value), "was_set": row is not None},
        new_values={"value": _masked(known, known.default)},
    )


# --- retention ---------------------------------------------------------------------------------


def _delete_in_batches(
    session: Session,
    id_column: InstrumentedAttribute[Any],
    condition: ColumnElement[bool],
    *,
    batch_size: int,
    after_batch: Callable[[], None],
) -> int:
    deleted = 0
    while True:
        ids = list(session.scalars(select(id_column).where(condition).limit(batch_size)))
        if not ids:
            return deleted
        session.execute(
            delete(id_column.class_).where(id_column.in_(ids)),
            execution_options={"synchronize_session": False},
        )
        deleted += len(ids)
        after_batch()
        if len(ids) < batch_size:
            return deleted


def prune_expired_data(
    session: Session,
    *,
    batch_size: int = 5000,
    now: datetime | None = None,
    after_batch: Callable[[], None] | None = None,
    context: ClientContext | None = None,
) -> PruneReport:
    """Delete expired refresh tokens, and events and metrics older than the retention config.

    Deletes `batch_size` rows per statement and calls `after_batch` after each (the CLI
    commits there, so locks stay short); audits the counts at the end (flushed, not
    committed). The audit log itself is never pruned: that would break its chain.
    """
    now = now or utcnow()
    after = after_batch or (lambda: None)
    events_before = now - timedelta(days=int(get_config_value(session, "retention.events_days")))
    metrics_before = now - timedelta(days=int(get_config_value(session, "retention.metrics_days")))
    report = PruneReport(
        refresh_tokens=_delete_in_batches(
            session,
            RefreshToken.id,
            RefreshToken.expires_at < now,
            batch_size=batch_size,
            after_batch=after,
        ),
        events=_delete_in_batches(
            session,
            Event.id,
            Event.timestamp < events_before,
            batch_size=batch_size,
            after_batch=after,
        ),
        performance_metrics=_delete_in_batches(
            session,
            PerformanceMetric.id,
            PerformanceMetric.timestamp < metrics_before,
            batch_size=batch_size,
            after_batch=after,
        ),
        events_before=events_before,
        metrics_before=metrics_before,
    )
    recorder.audit(
        session,
        action=AuditAction.DATA_PRUNED,
        user_id=None,
        context=context,
        resource_type="retention",
        # Table names as values, not keys: "refresh_tokens" as a key would be redacted.
        new_values={
            "deleted_rows": [
                {"table": "refresh_tokens", "rows": report.refresh_tokens},
                {"table": "events", "rows": report.events},
                {"table": "performance_metrics", "rows": report.performance_metrics},
            ],
            "events_before": report.events_before.isoformat(),
            "metrics_before": report.metrics_before.isoformat(),
        },
    )
    return report
