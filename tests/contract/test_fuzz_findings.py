"""Regression tests for what the contract fuzzer found, each over HTTP through the app.

* update fields that the service refuses to clear advertised `null` (PATCH /auth/me
  `full_name`, PATCH /templates/{id} `name`, ...): a schema-valid request got 422;
* the OAuth2 sign-in form accepted empty fields in the contract, which FastAPI reads as missing;
* a register email on a special-use domain (`x@y.test`) matched `format: email` but got 422;
* running a template bound to one connection on another answered an undocumented
  422 `validation_error` (now a documented 409 `template_connection_mismatch`);
* a request body that does not parse answered an undocumented 400;
* an API key expiry in the past answered the generic `validation_error` (now `expiry_in_past`).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.schemas import EMAIL_PATTERN
from backend.core.config import Settings
from tests import factories
from tests.contract.fuzzing import seed

API = "/api/v1"


@pytest.fixture
def contract(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def _body_schema(contract: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    content = contract["paths"][path][method]["requestBody"]["content"]
    ref = next(iter(content.values()))["schema"]["$ref"].rsplit("/", 1)[-1]
    return dict(contract["components"]["schemas"][ref])


def _allows_null(field: dict[str, Any]) -> bool:
    variants = field.get("anyOf", [field])
    return any(v.get("type") == "null" for v in variants)


@pytest.mark.parametrize(
    ("method", "path", "fields"),
    [
        ("patch", "/api/v1/auth/me", ["full_name"]),
        (
            "patch",
            "/api/v1/templates/{template_id}",
            ["name", "question_template", "sql_template", "is_public", "is_verified"],
        ),
        (
            "patch",
            "/api/v1/connections/{connection_id}",
            ["connection_name", "db_type", "db_name", "is_active"],
        ),
    ],
)
def test_fields_that_cannot_be_cleared_do_not_advertise_null(
    contract: dict[str, Any], method: str, path: str, fields: list[str]
) -> None:
    properties = _body_schema(contract, method, path)["properties"]
    for name in fields:
        assert not _allows_null(properties[name]), (path, name, properties[name])


def test_null_for_such_a_field_is_still_refused(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    response = client.patch(f"{API}/auth/me", json={"full_name": None}, headers=auth_headers)
    assert response.status_code == 422


def test_the_sign_in_form_states_its_lengths(contract: dict[str, Any]) -> None:
    form = _body_schema(contract, "post", "/api/v1/auth/token")
    assert form["properties"]["username"]["minLength"] == 1
    assert form["properties"]["password"]["minLength"] == 1
    assert not _allows_null(form["properties"]["grant_type"])


def test_the_sign_in_form_still_signs_in(
    client: TestClient, session: Session, settings: Settings
) -> None:
    user = factories.create_user(session)
    response = client.post(
        f"{API}/auth/token",
        data={
            "username": user.email,
            "password": factories.DEFAULT_PASSWORD,
            "grant_type": "password",
        },
    )
    assert response.status_code == 200, response.text
    empty = client.post(f"{API}/auth/token", data={"username": user.email, "password": ""})
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("email", "matches"),
    [
        ("ada@example.com", True),
        ("a.b+c@mail.example.org", True),
        ("ada@host.test", False),
        ("ada@localhost", False),
        ("ada@printer.local", False),
        ("ada@00", False),
    ],
)
def test_the_register_email_pattern_says_what_is_accepted(
    client: TestClient, contract: dict[str, Any], email: str, matches: bool
) -> None:
    schema = _body_schema(contract, "post", "/api/v1/auth/register")["properties"]["email"]
    assert schema["pattern"] == EMAIL_PATTERN
    assert bool(re.search(EMAIL_PATTERN, email)) is matches
    response = client.post(
        f"{API}/auth/register",
        json={"email": email, "password": "a-long-password-42!", "full_name": "Ada"},
    )
    assert (response.status_code == 201) is matches, response.text


def test_a_template_bound_elsewhere_answers_the_documented_409(
    client: TestClient, session: Session, settings: Settings, contract: dict[str, Any]
) -> None:
    seeded = seed(client, session, settings)
    headers = factories.token_headers(session, settings, seeded.viewer)
    response = client.post(
        f"{API}/templates/{seeded.keep['template_id']}/run",
        json={"connection_id": seeded.spare["connection_id"], "parameters": {}},
        headers=headers,
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "template_connection_mismatch"
    assert "409" in contract["paths"]["/api/v1/templates/{template_id}/run"]["post"]["responses"]


def test_a_body_that_does_not_parse_is_a_documented_400(
    client: TestClient, auth_headers: dict[str, str], contract: dict[str, Any]
) -> None:
    response = client.post(
        f"{API}/chat/sessions",
        content=b"{not json",
        headers={**auth_headers, "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    documented = contract["paths"]["/api/v1/chat/sessions"]["post"]["responses"]
    assert str(response.status_code) in documented
    for operations in contract["paths"].values():
        for operation in operations.values():
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(operation["responses"])


def test_an_api_key_expiry_in_the_past_is_a_domain_refusal(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    # Found at 40 examples: a schema-valid `expires_at` in the past answered the generic
    # `validation_error`; time is a rule the schema cannot state, so it has a code of its own.
    response = client.post(
        f"{API}/api-keys",
        json={"key_name": "late", "scopes": ["chat:read"], "expires_at": "2001-01-01T00:00:00Z"},
        headers=auth_headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "expiry_in_past"
