"""Tables of the auth domain: users, refresh_tokens, api_keys, user_sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, CreatedAtMixin, TimestampMixin, new_uuid, utcnow

ROLE_VIEWER = "viewer"
ROLE_ADMIN = "admin"
ROLES = (ROLE_VIEWER, ROLE_ADMIN)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(100))
    company: Mapped[str | None] = mapped_column(String(100), default=None)
    role: Mapped[str] = mapped_column(String(20), default=ROLE_VIEWER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login: Mapped[datetime | None] = mapped_column(default=None)
    token_usage: Mapped[int] = mapped_column(BigInteger, default=0)
    """LLM tokens used in the quota period that began at `token_period_start`."""
    token_period_start: Mapped[datetime | None] = mapped_column(default=None)
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)
    """Access tokens issued before this instant are refused (password change, logout-all)."""

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN


class UserSession(Base):
    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user_id_session_start", "user_id", "session_start"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_start: Mapped[datetime] = mapped_column(default=utcnow)
    session_end: Mapped[datetime | None] = mapped_column(default=None)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    queries_count: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class RefreshToken(CreatedAtMixin, Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    device_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    """Every token rotated from one login shares a family; reuse revokes the family."""
    user_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("user_sessions.id", ondelete="SET NULL"), default=None, index=True
    )
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the token was exchanged for a new pair; a second use is reuse."""


class ApiKey(CreatedAtMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(32))
    permissions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """`{"scopes": [...], "connection_ids": [...] | null}`."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used: Mapped[datetime | None] = mapped_column(default=None)
    usage_count: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
