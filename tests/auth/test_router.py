"""Auth and API keys over real HTTP: the happy paths and the attacks of issue 3."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from jose import jwt
from passlib.context import CryptContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.deps import CurrentPrincipal, Principal, require_scopes
from backend.auth.models import ApiKey, RefreshToken, User, UserSession
from backend.auth.scopes import Scope
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.core.security import create_jwt
from backend.observability.models import AuditLog, Event
from tests import factories
from tests.factories import DEFAULT_PASSWORD, CreatedApiKey, bearer

API = "/api/v1"
STRONG_PASSWORD = "Tulip-orbit-9931"


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


def _login(client: TestClient, email: str, password: str = DEFAULT_PASSWORD, **kw: Any) -> Any:
    return client.post(f"{API}/auth/login", json={"email": email, "password": password}, **kw)


def _tokens(client: TestClient, email: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
    response = _login(client, email, password)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _audit_actions(session: Session, user_id: str | None = None) -> list[str]:
    session.expire_all()
    query = select(AuditLog.action).order_by(AuditLog.id)
    if user_id is not None:
        query = query.where(AuditLog.user_id == user_id)
    return list(session.scalars(query))


# --- registration -----------------------------------------------------------------------


def test_register_creates_a_viewer_and_never_returns_the_hash(
    client: TestClient, session: Session
) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={
            "email": "New.Person@Example.com",
            "password": STRONG_PASSWORD,
            "full_name": "New Person",
            "company": "Acme",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "new.person@example.com"
    assert body["role"] == "viewer"
    assert body["company"] == "Acme"
    assert "password" not in response.text and "argon2" not in response.text
    user = session.get(User, body["id"])
    assert user is not None and user.password_hash.startswith("$argon2")
    assert "auth.register" in _audit_actions(session, body["id"])
    assert _tokens(client, "new.person@example.com", STRONG_PASSWORD)["token_type"] == "bearer"


def test_register_twice_with_one_email_conflicts(client: TestClient, user: User) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={"email": user.email.upper(), "password": STRONG_PASSWORD, "full_name": "Twin"},
    )
    assert response.status_code == 409
    assert _error(response)["code"] == "email_already_registered"


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("Short-1", "at least 10"),
        ("alllowercaseletters", "two kinds"),
        ("1234567890123", "two kinds"),
        ("Password123", "too common"),
        ("weak.person@example.com", "email"),
        ("aaaaaaaaaaaaaaaaaaa", "two kinds"),
    ],
)
def test_register_refuses_weak_passwords_with_a_clear_422(
    client: TestClient, password: str, problem: str
) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={"email": "weak.person@example.com", "password": password, "full_name": "Weak"},
    )
    assert response.status_code == 422
    error = _error(response)
    assert error["code"] == "weak_password"
    assert any(problem in p for p in error["details"]["problems"]), error
    assert password not in response.text


def test_register_with_a_malformed_email_is_422(client: TestClient) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={"email": "not-an-email", "password": STRONG_PASSWORD, "full_name": "X"},
    )
    assert response.status_code == 422
    assert _error(response)["code"] == "validation_error"
    assert STRONG_PASSWORD not in response.text


def test_registration_can_be_switched_off(client: TestClient, session: Session) -> None:
    factories.set_system_config(session, "auth.registration_open", False)
    response = client.post(
        f"{API}/auth/register",
        json={"email": "late@example.com", "password": STRONG_PASSWORD, "full_name": "Late"},
    )
    assert response.status_code == 403
    assert _error(response)["code"] == "registration_closed"


# --- login, sessions, me ----------------------------------------------------------------


def test_login_starts_a_user_session_and_records_it(
    client: TestClient, session: Session, user: User
) -> None:
    response = _login(client, user.email.upper(), headers={"User-Agent": "pytest-browser/1.0"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    claims = jwt.get_unverified_claims(body["access_token"])
    assert claims["sub"] == user.id and claims["role"] == "viewer" and claims["typ"] == "access"
    session.expire_all()
    user_session = session.get(UserSession, claims["sid"])
    assert user_session is not None and user_session.is_active
    assert user_session.user_agent == "pytest-browser/1.0"
    assert user_session.ip_address == "testclient"
    assert session.get(User, user.id).last_login is not None  # type: ignore[union-attr]
    token_row = session.scalar(select(RefreshToken).where(RefreshToken.user_id == user.id))
    assert token_row is not None
    assert token_row.token_hash != body["refresh_token"]
    assert token_row.device_info == {"ip_address": "testclient", "user_agent": "pytest-browser/1.0"}
    assert "auth.login" in _audit_actions(session, user.id)
    event_types = set(session.scalars(select(Event.event_type).where(Event.user_id == user.id)))
    assert "signed_in" in event_types


def test_passwords_are_hashed_with_the_documented_argon2id_settings(
    client: TestClient, session: Session
) -> None:
    response = client.post(
        f"{API}/auth/register",
        json={"email": "cost@example.com", "password": STRONG_PASSWORD, "full_name": "Cost"},
    )
    assert response.status_code == 201, response.text
    stored = session.get(User, response.json()["id"])
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_a_hash_made_with_other_settings_signs_in_and_is_rehashed(
    client: TestClient, session: Session
) -> None:
    # passlib's own defaults (64 MiB, 3 passes, 4 lanes): what earlier versions stored.
    old_context = CryptContext(schemes=["argon2"])
    user = factories.create_user(session, email="old-hash@example.com")
    user.password_hash = old_context.hash(DEFAULT_PASSWORD)
    session.commit()
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert _login(client, "old-hash@example.com").status_code == 200
    session.expire_all()
    upgraded = session.get(User, user.id)
    assert upgraded is not None
    assert upgraded.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert _login(client, "old-hash@example.com").status_code == 200


def test_oauth2_password_form_signs_in(client: TestClient, user: User) -> None:
    response = client.post(
        f"{API}/auth/token", data={"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    me = client.get(f"{API}/auth/me", headers=bearer(response.json()["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == user.id


@pytest.mark.parametrize("known", [True, False])
def test_failed_login_is_401_and_audited_without_the_password(
    client: TestClient, session: Session, user: User, known: bool
) -> None:
    email = user.email if known else "nobody@example.com"
    response = _login(client, email, "Wrong-password-1")
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_credentials"
    session.expire_all()
    row = session.scalars(
        select(AuditLog).where(AuditLog.action == "auth.login_failed").order_by(AuditLog.id.desc())
    ).first()
    assert row is not None and row.success is False
    assert row.user_id == (user.id if known else None)
    assert row.ip_address == "testclient"
    assert "Wrong-password-1" not in json.dumps(row.new_values)


def test_me_reads_and_updates_the_profile(
    client: TestClient, session: Session, user: User, auth_headers: dict[str, str]
) -> None:
    assert client.get(f"{API}/auth/me", headers=auth_headers).json()["email"] == user.email
    response = client.patch(
        f"{API}/auth/me",
        headers=auth_headers,
        json={"full_name": "Vera V.", "company": "Initech", "preferences": {"theme": "dark"}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["full_name"], body["company"], body["preferences"]) == (
        "Vera V.",
        "Initech",
        {"theme": "dark"},
    )
    assert client.get(f"{API}/auth/me", headers=auth_headers).json()["company"] == "Initech"
    assert "auth.profile_update" in _audit_actions(session, user.id)


def test_me_refuses_a_null_name_and_fields_it_does_not_know(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    response = client.patch(f"{API}/auth/me", headers=auth_headers, json={"full_name": None})
    assert response.status_code == 422
    response = client.patch(f"{API}/auth/me", headers=auth_headers, json={"full_name": ""})
    assert response.status_code == 422


def test_me_without_credentials_is_401(client: TestClient) -> None:
    response = client.get(f"{API}/auth/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    _error(response)


# --- attacks on access tokens -----------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def _alg_none(token: str) -> str:
    payload = token.split(".")[1]
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."


def _elevated(token: str) -> str:
    """The same claims with role admin, signed by a key the server does not have."""
    claims = jwt.get_unverified_claims(token)
    return str(jwt.encode({**claims, "role": "admin"}, "guessed-secret", algorithm="HS256"))


def _hs512(token: str, settings: Settings) -> str:
    claims = jwt.get_unverified_claims(token)
    return str(jwt.encode(claims, settings.jwt_secret_value, algorithm="HS512"))


def _expired(token: str, settings: Settings) -> str:
    claims = jwt.get_unverified_claims(token)
    return create_jwt(
        subject=claims["sub"],
        token_type="access",
        secret=settings.jwt_secret_value,
        issuer=settings.jwt_issuer,
        ttl=timedelta(minutes=15),
        claims={"role": claims["role"], "sid": claims["sid"]},
        now=datetime.now(UTC) - timedelta(hours=1),
    )


def _retyped(
    token: str, settings: Settings, *, typ: str = "refresh", iss: str | None = None
) -> str:
    claims = jwt.get_unverified_claims(token)
    return create_jwt(
        subject=claims["sub"],
        token_type=typ,
        secret=settings.jwt_secret_value,
        issuer=iss or settings.jwt_issuer,
        ttl=timedelta(minutes=15),
        claims={"role": claims["role"], "sid": claims["sid"]},
    )


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda t, s: _tampered(t), id="tampered-signature"),
        pytest.param(lambda t, s: _alg_none(t), id="alg-none"),
        pytest.param(lambda t, s: _elevated(t), id="signed-with-another-key"),
        pytest.param(_hs512, id="unexpected-algorithm-hs512"),
        pytest.param(_expired, id="expired"),
        pytest.param(lambda t, s: _retyped(t, s, typ="refresh"), id="wrong-token-type"),
        pytest.param(lambda t, s: _retyped(t, s, typ="access", iss="other"), id="wrong-issuer"),
        pytest.param(lambda t, s: "not.a.jwt", id="garbage"),
    ],
)
def test_forged_or_stale_access_tokens_are_refused(
    client: TestClient, settings: Settings, user: User, forge: Any
) -> None:
    good = _tokens(client, user.email)["access_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(good)).status_code == 200
    response = client.get(f"{API}/auth/me", headers=bearer(forge(good, settings)))
    assert response.status_code == 401
    assert _error(response)["code"] == "unauthorized"


def test_a_refresh_token_is_not_an_access_token(client: TestClient, user: User) -> None:
    tokens = _tokens(client, user.email)
    response = client.get(f"{API}/auth/me", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 401


def test_an_access_token_is_not_a_refresh_token(client: TestClient, user: User) -> None:
    tokens = _tokens(client, user.email)
    response = client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_refresh_token"


# --- refresh rotation and reuse ---------------------------------------------------------


def test_refresh_rotates_the_pair_and_revokes_the_old_token(
    client: TestClient, session: Session, user: User
) -> None:
    first = _tokens(client, user.email)
    response = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    sid = jwt.get_unverified_claims(first["access_token"])["sid"]
    assert jwt.get_unverified_claims(second["access_token"])["sid"] == sid
    assert client.get(f"{API}/auth/me", headers=bearer(second["access_token"])).status_code == 200
    session.expire_all()
    rows = list(session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)))
    assert len(rows) == 2
    assert len({r.family_id for r in rows}) == 1
    old = next(r for r in rows if r.used_at is not None)
    assert old.is_revoked and old.revoked_at is not None


def test_reused_refresh_token_revokes_its_family(
    client: TestClient, session: Session, user: User
) -> None:
    first = _tokens(client, user.email)
    other_login = _tokens(client, user.email)
    second = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    # The stolen first token is replayed: 401, and the legitimate successor dies with it.
    replay = client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert _error(replay)["code"] == "refresh_token_reused"
    successor = client.post(
        f"{API}/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
    )
    assert successor.status_code == 401
    access = second.json()["access_token"]
    assert client.get(f"{API}/auth/me", headers=bearer(access)).status_code == 401
    # Another login (another family) is untouched.
    other = client.post(f"{API}/auth/refresh", json={"refresh_token": other_login["refresh_token"]})
    assert other.status_code == 200
    session.expire_all()
    reuse = session.scalar(select(AuditLog).where(AuditLog.action == "auth.refresh_token_reused"))
    assert reuse is not None and reuse.user_id == user.id and reuse.success is False
    assert first["refresh_token"] not in json.dumps(reuse.new_values)


def test_refresh_token_from_another_device_is_refused(client: TestClient, user: User) -> None:
    tokens = _login(client, user.email, headers={"User-Agent": "laptop-browser"}).json()
    stolen = client.post(
        f"{API}/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"User-Agent": "attacker-script"},
    )
    assert stolen.status_code == 401
    owner = client.post(
        f"{API}/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"User-Agent": "laptop-browser"},
    )
    assert owner.status_code == 401


def test_unknown_refresh_token_is_401(client: TestClient) -> None:
    response = client.post(f"{API}/auth/refresh", json={"refresh_token": "x" * 43})
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_refresh_token"


# --- logout, logout-all, change-password ------------------------------------------------


def test_logout_ends_this_session_only(client: TestClient, session: Session, user: User) -> None:
    here = _tokens(client, user.email)
    there = _tokens(client, user.email)
    response = client.post(
        f"{API}/auth/logout",
        headers=bearer(here["access_token"]),
        json={"refresh_token": here["refresh_token"]},
    )
    assert response.status_code == 204
    assert client.get(f"{API}/auth/me", headers=bearer(here["access_token"])).status_code == 401
    refreshed = client.post(f"{API}/auth/refresh", json={"refresh_token": here["refresh_token"]})
    assert refreshed.status_code == 401
    assert client.get(f"{API}/auth/me", headers=bearer(there["access_token"])).status_code == 200
    session.expire_all()
    sid = jwt.get_unverified_claims(here["access_token"])["sid"]
    ended = session.get(UserSession, sid)
    assert ended is not None and not ended.is_active and ended.session_end is not None
    assert "auth.logout" in _audit_actions(session, user.id)


def test_logout_all_ends_every_session(client: TestClient, session: Session, user: User) -> None:
    logins = [_tokens(client, user.email) for _ in range(3)]
    response = client.post(f"{API}/auth/logout-all", headers=bearer(logins[0]["access_token"]))
    assert response.status_code == 204
    for tokens in logins:
        me = client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 401
        refresh = client.post(
            f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
    session.expire_all()
    active = session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.is_active.is_(True))
    ).all()
    assert active == []
    assert "auth.logout_all" in _audit_actions(session, user.id)


def test_change_password_ends_every_session_and_starts_a_new_one(
    client: TestClient, session: Session, user: User
) -> None:
    old = _tokens(client, user.email)
    response = client.post(
        f"{API}/auth/change-password",
        headers=bearer(old["access_token"]),
        json={"current_password": DEFAULT_PASSWORD, "new_password": STRONG_PASSWORD},
    )
    assert response.status_code == 200, response.text
    new = response.json()
    assert client.get(f"{API}/auth/me", headers=bearer(old["access_token"])).status_code == 401
    old_refresh = client.post(f"{API}/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert old_refresh.status_code == 401
    assert client.get(f"{API}/auth/me", headers=bearer(new["access_token"])).status_code == 200
    assert _login(client, user.email).status_code == 401
    assert _login(client, user.email, STRONG_PASSWORD).status_code == 200
    assert "auth.password_change" in _audit_actions(session, user.id)
    rows = session.scalars(select(AuditLog.new_values).where(AuditLog.user_id == user.id)).all()
    assert STRONG_PASSWORD not in json.dumps(rows) and DEFAULT_PASSWORD not in json.dumps(rows)


def test_change_password_checks_the_current_one_and_the_policy(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    wrong = client.post(
        f"{API}/auth/change-password",
        headers=auth_headers,
        json={"current_password": "Not-the-password-1", "new_password": STRONG_PASSWORD},
    )
    assert wrong.status_code == 403
    assert _error(wrong)["code"] == "wrong_current_password"
    weak = client.post(
        f"{API}/auth/change-password",
        headers=auth_headers,
        json={"current_password": DEFAULT_PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422
    assert _error(weak)["code"] == "weak_password"
    assert client.get(f"{API}/auth/me", headers=auth_headers).status_code == 200


# --- API keys ---------------------------------------------------------------------------


def test_api_key_secret_is_shown_once_and_only_its_hash_is_stored(
    client: TestClient, session: Session, user: User, auth_headers: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/api-keys",
        headers=auth_headers,
        json={"key_name": "reports", "scopes": ["chat:read", "query:sql"]},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["key"]
    assert secret.startswith(created["key_prefix"] + "_")
    assert created["scopes"] == ["chat:read", "query:sql"]
    listed = client.get(f"{API}/api-keys", headers=auth_headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    assert secret not in listed.text and "key" not in listed.json()["items"][0]
    session.expire_all()
    stored = session.get(ApiKey, created["id"])
    assert stored is not None and stored.key_hash != secret and secret not in stored.key_hash
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "api_key.create"))
    assert audit is not None and secret not in json.dumps(audit.new_values)
    me = client.get(f"{API}/auth/me", headers={"X-API-Key": secret})
    assert me.status_code == 200 and me.json()["id"] == user.id


def test_revoked_key_is_refused_on_the_next_request(
    client: TestClient, session: Session, api_key: CreatedApiKey, auth_headers: dict[str, str]
) -> None:
    assert client.get(f"{API}/auth/me", headers=api_key.headers).status_code == 200
    response = client.delete(f"{API}/api-keys/{api_key.id}", headers=auth_headers)
    assert response.status_code == 204
    refused = client.get(f"{API}/auth/me", headers=api_key.headers)
    assert refused.status_code == 401
    _error(refused)
    listed = client.get(f"{API}/api-keys", headers=auth_headers).json()["items"]
    assert listed[0]["is_active"] is False and listed[0]["revoked_at"] is not None
    assert "api_key.revoke" in _audit_actions(session)


def test_expired_and_unknown_keys_are_refused(
    client: TestClient, session: Session, user: User
) -> None:
    expired = factories.create_api_key(
        session, user, expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert client.get(f"{API}/auth/me", headers=expired.headers).status_code == 401
    unknown = client.get(f"{API}/auth/me", headers={"X-API-Key": "nlsql_00000000_nothing"})
    assert unknown.status_code == 401


def test_another_users_key_answers_404(
    client: TestClient, session: Session, auth_headers: dict[str, str]
) -> None:
    stranger = factories.create_user(session)
    their_key = factories.create_api_key(session, stranger)
    response = client.delete(f"{API}/api-keys/{their_key.id}", headers=auth_headers)
    assert response.status_code == 404
    assert _error(response)["code"] == "api_key_not_found"
    assert client.get(f"{API}/auth/me", headers=their_key.headers).status_code == 200
    assert client.delete(f"{API}/api-keys/no-such-key", headers=auth_headers).status_code == 404


def test_key_scopes_cannot_exceed_the_owners_role(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/api-keys", headers=auth_headers, json={"key_name": "x", "scopes": ["admin"]}
    )
    assert response.status_code == 403
    assert _error(response)["code"] == "scopes_exceed_role"
    unknown = client.post(
        f"{API}/api-keys", headers=auth_headers, json={"key_name": "x", "scopes": ["root"]}
    )
    assert unknown.status_code == 422


def test_key_connections_must_be_the_owners(
    client: TestClient, session: Session, user: User, auth_headers: dict[str, str]
) -> None:
    stranger = factories.create_user(session)
    mine = DatabaseConnection(
        user_id=user.id, connection_name="mine", db_type="sqlite", db_name="a"
    )
    theirs = DatabaseConnection(
        user_id=stranger.id, connection_name="theirs", db_type="sqlite", db_name="b"
    )
    session.add_all([mine, theirs])
    session.commit()
    refused = client.post(
        f"{API}/api-keys",
        headers=auth_headers,
        json={"key_name": "x", "scopes": ["chat:read"], "connection_ids": [mine.id, theirs.id]},
    )
    assert refused.status_code == 422
    assert _error(refused)["details"]["connection_ids"] == [theirs.id]
    accepted = client.post(
        f"{API}/api-keys",
        headers=auth_headers,
        json={"key_name": "x", "scopes": ["chat:read"], "connection_ids": [mine.id]},
    )
    assert accepted.status_code == 201
    assert accepted.json()["connection_ids"] == [mine.id]


def test_key_expiry_in_the_past_is_refused(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    response = client.post(
        f"{API}/api-keys",
        headers=auth_headers,
        json={"key_name": "x", "scopes": ["chat:read"], "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert response.status_code == 422


def test_api_keys_cannot_manage_keys_or_sessions(
    client: TestClient, api_key: CreatedApiKey
) -> None:
    # Otherwise a narrow key could mint itself a wider one.
    for method, path, body in [
        ("POST", "/api-keys", {"key_name": "wider", "scopes": ["chat:read"]}),
        ("GET", "/api-keys", None),
        ("POST", "/auth/logout-all", None),
        ("POST", "/auth/change-password", {"current_password": "a", "new_password": "b"}),
        ("PATCH", "/auth/me", {"company": "x"}),
    ]:
        response = client.request(method, f"{API}{path}", headers=api_key.headers, json=body)
        assert response.status_code == 403, (path, response.text)
        assert _error(response)["code"] == "session_required"


@pytest.fixture
def scoped_app(app: FastAPI) -> FastAPI:
    """The real app plus one route guarded the way other domains guard theirs."""

    @app.get("/_test/connections/{connection_id}")
    def read_connection(
        connection_id: str,
        principal: Principal = Depends(require_scopes(Scope.CONNECTIONS_READ)),
    ) -> dict[str, str]:
        principal.require_connection(connection_id)
        return {"connection_id": connection_id}

    @app.get("/_test/whoami")
    def whoami(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"scopes": sorted(principal.scopes)}

    return app


def test_key_outside_its_scopes_or_connections_is_403(
    scoped_app: FastAPI, session: Session, user: User, admin: User, admin_headers: dict[str, str]
) -> None:
    narrow = factories.create_api_key(session, user, scopes=["chat:read"])
    pinned = factories.create_api_key(
        session, user, scopes=["connections:read"], connection_ids=["conn-a"]
    )
    admin_without_admin_scope = factories.create_api_key(session, admin, scopes=["chat:read"])
    with TestClient(scoped_app) as client:
        out_of_scope = client.get("/_test/connections/conn-a", headers=narrow.headers)
        assert out_of_scope.status_code == 403
        assert _error(out_of_scope)["details"]["missing_scopes"] == ["connections:read"]
        assert client.get("/_test/connections/conn-a", headers=pinned.headers).status_code == 200
        other = client.get("/_test/connections/conn-b", headers=pinned.headers)
        assert other.status_code == 403
        refused = client.get(f"{API}/admin/users", headers=admin_without_admin_scope.headers)
        assert refused.status_code == 403
        assert client.get(f"{API}/admin/users", headers=admin_headers).status_code == 200


def test_a_key_never_grants_more_than_its_owner_has(
    scoped_app: FastAPI, session: Session, user: User
) -> None:
    # Stored with the admin scope (say, from before a demotion): the viewer owner caps it.
    key = factories.create_api_key(session, user, scopes=["admin", "chat:read"])
    with TestClient(scoped_app) as client:
        assert client.get("/_test/whoami", headers=key.headers).json() == {"scopes": ["chat:read"]}
        assert client.get(f"{API}/admin/users", headers=key.headers).status_code == 403


def test_key_usage_is_in_the_database_at_once_even_for_a_refused_request(
    app: FastAPI, session: Session, user: User, api_key: CreatedApiKey
) -> None:
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get(f"{API}/auth/me", headers=api_key.headers).status_code == 200
        # Authenticated, then refused (keys cannot list keys): the use still counts.
        assert client.get(f"{API}/api-keys", headers=api_key.headers).status_code == 403
        session.expire_all()
        stored = session.get(ApiKey, api_key.id)
        assert stored is not None and stored.usage_count == 4 and stored.last_used is not None
        headers = factories.token_headers(session, app.state.settings, user)
        listed = client.get(f"{API}/api-keys", headers=headers).json()["items"]
        assert listed[0]["usage_count"] == 4


def test_no_secret_reaches_the_audit_log(client: TestClient, session: Session, user: User) -> None:
    tokens = _tokens(client, user.email)
    headers = bearer(tokens["access_token"])
    key = client.post(
        f"{API}/api-keys", headers=headers, json={"key_name": "k", "scopes": ["chat:read"]}
    ).json()["key"]
    client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    _login(client, user.email, "Wrong-password-1")
    session.expire_all()
    dump = json.dumps(
        [[r.old_values, r.new_values, r.error_message] for r in session.scalars(select(AuditLog))]
    )
    for secret in (DEFAULT_PASSWORD, "Wrong-password-1", key, tokens["refresh_token"]):
        assert secret not in dump
    assert user.password_hash not in dump and "$argon2" not in dump


# --- brute-force protection -------------------------------------------------------------


@pytest.fixture
def proxied_client(settings: Settings, session: Session) -> Any:
    """The app behind one trusted proxy, so each request can come from an IP of its choice."""
    from backend.main import create_app

    factories.set_system_config(session, "auth.login_max_failures", 3)
    factories.set_system_config(session, "auth.login_window_seconds", 600)
    application = create_app(settings.model_copy(update={"trusted_proxy_count": 1}))
    with TestClient(application) as client:
        yield client
    application.state.engine.dispose()


def _login_from(client: TestClient, ip: str, email: str, password: str) -> Any:
    return client.post(
        f"{API}/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )


def test_failed_logins_for_one_email_throttle_it_from_any_ip(
    proxied_client: TestClient, session: Session, user: User
) -> None:
    for n in range(3):
        assert (
            _login_from(proxied_client, f"10.0.0.{n}", user.email, "Wrong-pass-1").status_code
            == 401
        )
    blocked = _login_from(proxied_client, "10.0.9.9", user.email, DEFAULT_PASSWORD)
    assert blocked.status_code == 429
    assert _error(blocked)["code"] == "login_throttled"
    retry_after = int(blocked.headers["Retry-After"])
    assert 590 <= retry_after <= 600
    form = proxied_client.post(
        f"{API}/auth/token",
        data={"username": user.email, "password": DEFAULT_PASSWORD},
        headers={"X-Forwarded-For": "10.0.9.8"},
    )
    assert form.status_code == 429
    other = factories.create_user(session)
    assert _login_from(proxied_client, "10.0.9.9", other.email, DEFAULT_PASSWORD).status_code == 200
    session.expire_all()
    throttled = session.scalars(
        select(AuditLog).where(AuditLog.action == "auth.login_throttled")
    ).all()
    assert len(throttled) == 2 and {r.ip_address for r in throttled} == {"10.0.9.9", "10.0.9.8"}


def test_failed_logins_from_one_ip_throttle_it_for_any_email(
    proxied_client: TestClient, user: User
) -> None:
    for n in range(3):
        response = _login_from(proxied_client, "10.1.1.1", f"guess{n}@example.com", "Pass-word-1")
        assert response.status_code == 401
    assert _login_from(proxied_client, "10.1.1.1", user.email, DEFAULT_PASSWORD).status_code == 429
    assert _login_from(proxied_client, "10.1.1.2", user.email, DEFAULT_PASSWORD).status_code == 200


def test_a_successful_login_resets_the_email_count(proxied_client: TestClient, user: User) -> None:
    def attempt(ip: str, password: str) -> int:
        return int(_login_from(proxied_client, ip, user.email, password).status_code)

    assert [attempt("10.2.0.1", "Wrong-pass-1"), attempt("10.2.0.2", "Wrong-pass-1")] == [401, 401]
    assert attempt("10.2.0.3", DEFAULT_PASSWORD) == 200
    assert [attempt("10.2.0.4", "Wrong-pass-1"), attempt("10.2.0.5", "Wrong-pass-1")] == [401, 401]
    assert attempt("10.2.0.6", DEFAULT_PASSWORD) == 200


def test_concurrent_use_of_one_refresh_token_lets_at_most_one_through(
    client: TestClient, user: User
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tokens = _tokens(client, user.email)

    def exchange(_: int) -> Any:
        return client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(exchange, range(2)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 401], [r.text for r in responses]
    loser = next(r for r in responses if r.status_code == 401)
    assert _error(loser)["code"] == "refresh_token_reused"
    winner = next(r for r in responses if r.status_code == 200).json()
    # The exchange raced a replay, so the family is gone, the winner's pair included.
    again = client.post(f"{API}/auth/refresh", json={"refresh_token": winner["refresh_token"]})
    assert again.status_code == 401


def test_logout_with_another_sessions_refresh_token_ends_that_session_too(
    client: TestClient, user: User
) -> None:
    here = _tokens(client, user.email)
    there = _tokens(client, user.email)
    response = client.post(
        f"{API}/auth/logout",
        headers=bearer(here["access_token"]),
        json={"refresh_token": there["refresh_token"]},
    )
    assert response.status_code == 204
    for tokens in (here, there):
        assert (
            client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
        )
        refresh = client.post(
            f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refresh.status_code == 401
