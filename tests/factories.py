"""Builders for tests: users, signed-in token headers, API keys. State only what you care about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.admin.config_keys import invalidate_config_cache
from backend.admin.models import SystemConfig
from backend.auth.api_keys import generate_api_key
from backend.auth.models import ROLE_VIEWER, ApiKey, User
from backend.auth.scopes import ROLE_SCOPES
from backend.auth.tokens import IssuedTokens, issue_token_pair, start_user_session
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.security import digest_token, hash_password

DEFAULT_PASSWORD = "Correct-horse-42"
# What `TestClient` sends, so tokens built here refresh through the client like real ones.
TEST_CLIENT_CONTEXT = ClientContext(ip_address="testclient", user_agent="testclient")


@lru_cache(maxsize=64)
def password_hash(password: str = DEFAULT_PASSWORD) -> str:
    """A real argon2 hash of `password`, made once per test process: argon2 is slow on purpose
    (about a quarter of a second), and users are made in almost every test."""
    return hash_password(password)


def create_user(
    session: Session,
    *,
    email: str | None = None,
    password: str | None = None,
    role: str = ROLE_VIEWER,
    full_name: str = "Test User",
    company: str | None = None,
    is_active: bool = True,
) -> User:
    """A committed user; the password is `DEFAULT_PASSWORD` unless given."""
    user = User(
        email=email or f"user-{uuid.uuid4().hex[:10]}@example.com",
        password_hash=password_hash(DEFAULT_PASSWORD if password is None else password),
        full_name=full_name,
        company=company,
        role=role,
        is_active=is_active,
        preferences={},
        created_at=utcnow(),
    )
    session.add(user)
    session.commit()
    return user


def sign_in(
    session: Session,
    settings: Settings,
    user: User,
    *,
    context: ClientContext = TEST_CLIENT_CONTEXT,
) -> IssuedTokens:
    """A real user session and token pair for `user`, as a login would make them."""
    user_session = start_user_session(session, user=user, context=context)
    issued = issue_token_pair(
        session, settings, user=user, user_session=user_session, context=context
    )
    session.commit()
    return issued


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def token_headers(session: Session, settings: Settings, user: User) -> dict[str, str]:
    return bearer(sign_in(session, settings, user).access_token)


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    id: str
    key: str
    """The secret."""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


def create_api_key(
    session: Session,
    user: User,
    *,
    scopes: list[str] | None = None,
    connection_ids: list[str] | None = None,
    expires_at: datetime | None = None,
    name: str = "test key",
) -> CreatedApiKey:
    """A committed key of `user`; by default with every scope the user's role holds."""
    secret, visible = generate_api_key()
    key = ApiKey(
        user_id=user.id,
        key_name=name,
        key_hash=digest_token(secret),
        key_prefix=visible,
        permissions={
            "scopes": scopes
            if scopes is not None
            else sorted(s.value for s in ROLE_SCOPES[user.role]),
            "connection_ids": connection_ids,
        },
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(key)
    session.commit()
    return CreatedApiKey(id=key.id, key=secret)


def set_system_config(session: Session, key: str, value: object) -> None:
    """Store a `system_config` value (as an admin would through the config endpoints)."""
    row = session.scalar(select(SystemConfig).where(SystemConfig.config_key == key))
    if row is None:
        session.add(SystemConfig(config_key=key, config_value=value, created_at=utcnow()))
    else:
        row.config_value = value
    invalidate_config_cache(session)
    session.commit()
