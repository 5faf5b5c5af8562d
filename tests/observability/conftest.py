"""Users and bearer tokens for the observability and admin tests (built directly, no login API)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.models import User
from backend.core.config import Settings
from backend.core.security import create_jwt


@dataclass
class Account:
    user: User
    headers: dict[str, str]

    @property
    def id(self) -> str:
        return self.user.id


MakeAccount = Callable[..., Account]


def access_token(settings: Settings, user_id: str) -> str:
    return create_jwt(
        subject=user_id,
        token_type="access",
        secret=settings.jwt_secret_value,
        issuer=settings.jwt_issuer,
        ttl=timedelta(minutes=15),
    )


@pytest.fixture
def make_account(session: Session, settings: Settings) -> MakeAccount:
    """Build a committed user of `role` and the Authorization header of a fresh access token."""

    def build(role: str = "viewer") -> Account:
        user = auth_service.create_user(
            session,
            email=f"{role}-{uuid.uuid4().hex[:10]}@example.com",
            password="a-long-test-password",
            full_name=f"Test {role}",
            role=role,
        )
        session.commit()
        return Account(user, {"Authorization": f"Bearer {access_token(settings, user.id)}"})

    return build


@pytest.fixture
def admin(make_account: MakeAccount) -> Account:
    return make_account("admin")


@pytest.fixture
def viewer(make_account: MakeAccount) -> Account:
    return make_account("viewer")
