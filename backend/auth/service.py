"""Users: registration, sign-in, sign-out, profile and password; admin changes to users."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth import throttle
from backend.auth import tokens as auth_tokens
from backend.auth.errors import (
    AccountDeactivated,
    CannotChangeOwnAccess,
    EmailAlreadyRegistered,
    InvalidCredentials,
    LoginThrottled,
    RegistrationClosed,
    UserNotFound,
    WrongCurrentPassword,
)
from backend.auth.models import ROLE_ADMIN, ROLE_VIEWER, User, UserSession
from backend.auth.passwords import ensure_password_policy
from backend.auth.quota import add_token_usage as add_token_usage
from backend.auth.quota import ensure_token_quota as ensure_token_quota
from backend.auth.quota import token_usage_write as token_usage_write
from backend.auth.schemas import AdminUserUpdate, RegisterRequest, UserUpdate
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.errors import ValidationFailed
from backend.core.pagination import keyset_page
from backend.core.security import (
    DUMMY_PASSWORD_HASH,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType

MAX_PREFERENCES_BYTES = 16_384


def normalize_email(email: str) -> str:
    return email.strip().lower()


def get_user_by_email_or_none(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def get_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    full_name: str,
    company: str | None = None,
    role: str = ROLE_VIEWER,
) -> User:
    """Create a user; raises `EmailAlreadyRegistered`. Flushes, does not commit. Hashes inside
    the caller's session: for the command line and set-up scripts (requests use
    `register_user`, which hashes with nothing held)."""
    if get_user_by_email_or_none(session, email) is not None:
        raise EmailAlreadyRegistered()
    return _insert_user(
        session,
        email=email,
        password_hash=hash_password(password),
        full_name=full_name,
        company=company,
        role=role,
    )


def _insert_user(
    session: Session,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    company: str | None,
    role: str,
) -> User:
    """Insert the account (flushes); an email registered meanwhile (the unique key) is
    `EmailAlreadyRegistered`, the session then to be rolled back."""
    user = User(
        email=normalize_email(email),
        password_hash=password_hash,
        full_name=full_name,
        company=company,
        role=role,
        preferences={},
        created_at=utcnow(),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise EmailAlreadyRegistered() from exc
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    session.flush()


def _ensure_can_register(session: Session, email: str) -> None:
    if not get_config_value(session, "auth.registration_open"):
        raise RegistrationClosed()
    if get_user_by_email_or_none(session, email) is not None:
        raise EmailAlreadyRegistered()


def register_user(
    session_factory: Callable[[], Session], *, data: RegisterRequest, context: ClientContext
) -> User:
    """Create a viewer account, blocking; holds nothing while the password is hashed.

    The shape of `login`: one short read (registration open, email free) refuses early without
    hashing, the hash is made with no session open, and one short write checks both again (an
    email registered meanwhile is a 409, never a 500) and inserts the account with its audit
    row and event. Raises `RegistrationClosed` (403), `WeakPassword` (422),
    `EmailAlreadyRegistered` (409). Returns the committed user, detached.
    """
    with session_factory() as session:
        _ensure_can_register(session, data.email)
    ensure_password_policy(data.password, email=data.email)
    password_hash = hash_password(data.password)
    with session_factory() as session:
        _ensure_can_register(session, data.email)
        user = _insert_user(
            session,
            email=data.email,
            password_hash=password_hash,
            full_name=data.full_name.strip(),
            company=data.company,
            role=ROLE_VIEWER,
        )
        recorder.audit(
            session,
            action=AuditAction.REGISTERED,
            user_id=user.id,
            context=context,
            resource_type="user",
            resource_id=user.id,
            new_values={"email": user.email, "full_name": user.full_name, "company": user.company},
        )
        recorder.event(session, event_type=EventType.SIGNED_UP, user_id=user.id, context=context)
        session.commit()
        return user


def _reject_login(
    session: Session,
    *,
    email: str,
    user: User | None,
    context: ClientContext,
    reason: str,
) -> None:
    """Audit a failed login and commit it, so that the 401 that follows cannot roll it back."""
    _audit_refused_login(
        session,
        action=AuditAction.LOGIN_FAILED,
        email=email,
        user=user,
        context=context,
        values={"reason": reason},
        error=reason,
    )


def _audit_refused_login(
    session: Session,
    *,
    action: str,
    email: str,
    user: User | None,
    context: ClientContext,
    values: dict[str, object],
    error: str,
) -> None:
    """Audit a refused sign-in under the email's fingerprint, and commit it."""
    recorder.audit(
        session,
        action=action,
        user_id=user.id if user else None,
        context=context,
        resource_type=throttle.LOGIN_RESOURCE_TYPE,
        resource_id=throttle.email_fingerprint(email),
        new_values={"email": normalize_email(email)[:255], **values},
        success=False,
        error_message=error,
    )
    session.commit()


