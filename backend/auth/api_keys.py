"""API keys: creation (secret shown once), listing, revocation, and buffered usage counts.

Usage (`last_used`, `usage_count`) is counted in memory and written at most once per flush
interval per process, in one short transaction of its own, plus once at shutdown. A request
authenticated by a key therefore costs no extra write; increments are applied as
`usage_count = usage_count + n` so several workers add up correctly. The price: a crash
loses at most one interval of counts, and `GET /api-keys` adds this process's pending counts.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import Engine, case, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backend.auth.errors import (
    ApiKeyNotFound,
    ExpiryInPast,
    ScopesExceedRole,
    UnknownConnections,
)
from backend.auth.models import ApiKey, User
from backend.auth.schemas import ApiKeyCreate, ApiKeyRead
from backend.auth.scopes import ROLE_SCOPES
from backend.connections.models import DatabaseConnection
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.pagination import keyset_page
from backend.core.security import digest_token
from backend.observability import recorder
from backend.observability.event_types import AuditAction

logger = logging.getLogger("nlsql.auth")

KEY_PREFIX = "nlsql_"
DEFAULT_FLUSH_INTERVAL_SECONDS = 30.0


def generate_api_key() -> tuple[str, str]:
    """A new secret and its visible prefix (`nlsql_<8 hex>`), which starts the secret."""
    visible = KEY_PREFIX + secrets.token_hex(4)
    return f"{visible}_{secrets.token_urlsafe(32)}", visible


@dataclass(slots=True)
class _Usage:
    count: int
    last_used: datetime


class ApiKeyUsageBuffer:
    """Per-process counts of API key use, flushed to the database every so often."""

    def __init__(self, flush_interval_seconds: float = DEFAULT_FLUSH_INTERVAL_SECONDS) -> None:
        self.flush_interval_seconds = flush_interval_seconds
        self._lock = threading.Lock()
        self._pending: dict[str, _Usage] = {}
        self._last_flush = time.monotonic()

    def record(self, key_id: str, used_at: datetime) -> bool:
        """Count one use; True when the flush interval has passed and a flush is due."""
        with self._lock:
            usage = self._pending.get(key_id)
            if usage is None:
                self._pending[key_id] = _Usage(1, used_at)
            else:
                usage.count += 1
                usage.last_used = max(usage.last_used, used_at)
            return time.monotonic() - self._last_flush >= self.flush_interval_seconds

    def pending(self, key_id: str) -> tuple[int, datetime | None]:
        with self._lock:
            usage = self._pending.get(key_id)
            return (usage.count, usage.last_used) if usage else (0, None)

    def _merge_back(self, pending: dict[str, _Usage]) -> None:
        with self._lock:
            for key_id, usage in pending.items():
                current = self._pending.get(key_id)
                if current is None:
                    self._pending[key_id] = usage
                else:
                    current.count += usage.count
                    current.last_used = max(current.last_used, usage.last_used)

    def flush(self, engine: Engine) -> int:
        """Write pending counts in one transaction of its own; returns how many keys."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return 0
        try:
            with engine.begin() as conn:
                for key_id, usage in pending.items():
                    conn.execute(
                        update(ApiKey)
                        .where(ApiKey.id == key_id)
                        .values(
                            usage_count=ApiKey.usage_count + usage.count,
                            last_used=case(
                                (
                                    ApiKey.last_used.is_(None)
                                    | (ApiKey.last_used < usage.last_used),
                                    usage.last_used,
                                ),
                                else_=ApiKey.last_used,
                            ),
                        )
                    )
        except SQLAlchemyError:
            logger.warning("could not write API key usage; keeping it for the next flush")
            self._merge_back(pending)
            return 0
        return len(pending)


_buffer_lock = threading.Lock()


def get_usage_buffer(app: FastAPI) -> ApiKeyUsageBuffer:
    """The app's usage buffer (created by `create_app`, or here on first use)."""
    buffer = getattr(app.state, "api_key_usage", None)
    if buffer is None:
        with _buffer_lock:
            buffer = getattr(app.state, "api_key_usage", None)
            if buffer is None:
                buffer = ApiKeyUsageBuffer()
                app.state.api_key_usage = buffer
    assert isinstance(buffer, ApiKeyUsageBuffer)  # noqa: S101 - only this module sets it
    return buffer


