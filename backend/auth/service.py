"""Users: creation, lookup and passwords."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.errors import EmailAlreadyRegistered, UserNotFound
from backend.auth.models import ROLE_VIEWER, User
from backend.core.db import utcnow
from backend.core.security import hash_password


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
    """Create a user; raises `EmailAlreadyRegistered`. Flushes, does not commit."""
    if get_user_by_email_or_none(session, email) is not None:
        raise EmailAlreadyRegistered()
    user = User(
        email=normalize_email(email),
        password_hash=hash_password(password),
        full_name=full_name,
        company=company,
        role=role,
        preferences={},
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = utcnow()
    session.flush()