def login(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    email: str,
    password: str,
    context: ClientContext,
) -> auth_tokens.IssuedTokens:
    """Check the password and start a user session with a new token pair, blocking.

    Holds nothing while the password is hashed (the slow part, tens of milliseconds of CPU):
    the account and the throttle are read in one short session that is closed first, the hash
    is checked (and redone when its parameters are outdated) with no session open, and the
    sign-in is written in one short transaction of its own. A sign-in therefore never keeps a
    platform connection or a SQLite read snapshot through the hash.

    Raises `LoginThrottled` (429, Retry-After) while the email or IP is throttled,
    `InvalidCredentials` or `AccountDeactivated` (401); failures are audited and committed.
    """
    with session_factory() as session:
        user = get_user_by_email_or_none(session, email)
        wait_seconds = throttle.seconds_until_allowed(
            session, email=email, ip_address=context.ip_address, user_id=user.id if user else None
        )
        if wait_seconds is not None:
            _audit_refused_login(
                session,
                action=AuditAction.LOGIN_THROTTLED,
                email=email,
                user=user,
                context=context,
                values={"retry_after": wait_seconds},
                error="too many failed logins",
            )
            raise LoginThrottled(retry_after_seconds=wait_seconds)
        user_id, checked_hash = (user.id, user.password_hash) if user else (None, None)

    if checked_hash is None:
        # Spend the same time as for a real account, so timing does not reveal which exist.
        verify_password(password, DUMMY_PASSWORD_HASH)
        password_ok = False
    else:
        password_ok = verify_password(password, checked_hash)
    new_hash = (
        hash_password(password)
        if password_ok and checked_hash and password_needs_rehash(checked_hash)
        else None
    )

    with session_factory() as session:
        user = session.get(User, user_id) if user_id is not None else None
        if user is None:
            _reject_login(session, email=email, user=None, context=context, reason="unknown email")
            raise InvalidCredentials()
        # A password changed since it was read is not the one just checked.
        if not password_ok or user.password_hash != checked_hash:
            _reject_login(session, email=email, user=user, context=context, reason="wrong password")
            raise InvalidCredentials()
        if not user.is_active:
            _reject_login(session, email=email, user=user, context=context, reason="deactivated")
            raise AccountDeactivated()
        if new_hash is not None:
            user.password_hash = new_hash
        issued = _start_signed_in_session(session, settings, user=user, context=context)
        session.commit()
        return issued


def _start_signed_in_session(
    session: Session, settings: Settings, *, user: User, context: ClientContext
) -> auth_tokens.IssuedTokens:
    user.last_login = utcnow()
    user_session = auth_tokens.start_user_session(session, user=user, context=context)
    issued = auth_tokens.issue_token_pair(
        session, settings, user=user, user_session=user_session, context=context
    )
    recorder.audit(
        session,
        action=AuditAction.LOGIN_SUCCEEDED,
        user_id=user.id,
        context=context,
        resource_type="user_session",
        resource_id=user_session.id,
    )
    recorder.event(
        session,
        event_type=EventType.SIGNED_IN,
        user_id=user.id,
        context=context,
        user_session_id=user_session.id,
    )
    return issued


