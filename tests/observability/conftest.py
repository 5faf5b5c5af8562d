"""Users and bearer tokens for the observability and admin tests, signed in as a login would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.core.config import Settings
from tests.factories import create_user, token_headers


@dataclass
class Account:
    user: User
    headers: dict[str, str]

    @property
    def id(self) -> str:
        return self.user.id


MakeAccount = Callable[..., Account]


@pytest.fixture
def make_account(session: Session, settings: Settings) -> MakeAccount:
    """Build a committed user of `role` and the Authorization header of a fresh access token."""

    def build(role: str = "viewer") -> Account:
        user = create_user(
            session,
            email=f"{role}-{uuid.uuid4().hex[:10]}@example.com",
            password="a-long-test-password",
            full_name=f"Test {role}",
            role=role,
        )
        return Account(user, token_headers(session, settings, user))

    return build


@pytest.fixture
def admin_account(make_account: MakeAccount) -> Account:
    return make_account("admin")


@pytest.fixture
def viewer_account(make_account: MakeAccount) -> Account:
    return make_account("viewer")
