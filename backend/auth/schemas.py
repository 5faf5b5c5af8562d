"""Request and response shapes of auth and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import EmailStr, Field

from backend.auth.passwords import MAX_PASSWORD_LENGTH
from backend.auth.scopes import Scope
from backend.core.schemas import AppSchema

Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class RegisterRequest(AppSchema):
    email: EmailStr = Field(max_length=255)
    password: str = Password
    full_name: str = Field(min_length=1, max_length=100)
    company: str | None = Field(default=None, max_length=100)


class LoginRequest(AppSchema):
    email: str = Field(min_length=1, max_length=255)
    password: str = Password


class RefreshRequest(AppSchema):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(AppSchema):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)
    """Also revoke the family of this refresh token (if it is the caller's)."""


class TokenPair(AppSchema):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    """Seconds until the access token expires."""


class ChangePasswordRequest(AppSchema):
    current_password: str = Password
    new_password: str = Password


class UserRead(AppSchema):
    id: str
    email: str
    full_name: str
    company: str | None
    role: str
    is_active: bool
    created_at: datetime
    last_login: datetime | None
    token_usage: int
    preferences: dict[str, Any] | None


class UserUpdate(AppSchema):
    full_name: str | None = Field(default=None, min_length=1, max_length=100)
    company: str | None = Field(default=None, max_length=100)
    preferences: dict[str, Any] | None = None


class AdminUserUpdate(AppSchema):
    role: Literal["viewer", "admin"] | None = None
    is_active: bool | None = None


class ApiKeyCreate(AppSchema):
    key_name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    connection_ids: list[str] | None = Field(default=None, max_length=100)
    """Connections the key may use; omitted or null means every connection of the owner."""
    expires_at: datetime | None = None
    """A naive value is read as UTC."""


class ApiKeyRead(AppSchema):
    id: str
    key_name: str
    key_prefix: str
    scopes: list[str]
    connection_ids: list[str] | None
    is_active: bool
    expires_at: datetime | None
    last_used: datetime | None
    usage_count: int
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    key: str
    """The secret, shown this once; only its hash is stored."""
