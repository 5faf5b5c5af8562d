"""Request and response shapes of auth and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Form
from pydantic import ConfigDict, EmailStr, Field
from pydantic.json_schema import WithJsonSchema

from backend.auth.passwords import MAX_PASSWORD_LENGTH
from backend.auth.scopes import Scope
from backend.core.schemas import AppSchema, Omitted

Password = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


# The syntax email-validator accepts, as far as a JSON schema can say it: a dot in the domain, a
# top-level domain of letters, and none of the special-use names (`localhost`, `.test`, ...) that
# it refuses; so a client (or a fuzzer) that follows the contract is never refused.
EMAIL_PATTERN = (
    r"^[^@\s]+@(?!(?:[^@]*\.)?(?:arpa|invalid|local|localhost|onion|test)$)[^@\s]+\.[A-Za-z]{2,63}$"
)
EMAIL_JSON_SCHEMA = {
    "type": "string",
    "format": "email",
    "maxLength": 255,
    "pattern": EMAIL_PATTERN,
}


class RegisterRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery staple",
                    "full_name": "Ada Lovelace",
                    "company": "Analytical Engines",
                }
            ]
        }
    )

    email: Annotated[EmailStr, WithJsonSchema(EMAIL_JSON_SCHEMA)] = Field(max_length=255)
    password: str = Password
    full_name: str = Field(min_length=1, max_length=100)
    company: str | None = Field(default=None, max_length=100)


class LoginRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "correct horse battery staple"}]
        }
    )

    email: str = Field(min_length=1, max_length=255)
    password: str = Password


class PasswordForm:
    """The OAuth2 password form (`POST /auth/token`), with the lengths `LoginRequest` has.

    A form field sent empty counts as missing, so both fields say `minLength: 1` in the contract.
    """

    def __init__(
        self,
        username: Annotated[str, Form(min_length=1, max_length=255)],
        password: Annotated[str, Form(min_length=1, max_length=MAX_PASSWORD_LENGTH)],
        grant_type: Annotated[Literal["password"] | Omitted, Form()] = None,
        scope: Annotated[str, Form(max_length=1000)] = "",
    ) -> None:
        self.username = username
        self.password = password
        self.grant_type = grant_type
        self.scopes = scope.split()


class RefreshRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "rt_9vQ2mX4kLw8pZr1sT6yB3nC5dF7gH0jK"}]}
    )

    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"refresh_token": "rt_9vQ2mX4kLw8pZr1sT6yB3nC5dF7gH0jK"}]}
    )

    refresh_token: str | None = Field(default=None, min_length=1, max_length=512)
    """Also revoke the family of this refresh token (if it is the caller's)."""


class TokenPair(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2ln",
                    "refresh_token": "rt_9vQ2mX4kLw8pZr1sT6yB3nC5dF7gH0jK",
                    "token_type": "bearer",
                    "expires_in": 900,
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    """Seconds until the access token expires."""


class ChangePasswordRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_password": "correct horse battery staple",
                    "new_password": "a longer and newer passphrase",
                }
            ]
        }
    )

    current_password: str = Password
    new_password: str = Password


class UserRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "email": "ada@example.com",
                    "full_name": "Ada Lovelace",
                    "company": "Analytical Engines",
                    "role": "viewer",
                    "is_active": True,
                    "created_at": "2024-05-01T12:00:00Z",
                    "last_login": "2024-05-01T12:00:00Z",
                    "token_usage": 1234,
                    "preferences": {"theme": "dark"},
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"full_name": "Ada King", "preferences": {"theme": "light"}}]
        }
    )

    full_name: Annotated[str, Field(min_length=1, max_length=100)] | Omitted = None
    company: str | None = Field(default=None, max_length=100)
    preferences: dict[str, Any] | None = None


class AdminUserUpdate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"role": "admin", "is_active": True}]}
    )

    role: Literal["viewer", "admin"] | None = None
    is_active: bool | None = None


class ApiKeyCreate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_name": "dashboard",
                    "scopes": ["chat:read", "chat:write"],
                    "connection_ids": ["7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d"],
                    "expires_at": "2025-01-01T00:00:00Z",
                }
            ]
        }
    )

    key_name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    connection_ids: list[str] | None = Field(default=None, max_length=100)
    """Connections the key may use; omitted or null means every connection of the owner."""
    expires_at: datetime | None = None
    """A naive value is read as UTC."""


class ApiKeyRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "key_name": "dashboard",
                    "key_prefix": "nlsql_AbC1",
                    "scopes": ["chat:read", "chat:write"],
                    "connection_ids": ["7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d"],
                    "is_active": True,
                    "expires_at": "2025-01-01T00:00:00Z",
                    "last_used": None,
                    "usage_count": 0,
                    "created_at": "2024-05-01T12:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "key_name": "dashboard",
                    "key_prefix": "nlsql_AbC1",
                    "scopes": ["chat:read", "chat:write"],
                    "connection_ids": ["7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d"],
                    "is_active": True,
                    "expires_at": "2025-01-01T00:00:00Z",
                    "last_used": None,
                    "usage_count": 0,
                    "created_at": "2024-05-01T12:00:00Z",
                    "revoked_at": None,
                    "key": "nlsql_AbC1dEf2GhI3jKl4MnO5pQr6StU7vWx8",
                }
            ]
        }
    )

    key: str
    """The secret, shown this once; only its hash is stored."""
