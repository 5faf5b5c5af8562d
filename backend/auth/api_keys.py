"""API keys: creation (secret shown once), listing, revocation, and usage counts.

Usage (`last_used`, `usage_count`) is one atomic increment in the shared database per request
authenticated by a key, so every process and host reads the same exact count.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

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


def generate_api_key() -> tuple[str, str]:
    """A new secret and its visible prefix (`nlsql_<8 hex>`), which starts the secret."""
    visible = KEY_PREFIX + secrets.token_hex(4)
    return f"{visible}_{secrets.token_urlsafe(32)}", visible


def record_api_key_use(engine: Engine, key_id: str, used_at: datetime) -> None:
    """Count one use of a key: `usage_count = usage_count + 1` and `last_used` moved forward,
    in one short transaction of its own. Exact with any number of processes (the database
    adds), durable at once (a crash loses nothing), and independent of the request's own
    transaction (a request that fails afterwards still counts). Losing the write itself (the
    database briefly unavailable) is logged and does not fail the request.
    """
    try:
        with engine.begin() as conn:
            conn.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(
                    usage_count=ApiKey.usage_count + 1,
                    last_used=case(
                        (
                            ApiKey.last_used.is_(None) | (ApiKey.last_used < used_at),
                            used_at,
                        ),
                        else_=ApiKey.last_used,
                    ),
                )
            )
    except SQLAlchemyError:
        logger.warning("could not count a use of API key %s", key_id, exc_info=True)


def find_api_key_or_none(session: Session, raw_key: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == digest_token(raw_key)))


def api_key_read(key: ApiKey) -> ApiKeyRead:
    """The client's view of a key (never its secret)."""
    permissions = key.permissions or {}
    return ApiKeyRead(
        id=key.id,
        key_name=key.key_name,
        key_prefix=key.key_prefix,
        scopes=list(permissions.get("scopes", [])),
        connection_ids=permissions.get("connection_ids"),
        is_active=key.is_active and key.revoked_at is None,
        expires_at=key.expires_at,
        last_used=key.last_used,
        usage_count=key.usage_count,
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
