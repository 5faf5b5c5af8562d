"""Admin user endpoints over real HTTP: listing, role and active-flag changes."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User, UserSession
from backend.core.config import Settings
from backend.observability.models import AuditLog
from tests import factories
from tests.factories import DEFAULT_PASSWORD, CreatedApiKey

API = "/api/v1"


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def test_viewers_cannot_use_admin_endpoints(
    client: TestClient, user: User, auth_headers: dict[str, str]
) -> None:
    assert client.get(f"{API}/admin/users", headers=auth_headers).status_code == 403
    response = client.patch(
        f"{API}/admin/users/{user.id}", headers=auth_headers, json={"role": "admin"}
    )
    assert response.status_code == 403
    assert _error(response)["details"]["missing_scopes"] == ["admin"]


def test_admin_lists_users_page_by_page(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    for _ in range(4):
        factories.create_user(session)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = client.get(f"{API}/admin/users", headers=admin_headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        assert all("password" not in str(item) for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5 and admin.id in seen
    admins = client.get(f"{API}/admin/users", headers=admin_headers, params={"role": "admin"})
    assert [u["id"] for u in admins.json()["items"]] == [admin.id]


def test_a_bad_cursor_is_400(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.get(
        f"{API}/admin/users", headers=admin_headers, params={"cursor": "definitely-not"}
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_cursor"


def test_deactivated_user_is_locked_out_on_the_next_request(
    client: TestClient,
    session: Session,
    user: User,
    auth_headers: dict[str, str],
    api_key: CreatedApiKey,
    admin: User,
    admin_headers: dict[str, str],
) -> None:
    tokens = client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    ).json()
    assert client.get(f"{API}/auth/me", headers=auth_headers).status_code == 200
    assert client.get(f"{API}/auth/me", headers=api_key.headers).status_code == 200
    response = client.patch(
        f"{API}/admin/users/{user.id}", headers=admin_headers, json={"is_active": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert client.get(f"{API}/auth/me", headers=auth_headers).status_code == 401
    assert client.get(f"{API}/auth/me", headers=api_key.headers).status_code == 401
    refreshed = client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    login = client.post(
        f"{API}/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD}
    )
    assert login.status_code == 401
    assert _error(login)["code"] == "account_deactivated"
    session.expire_all()
    assert not session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.is_active.is_(True))
    ).all()
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "admin.user_update"))
    assert audit is not None and audit.user_id == admin.id and audit.resource_id == user.id
    assert audit.old_values == {"is_active": True} and audit.new_values == {"is_active": False}
    # Reactivated: the key works again, the ended sessions do not.
    client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"is_active": True})
    assert client.get(f"{API}/auth/me", headers=api_key.headers).status_code == 200
    assert client.get(f"{API}/auth/me", headers=auth_headers).status_code == 401


def test_role_change_takes_effect_on_the_next_request(
    client: TestClient,
    user: User,
    auth_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    assert client.get(f"{API}/admin/users", headers=auth_headers).status_code == 403
    promoted = client.patch(
        f"{API}/admin/users/{user.id}", headers=admin_headers, json={"role": "admin"}
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert client.get(f"{API}/admin/users", headers=auth_headers).status_code == 200
    client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"role": "viewer"})
    assert client.get(f"{API}/admin/users", headers=auth_headers).status_code == 403


def test_admins_cannot_lock_themselves_out(
    client: TestClient, admin: User, admin_headers: dict[str, str]
) -> None:
    for change in ({"role": "viewer"}, {"is_active": False}):
        response = client.patch(f"{API}/admin/users/{admin.id}", headers=admin_headers, json=change)
        assert response.status_code == 409
        assert _error(response)["code"] == "cannot_change_own_access"


def test_unknown_user_and_bad_role_answer_clearly(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    missing = client.patch(
        f"{API}/admin/users/no-such-user", headers=admin_headers, json={"role": "viewer"}
    )
    assert missing.status_code == 404
    assert _error(missing)["code"] == "user_not_found"
    bad = client.patch(f"{API}/admin/users/{user.id}", headers=admin_headers, json={"role": "root"})
    assert bad.status_code == 422


def test_admin_key_with_admin_scope_may_manage_users(
    client: TestClient, session: Session, settings: Settings, admin: User, user: User
) -> None:
    key = factories.create_api_key(session, admin, scopes=["admin"])
    response = client.patch(
        f"{API}/admin/users/{user.id}", headers=key.headers, json={"role": "admin"}
    )
    assert response.status_code == 200
