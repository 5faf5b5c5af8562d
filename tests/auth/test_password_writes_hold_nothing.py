"""Registering and changing a password hold no platform connection while they hash.

The shape of a sign-in (`test_sign_in_holds_nothing.py`): a short read, the hashes with
nothing held, a short write that notices what changed meanwhile. The real password functions
run, observed (`held_while_hashing` in conftest.py): each records how many platform
connections its thread has checked out.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.models import User
from backend.observability.models import AuditLog
from tests import factories
from tests.factories import DEFAULT_PASSWORD

API = "/api/v1"
NEW_PASSWORD = "A-new-password-2025"


def _register(client: TestClient, email: str) -> Any:
    return client.post(
        f"{API}/auth/register",
        json={"email": email, "password": "Registered-password-9", "full_name": "Rita Register"},
    )


def _change(client: TestClient, headers: dict[str, str], current: str = DEFAULT_PASSWORD) -> Any:
    return client.post(
        f"{API}/auth/change-password",
        headers=headers,
        json={"current_password": current, "new_password": NEW_PASSWORD},
    )


def test_registering_hashes_with_no_connection_held(
    client: TestClient, session: Session, held_while_hashing: list[int]
) -> None:
    response = _register(client, "rita@example.com")
    assert response.status_code == 201, response.text
    assert held_while_hashing == [0]
    stored = session.scalar(select(User).where(User.email == "rita@example.com"))
    assert stored is not None
    assert auth_service.verify_password("Registered-password-9", stored.password_hash)


def test_an_email_registered_during_the_hash_is_a_conflict(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write step checks the email again: one registered between the read and the write
    (here: while the password is hashed) is a 409, with nothing half-written."""
    real_hash = auth_service.hash_password
    engine = session.get_bind()

    def register_meanwhile(password: str) -> str:
        with Session(engine) as other:
            other.add(
                User(
                    email="twice@example.com",
                    password_hash=real_hash("Other-password-55"),
                    full_name="First One",
                    role="viewer",
                    preferences={},
                )
            )
            other.commit()
        return real_hash(password)

    monkeypatch.setattr(auth_service, "hash_password", register_meanwhile)
    response = _register(client, "twice@example.com")
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "email_already_registered"
    users = session.scalars(select(User).where(User.email == "twice@example.com")).all()
    assert [u.full_name for u in users] == ["First One"]


def test_changing_a_password_hashes_with_no_connection_held(
    client: TestClient,
    session: Session,
    user: User,
    auth_headers: dict[str, str],
    held_while_hashing: list[int],
) -> None:
    response = _change(client, auth_headers)
    assert response.status_code == 200, response.text
    # verify the current one, check the new one differs, hash the new one
    assert held_while_hashing == [0, 0, 0]
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None
    assert auth_service.verify_password(NEW_PASSWORD, stored.password_hash)


def test_a_wrong_current_password_is_refused_and_audited_with_nothing_held(
    client: TestClient,
    session: Session,
    user: User,
    auth_headers: dict[str, str],
    held_while_hashing: list[int],
) -> None:
    response = _change(client, auth_headers, current="Not-the-password-1")
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "wrong_current_password"
    assert held_while_hashing == [0]
    refused = session.scalars(
        select(AuditLog).where(AuditLog.user_id == user.id, AuditLog.success.is_(False))
    ).all()
    assert [row.action for row in refused] == ["auth.password_change"]


def test_a_password_changed_during_the_hash_is_not_overwritten(
    client: TestClient,
    session: Session,
    user: User,
    auth_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write step reads the account again: a password changed between the read and the
    write (here: while the new one is hashed) is not the one that was checked, so the change
    is refused and the other one stands."""
    real_hash = auth_service.hash_password
    engine = session.get_bind()
    other_hash = real_hash("Another-password-77")

    def change_meanwhile(password: str) -> str:
        with Session(engine) as other:
            changed = other.get(User, user.id)
            assert changed is not None
            changed.password_hash = other_hash
            other.commit()
        return real_hash(password)

    monkeypatch.setattr(auth_service, "hash_password", change_meanwhile)
    response = _change(client, auth_headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "wrong_current_password"
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None
    assert stored.password_hash == other_hash


def test_an_api_key_cannot_change_a_password(
    client: TestClient, session: Session, user: User, held_while_hashing: list[int]
) -> None:
    key = factories.create_api_key(session, user)
    response = _change(client, {"X-API-Key": key.key})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "session_required"
    assert held_while_hashing == []