def logout(
    session: Session,
    *,
    user: User,
    user_session_id: str,
    refresh_token: str | None,
    context: ClientContext,
) -> None:
    """End the caller's user session and revoke its refresh-token family (and the given one's)."""
    auth_tokens.end_user_sessions(session, user_id=user.id, user_session_id=user_session_id)
    family_id = None
    if refresh_token:
        token = auth_tokens.get_refresh_token_of_user_or_none(
            session, user_id=user.id, raw_token=refresh_token
        )
        if token is not None:
            family_id = token.family_id
            auth_tokens.revoke_family(session, token.family_id)
            if token.user_session_id not in (None, user_session_id):
                auth_tokens.end_user_sessions(
                    session, user_id=user.id, user_session_id=token.user_session_id
                )
    recorder.audit(
        session,
        action=AuditAction.LOGOUT,
        user_id=user.id,
        context=context,
        resource_type="user_session",
        resource_id=user_session_id,
        new_values={"family_id": family_id} if family_id else None,
    )
    recorder.event(
        session,
        event_type=EventType.SIGNED_OUT,
        user_id=user.id,
        context=context,
        user_session_id=user_session_id,
    )


def logout_all(session: Session, *, user: User, context: ClientContext) -> int:
    """Revoke every refresh token and end every user session of the user; returns sessions."""
    ended = auth_tokens.end_user_sessions(session, user_id=user.id)
    recorder.audit(
        session,
        action=AuditAction.LOGOUT_ALL,
        user_id=user.id,
        context=context,
        resource_type="user",
        resource_id=user.id,
        new_values={"ended_sessions": ended},
    )
    recorder.event(
        session,
        event_type=EventType.SIGNED_OUT,
        user_id=user.id,
        context=context,
        data={"all_sessions": True, "ended_sessions": ended},
    )
    return ended


def change_password(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    user: User,
    current_password: str,
    new_password: str,
    context: ClientContext,
) -> auth_tokens.IssuedTokens:
    """Set a new password, end every session of the user, and start a fresh one, blocking.

    Holds nothing while hashing (the shape of `login`): `user` is the caller as read by the
    request's authentication (detached); the current password is checked, the new one checked
    against it and hashed with no session open; one short write reads the account again and
    refuses when its password changed meanwhile (the one just checked is no longer current),
    then stores the hash, ends the sessions and starts a new one.

    Raises `WrongCurrentPassword` (403, audited and committed) and `WeakPassword` (422).
    """
    checked_hash = user.password_hash
    if not verify_password(current_password, checked_hash):
        _refuse_password_change(session_factory, user_id=user.id, context=context)
        raise WrongCurrentPassword()
    ensure_password_policy(new_password, email=user.email)
    if verify_password(new_password, checked_hash):
        raise ValidationFailed(
            "The new password must differ from the current one.",
            details={"field": "new_password"},
        )
    new_hash = hash_password(new_password)
    with session_factory() as session:
        stored = session.get(User, user.id)
        if stored is None or not stored.is_active:
            raise AccountDeactivated()
        if stored.password_hash != checked_hash:
            session.rollback()
            _refuse_password_change(session_factory, user_id=user.id, context=context)
            raise WrongCurrentPassword()
        stored.password_hash = new_hash
        stored.password_changed_at = utcnow()
        ended = auth_tokens.end_user_sessions(session, user_id=stored.id)
        recorder.audit(
            session,
            action=AuditAction.PASSWORD_CHANGED,
            user_id=stored.id,
            context=context,
            resource_type="user",
            resource_id=stored.id,
            new_values={"ended_sessions": ended},
        )
        issued = _start_signed_in_session(session, settings, user=stored, context=context)
        session.commit()
        return issued


