"""A sign-in holds no platform connection while it hashes the password.

The hash is the slow part of a sign-in (tens of milliseconds of CPU, more on a busy machine);
a sign-in that kept its session's connection through it held a pool connection on PostgreSQL
and a read snapshot on SQLite for that long. Here the real password functions run, observed:
each records how many platform connections the thread calling it has checked out.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from passlib.context import CryptContext
from sqlalchemy.orm import Session

from backend.auth import service as auth_service
from backend.auth.models import User
from tests import factories
from tests.factories import DEFAULT_PASSWORD

API = "/api/v1"


def _login(client: TestClient, email: str, password: str = DEFAULT_PASSWORD) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password})


def test_a_sign_in_hashes_with_no_connection_held(
    client: TestClient, user: User, held_while_hashing: list[int]
) -> None:
    response = _login(client, user.email)
    assert response.status_code == 200, response.text
    assert held_while_hashing == [0]


def test_failed_sign_ins_hash_with_no_connection_held(
    client: TestClient, user: User, held_while_hashing: list[int]
) -> None:
    assert _login(client, user.email, "Not-the-password-1").status_code == 401
    assert _login(client, "nobody@example.com").status_code == 401
    assert held_while_hashing == [0, 0]


def test_an_outdated_hash_is_redone_with_no_connection_held(
    client: TestClient, session: Session, held_while_hashing: list[int]
) -> None:
    user = factories.create_user(session, email="old-hash@example.com")
    user.password_hash = CryptContext(schemes=["argon2"]).hash(DEFAULT_PASSWORD)
    session.commit()
    assert _login(client, "old-hash@example.com").status_code == 200
    # verify, then the new hash
    assert held_while_hashing == [0, 0]
    session.expire_all()
    stored = session.get(User, user.id)
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_password_changed_during_the_hash_is_refused(
    client: TestClient, session: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write step reads the account again: a password changed between the read and the
    write (here: while the old one is being checked) is not the one that was checked."""
    real_verify = auth_service.verify_password
    engine = session.get_bind()

    def change_meanwhile(password: str, password_hash: str) -> bool:
        with Session(engine) as other:
            changed = other.get(User, user.id)
            assert changed is not None
            changed.password_hash = auth_service.hash_password("Another-password-77")
            other.commit()
        return real_verify(password, password_hash)

    monkeypatch.setattr(auth_service, "verify_password", change_meanwhile)
    response = _login(client, user.email)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_credentials"