def find_api_key_or_none(session: Session, raw_key: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == digest_token(raw_key)))


def api_key_read(key: ApiKey, buffer: ApiKeyUsageBuffer | None = None) -> ApiKeyRead:
    """The client's view of a key, with this process's not yet written usage added."""
    pending_count, pending_last = buffer.pending(key.id) if buffer else (0, None)
    last_used = key.last_used
    if pending_last is not None and (last_used is None or pending_last > last_used):
        last_used = pending_last
    permissions = key.permissions or {}
    return ApiKeyRead(
        id=key.id,
        key_name=key.key_name,
        key_prefix=key.key_prefix,
        scopes=list(permissions.get("scopes", [])),
        connection_ids=permissions.get("connection_ids"),
        is_active=key.is_active and key.revoked_at is None,
        expires_at=key.expires_at,
        last_used=last_used,
        usage_count=key.usage_count + pending_count,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def _owned_connection_ids(session: Session, *, owner_id: str, ids: list[str]) -> set[str]:
    return set(
        session.scalars(
            select(DatabaseConnection.id).where(
                DatabaseConnection.user_id == owner_id, DatabaseConnection.id.in_(ids)
            )
        )
    )


def create_api_key(
    session: Session, *, owner: User, data: ApiKeyCreate, context: ClientContext
) -> tuple[ApiKey, str]:
    """Store a new key for `owner`; returns it and its secret. Flushes.

    Raises `ScopesExceedRole` (403) for scopes the owner's role lacks, `UnknownConnections`
    (422) for connection ids that are not the owner's, `ExpiryInPast` (422) for a past expiry.
    """
    scopes = sorted({s.value for s in data.scopes})
    beyond = [s for s in scopes if s not in ROLE_SCOPES.get(owner.role, frozenset())]
    if beyond:
        raise ScopesExceedRole(details={"scopes": beyond})
    connection_ids = None
    if data.connection_ids is not None:
        connection_ids = sorted(set(data.connection_ids))
        owned = _owned_connection_ids(session, owner_id=owner.id, ids=connection_ids)
        unknown = [c for c in connection_ids if c not in owned]
        if unknown:
            raise UnknownConnections(details={"connection_ids": unknown})
    expires_at = data.expires_at
    if expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at <= utcnow():
            raise ExpiryInPast(details={"field": "expires_at"})
    secret, visible = generate_api_key()
    key = ApiKey(
        user_id=owner.id,
        key_name=data.key_name,
        key_hash=digest_token(secret),
        key_prefix=visible,
        permissions={"scopes": scopes, "connection_ids": connection_ids},
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(key)
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.API_KEY_CREATED,
        user_id=owner.id,
        context=context,
        resource_type="api_key",
        resource_id=key.id,
        new_values={
            "key_name": key.key_name,
            "key_prefix": visible,
            "scopes": scopes,
            "connection_ids": connection_ids,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, secret


def list_api_keys(
    session: Session, *, owner: User, limit: int, cursor: str | None
) -> tuple[list[ApiKey], str | None]:
    return keyset_page(
        session,
        select(ApiKey).where(ApiKey.user_id == owner.id),
        keys=[ApiKey.created_at, ApiKey.id],
        kinds=[datetime, str],
        key_of=lambda k: (k.created_at, k.id),
        limit=limit,
        cursor=cursor,
    )


def get_api_key(session: Session, *, owner: User, key_id: str) -> ApiKey:
    """The owner's key; raises `ApiKeyNotFound` for unknown ids and other users' keys alike."""
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != owner.id:
        raise ApiKeyNotFound()
    return key


def revoke_api_key(session: Session, *, owner: User, key_id: str, context: ClientContext) -> None:
    """Revoke the owner's key (idempotent); it answers 401 from the next request on."""
    key = get_api_key(session, owner=owner, key_id=key_id)
    if key.revoked_at is not None:
        return
    key.revoked_at = utcnow()
    key.is_active = False
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.API_KEY_REVOKED,
        user_id=owner.id,
        context=context,
        resource_type="api_key",
        resource_id=key.id,
        old_values={"is_active": True},
        new_values={"is_active": False, "key_prefix": key.key_prefix},
    )