def _refuse_password_change(
    session_factory: Callable[[], Session], *, user_id: str, context: ClientContext
) -> None:
    """Audit a refused password change in a short transaction of its own, and commit it."""
    with session_factory() as session:
        recorder.audit(
            session,
            action=AuditAction.PASSWORD_CHANGED,
            user_id=user_id,
            context=context,
            resource_type="user",
            resource_id=user_id,
            success=False,
            error_message="current password is incorrect",
        )
        session.commit()


def update_profile(
    session: Session, *, user: User, data: UserUpdate, context: ClientContext
) -> User:
    """Apply the fields sent (name, company, preferences); raises `ValidationFailed`."""
    changes = data.model_dump(exclude_unset=True)
    if "full_name" in changes and changes["full_name"] is None:
        raise ValidationFailed("full_name cannot be null.", details={"field": "full_name"})
    if changes.get("preferences") is not None:
        size = len(json.dumps(changes["preferences"]).encode("utf-8"))
        if size > MAX_PREFERENCES_BYTES:
            raise ValidationFailed(
                f"preferences may hold at most {MAX_PREFERENCES_BYTES} bytes of JSON.",
                details={"field": "preferences", "bytes": size},
            )
    old_values: dict[str, Any] = {}
    new_values: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "full_name":
            value = value.strip()
        if getattr(user, field) != value:
            old_values[field] = getattr(user, field)
            new_values[field] = value
            setattr(user, field, value)
    if new_values:
        user.updated_at = utcnow()
        session.flush()
        recorder.audit(
            session,
            action=AuditAction.PROFILE_UPDATED,
            user_id=user.id,
            context=context,
            resource_type="user",
            resource_id=user.id,
            old_values=old_values,
            new_values=new_values,
        )
    return user


def count_session_query(session: Session, user_session_id: str | None) -> None:
    """Add one to the user session's `queries_count` (called by the ask pipeline)."""
    if user_session_id is None:
        return
    session.execute(
        update(UserSession)
        .where(UserSession.id == user_session_id)
        .values(queries_count=UserSession.queries_count + 1)
        .execution_options(synchronize_session=False)
    )


def list_users(
    session: Session,
    *,
    limit: int,
    cursor: str | None,
    role: str | None = None,
    is_active: bool | None = None,
) -> tuple[list[User], str | None]:
    statement = select(User)
    if role is not None:
        statement = statement.where(User.role == role)
    if is_active is not None:
        statement = statement.where(User.is_active.is_(is_active))
    return keyset_page(
        session,
        statement,
        keys=[User.created_at, User.id],
        kinds=[datetime, str],
        key_of=lambda u: (u.created_at, u.id),
        limit=limit,
        cursor=cursor,
    )


def update_user_by_admin(
    session: Session, *, admin: User, user_id: str, data: AdminUserUpdate, context: ClientContext
) -> User:
    """Change a user's role or active flag; takes effect on the user's very next request.

    Deactivation also ends the user's sessions and revokes their refresh tokens. Raises
    `UserNotFound` and `CannotChangeOwnAccess` (an admin locking themselves out).
    """
    user = get_user(session, user_id)
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    if user.id == admin.id and (
        changes.get("role", ROLE_ADMIN) != ROLE_ADMIN or changes.get("is_active", True) is False
    ):
        raise CannotChangeOwnAccess()
    old_values = {k: getattr(user, k) for k in changes if getattr(user, k) != changes[k]}
    new_values = {k: changes[k] for k in old_values}
    if not new_values:
        return user
    for field, value in new_values.items():
        setattr(user, field, value)
    user.updated_at = utcnow()
    session.flush()
    if new_values.get("is_active") is False:
        auth_tokens.end_user_sessions(session, user_id=user.id)
    recorder.audit(
        session,
        action=AuditAction.USER_UPDATED_BY_ADMIN,
        user_id=admin.id,
        context=context,
        resource_type="user",
        resource_id=user.id,
        old_values=old_values,
        new_values=new_values,
    )
    session.refresh(user)
    return user
