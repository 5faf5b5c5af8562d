"""`/api/v1/templates` through HTTP: CRUD, visibility, ownership, verification, scopes, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import ROLE_ADMIN
from backend.connections.models import DatabaseConnection
from backend.observability.event_types import AuditAction
from backend.observability.models import AuditLog
from backend.templates.models import QueryTemplate
from tests.templates.conftest import Caller

URL = "/api/v1/templates"
BODY: dict[str, Any] = {
    "name": "Revenue by country and year",
    "question_template": "revenue in {country} in {year}",
    "sql_template": (
        "SELECT SUM(p.amount) AS revenue FROM payments p "
        "JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = o.customer_id "
        "WHERE c.country = :country AND strftime('%Y', p.paid_at) = CAST(:year AS TEXT)"
    ),
    "parameters": [
        {"name": "country", "type": "string", "description": "Customer country"},
        {"name": "year", "type": "integer", "default": 2024},
    ],
    "category": "sales",
}


def create(client: TestClient, caller: Caller, **changes: Any) -> dict[str, Any]:
    response = client.post(URL, json={**BODY, **changes}, headers=caller.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def audits(session: Session, action: str) -> list[AuditLog]:
    session.expire_all()
    return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_create_read_and_audit(
    client: TestClient, session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner = make_caller()
    created = create(client, owner)

    assert created["user_id"] == owner.user.id
    assert created["usage_count"] == 0
    assert created["is_verified"] is False and created["is_public"] is False
    assert created["parameters"][1] == {
        "name": "year",
        "type": "integer",
        "default": 2024,
        "description": None,
    }
    fetched = client.get(f"{URL}/{created['id']}", headers=owner.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created

    [row] = audits(session, AuditAction.TEMPLATE_CREATED)
    assert row.resource_id == created["id"]
    assert row.user_id == owner.user.id
    assert row.new_values is not None
    assert row.new_values["sql_template"] == BODY["sql_template"]


def test_an_inconsistent_template_is_refused_with_every_problem(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    caller = make_caller()
    response = client.post(
        URL,
        json={
            **BODY,
            "question_template": "revenue in {country} for {segment}",
            "parameters": [{"name": "country"}, {"name": "unused", "type": "date"}],
        },
        headers=caller.headers,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "template_invalid"
    problems = " | ".join(error["details"]["errors"])
    assert "{segment} in the question" in problems
    assert ":year in the SQL" in problems
    assert "'unused' is not used" in problems


def test_sql_that_is_not_one_select_is_refused(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    caller = make_caller()
    for sql in (
        "DELETE FROM customers WHERE country = :country",
        "SELECT 1; DROP TABLE customers",
        "SELEC :country FRM",
    ):
        response = client.post(
            URL,
            json={
                **BODY,
                "sql_template": sql,
                "question_template": "q {country}",
                "parameters": [{"name": "country"}],
            },
            headers=caller.headers,
        )
        assert response.status_code == 422, sql
        assert response.json()["error"]["code"] == "template_invalid"


def test_malformed_parameters_get_the_validation_shape(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    caller = make_caller()
    response = client.post(
        URL,
        json={**BODY, "parameters": [{"name": "1bad; --", "type": "blob"}]},
        headers=caller.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_others_private_templates_are_invisible_and_public_ones_read_only(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    owner, other = make_caller(), make_caller()
    private = create(client, owner, name="private")
    public = create(client, owner, name="public", is_public=True)
    own = create(client, other, name="own")

    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "patch" else {}
        response = getattr(client, method)(
            f"{URL}/{private['id']}", headers=other.headers, **kwargs
        )
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "template_not_found"

    assert client.get(f"{URL}/{public['id']}", headers=other.headers).status_code == 200
    for method in ("patch", "delete"):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        response = getattr(client, method)(f"{URL}/{public['id']}", headers=other.headers, **kwargs)
        assert response.status_code == 403, method
        assert response.json()["error"]["code"] == "template_not_editable"

    listed = client.get(URL, headers=other.headers).json()
    assert {t["name"] for t in listed["items"]} == {"public", "own"}
    mine = client.get(URL, params={"mine": True}, headers=other.headers).json()
    assert [t["id"] for t in mine["items"]] == [own["id"]]


def test_only_admins_verify_and_may_edit_anyones_template(
    client: TestClient, session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner, admin = make_caller(), make_caller(ROLE_ADMIN)
    response = client.post(URL, json={**BODY, "is_verified": True}, headers=owner.headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "template_verification_forbidden"

    template = create(client, owner)
    url = f"{URL}/{template['id']}"
    assert client.patch(url, json={"is_verified": True}, headers=owner.headers).status_code == 403

    verified = client.patch(
        url, json={"is_verified": True, "category": "finance"}, headers=admin.headers
    )
    assert verified.status_code == 200
    assert verified.json()["is_verified"] is True
    assert verified.json()["category"] == "finance"
    [update] = audits(session, AuditAction.TEMPLATE_UPDATED)
    assert update.user_id == admin.user.id
    assert update.old_values == {"category": "sales", "is_verified": False}
    assert update.new_values == {"category": "finance", "is_verified": True}

    # The owner may still rename it; changing its SQL withdraws the verification.
    renamed = client.patch(url, json={"name": "Renamed"}, headers=owner.headers).json()
    assert renamed["is_verified"] is True
    changed = client.patch(
        url, json={"sql_template": BODY["sql_template"] + " AND 1 = 1"}, headers=owner.headers
    )
    assert changed.status_code == 200
    assert changed.json()["is_verified"] is False


def test_patch_validates_the_combined_definition(
    client: TestClient, make_caller: Callable[..., Caller]
) -> None:
    owner = make_caller()
    url = f"{URL}/{create(client, owner)['id']}"
    response = client.patch(url, json={"sql_template": "SELECT :country"}, headers=owner.headers)
    assert response.status_code == 422
    assert "'year' is not used" in " ".join(response.json()["error"]["details"]["errors"])
    response = client.patch(url, json={"name": None}, headers=owner.headers)
    assert response.status_code == 422


def test_delete_removes_and_audits(
    client: TestClient, session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner, admin = make_caller(), make_caller(ROLE_ADMIN)
    first, second = create(client, owner), create(client, owner)

    assert client.delete(f"{URL}/{first['id']}", headers=owner.headers).status_code == 204
    assert client.get(f"{URL}/{first['id']}", headers=owner.headers).status_code == 404
    assert client.delete(f"{URL}/{second['id']}", headers=admin.headers).status_code == 204
    rows = audits(session, AuditAction.TEMPLATE_DELETED)
    assert {r.resource_id for r in rows} == {first["id"], second["id"]}
    assert all(r.old_values and r.old_values["name"] == BODY["name"] for r in rows)
    assert (
        session.scalar(select(QueryTemplate).where(QueryTemplate.user_id == owner.user.id)) is None
    )


def test_scopes_and_credentials_are_enforced(
    client: TestClient,
    make_caller: Callable[..., Caller],
    make_api_key: Callable[..., dict[str, str]],
) -> None:
    caller = make_caller()
    assert client.get(URL).status_code == 401
    read_only = make_api_key(caller.user, ["templates:read"])
    assert client.get(URL, headers=read_only).status_code == 200
    response = client.post(URL, json=BODY, headers=read_only)
    assert response.status_code == 403
    assert response.json()["error"]["details"]["missing_scopes"] == ["templates:write"]
    writer = make_api_key(caller.user, ["templates:read", "templates:write"])
    assert client.post(URL, json=BODY, headers=writer).status_code == 201


def test_list_pages_with_a_cursor(client: TestClient, make_caller: Callable[..., Caller]) -> None:
    caller = make_caller()
    ids = {create(client, caller, name=f"t{i}")["id"] for i in range(3)}
    first = client.get(URL, params={"limit": 2}, headers=caller.headers).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = client.get(
        URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=caller.headers
    ).json()
    assert second["next_cursor"] is None
    assert {t["id"] for t in first["items"] + second["items"]} == ids
    bad = client.get(URL, params={"cursor": "not-a-cursor"}, headers=caller.headers)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_cursor"


def test_a_connection_must_be_the_callers_own(
    client: TestClient, session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner, other = make_caller(), make_caller()
    connection = DatabaseConnection(
        user_id=owner.user.id, connection_name="shop", db_type="sqlite", db_name="shop.sqlite"
    )
    session.add(connection)
    session.commit()

    response = client.post(
        URL, json={**BODY, "connection_id": connection.id}, headers=other.headers
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "connection_not_found"
    created = create(client, owner, connection_id=connection.id)
    assert created["connection_id"] == connection.id
    listed = client.get(URL, params={"connection_id": connection.id}, headers=owner.headers)
    assert [t["id"] for t in listed.json()["items"]] == [created["id"]]
