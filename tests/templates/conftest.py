"""Callers for the templates tests: users made directly, with access tokens or API keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.auth.models import ROLE_VIEWER, User
from backend.auth.scopes import ROLE_SCOPES
from backend.core.config import Settings
from tests.factories import create_api_key, create_user, token_headers


@dataclass
class Caller:
    user: User
    headers: dict[str, str]

    @property
    def principal(self) -> Principal:
        return Principal(user=self.user, scopes=ROLE_SCOPES[self.user.role])


@pytest.fixture
def make_caller(session: Session, settings: Settings) -> Callable[..., Caller]:
    def make(role: str = ROLE_VIEWER) -> Caller:
        user = create_user(
            session,
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            password="a long enough password",
            full_name="Template Tester",
            role=role,
        )
        return Caller(user=user, headers=token_headers(session, settings, user))

    return make


@pytest.fixture
def make_api_key(session: Session) -> Callable[..., dict[str, str]]:
    def make(user: User, scopes: list[str]) -> dict[str, str]:
        return create_api_key(session, user, scopes=scopes).headers

    return make
