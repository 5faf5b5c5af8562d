"""Access and refresh tokens: issuance, rotation, and family revocation on reuse.

Access tokens are short-lived JWTs carrying the user id, role, token type and user session
id (`sid`). Refresh tokens are random strings stored only as a SHA-256 digest; every token
rotated from one login shares a `family_id`, and presenting one that was already exchanged
revokes the whole family (the token leaked: either the thief or the owner is replaying it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.errors import InvalidRefreshToken, RefreshTokenReused
from backend.auth.models import RefreshToken, User, UserSession
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import new_uuid, utcnow
from backend.core.security import create_jwt, digest_token, generate_token
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a token type name, not a secret


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user_session_id: str
    family_id: str


def device_info(context: ClientContext) -> dict[str, Any]:
    return {"ip_address": context.ip_address, "user_agent": context.user_agent}


def start_user_session(session: Session, *, user: User, context: ClientContext) -> UserSession:
    """One `user_sessions` row per login; flushes."""
    user_session = UserSession(
        user_id=user.id,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        session_start=utcnow(),
        is_active=True,
    )
    session.add(user_session)
    session.flush()
    return user_session


def issue_access_token(settings: Settings, *, user: User, user_session_id: str) -> tuple[str, int]:
    """A signed access JWT and its lifetime in seconds."""
    ttl = timedelta(minutes=settings.access_token_ttl_minutes)
    token = create_jwt(
        subject=user.id,
        token_type=ACCESS_TOKEN_TYPE,
        secret=settings.jwt_secret_value,
        issuer=settings.jwt_issuer,
        ttl=ttl,
        claims={"role": user.role, "sid": user_session_id},
    )
    return token, int(ttl.total_seconds())


def _store_refresh_token(
    session: Session,
    settings: Settings,
    *,
    user_id: str,
    family_id: str,
    user_session_id: str,
    device: dict[str, Any] | None,
) -> str:
    raw = generate_token(32)
    now = utcnow()
    session.add(
        RefreshToken(
            user_id=user_id,
            token_hash=digest_token(raw),
            family_id=family_id,
            user_session_id=user_session_id,
            device_info=device,
            created_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_ttl_days),
        )
    )
    session.flush()
    return raw


def issue_token_pair(
    session: Session,
    settings: Settings,
    *,
    user: User,
    user_session: UserSession,
    context: ClientContext,
) -> IssuedTokens:
    """A new refresh-token family for a fresh login, and its first access token."""
    family_id = new_uuid()
    refresh = _store_refresh_token(
        session,
        settings,
        user_id=user.id,
        family_id=family_id,
        user_session_id=user_session.id,
        device=device_info(context),
    )
    access, expires_in = issue_access_token(settings, user=user, user_session_id=user_session.id)
    return IssuedTokens(access, refresh, expires_in, user_session.id, family_id)


def revoke_family(session: Session, family_id: str) -> int:
    """Revoke every live token of a family; returns how many were revoked."""
    now = utcnow()
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.is_revoked.is_(False))
        .values(is_revoked=True, is_active=False, revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def end_user_sessions(session: Session, *, user_id: str, user_session_id: str | None = None) -> int:
    """End one user session (or all of a user's) and revoke their refresh tokens."""
    now = utcnow()
    token_filter = [RefreshToken.user_id == user_id, RefreshToken.is_revoked.is_(False)]
    session_filter = [UserSession.user_id == user_id, UserSession.is_active.is_(True)]
    if user_session_id is not None:
        token_filter.append(RefreshToken.user_session_id == user_session_id)
        session_filter.append(UserSession.id == user_session_id)
    session.execute(
        update(RefreshToken)
        .where(*token_filter)
        .values(is_revoked=True, is_active=False, revoked_at=now)
    )
    result = session.execute(
        update(UserSession).where(*session_filter).values(is_active=False, session_end=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _end_family_after_reuse(
    session: Session, token: RefreshToken, *, context: ClientContext, reason: str
) -> None:
    """Revoke the family and end its user session, audit it, and commit before the 401.

    The commit is deliberate: the error that follows rolls the request's session back, and the
    revocation and its audit row must survive it.
    """
    revoked = revoke_family(session, token.family_id)
    if token.user_session_id is not None:
        end_user_sessions(session, user_id=token.user_id, user_session_id=token.user_session_id)
    recorder.audit(
        session,
        action=AuditAction.REFRESH_TOKEN_REUSED,
        user_id=token.user_id,
        context=context,
        resource_type="refresh_token_family",
        resource_id=token.family_id,
        new_values={"reason": reason, "revoked_count": revoked},
        success=False,
        error_message=f"refresh token {reason}; family revoked",
    )
    session.commit()


def rotate_refresh_token(
    session: Session, settings: Settings, *, raw_token: str, context: ClientContext
) -> IssuedTokens:
    """Exchange a refresh token for a new pair in the same family.

    Raises `InvalidRefreshToken` for unknown, revoked, expired or foreign-device tokens and
    tokens of inactive users, and `RefreshTokenReused` (after revoking the family and
    committing the audit row) for a token that was already exchanged.
    """
    token = session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == digest_token(raw_token))
    )
    if token is None:
        raise InvalidRefreshToken()
    if token.used_at is not None:
        _end_family_after_reuse(session, token, context=context, reason="reused")
        raise RefreshTokenReused()
    now = utcnow()
    if token.is_revoked or not token.is_active or token.expires_at <= now:
        raise InvalidRefreshToken()
    login_agent = (token.device_info or {}).get("user_agent")
    if login_agent is not None and login_agent != context.user_agent:
        # Bound to the client that signed in: the same token from another client has leaked.
        _end_family_after_reuse(session, token, context=context, reason="presented_by_other_device")
        raise InvalidRefreshToken("This refresh token belongs to another device; sign in again.")
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise InvalidRefreshToken()
    user_session_id = token.user_session_id
    user_session = session.get(UserSession, user_session_id) if user_session_id else None
    if user_session_id is None or user_session is None or not user_session.is_active:
        raise InvalidRefreshToken()
    # Claim the token atomically: of two concurrent exchanges only one updates the row;
    # the other sees zero rows and is treated as reuse.
    claimed = session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.is_revoked.is_(False),
        )
        .values(used_at=now, is_revoked=True, is_active=False, revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        _end_family_after_reuse(session, token, context=context, reason="reused")
        raise RefreshTokenReused()
    refresh = _store_refresh_token(
        session,
        settings,
        user_id=user.id,
        family_id=token.family_id,
        user_session_id=user_session_id,
        device=token.device_info,
    )
    access, expires_in = issue_access_token(settings, user=user, user_session_id=user_session_id)
    recorder.event(
        session,
        event_type=EventType.TOKEN_REFRESHED,
        user_id=user.id,
        context=context,
        data={"family_id": token.family_id},
        user_session_id=user_session_id,
    )
    return IssuedTokens(access, refresh, expires_in, user_session_id, token.family_id)


def get_refresh_token_of_user_or_none(
    session: Session, *, user_id: str, raw_token: str
) -> RefreshToken | None:
    return session.scalar(
        select(RefreshToken).where(
            RefreshToken.token_hash == digest_token(raw_token), RefreshToken.user_id == user_id
        )
    )
