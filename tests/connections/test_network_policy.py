"""Connection fields are checked at the schema (host syntax, driver-safe text), and a network
policy keeps connections off the platform's own database, this server's port and hosts outside
the allow-list, at create and again at every connect, with a stable error kind."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import make_url, select
from sqlalchemy.orm import Session

from backend.connections.crypto import encrypt_password
from backend.connections.errors import ConnectionRefusedByPolicy
from backend.connections.models import DatabaseConnection
from backend.connections.network import network_policy, normalize_host
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.observability.models import QueryAnalytics
from tests.connections.conftest import Caller, ServerTarget

URL = "/api/v1/connections"


def _pg_body(target: ServerTarget, **overrides: Any) -> dict[str, Any]:
    return {
        "connection_name": "warehouse",
        "db_type": "postgresql",
        "db_host": target.host,
        "db_port": target.port,
        "db_user": target.user,
        "db_password": target.password,
        "db_name": target.database,
        "options": {"sslmode": "disable"},
        **overrides,
    }


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("db.internal", "db.internal"),
        ("DB.Example.COM.", "db.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("10.1.2.3", "10.1.2.3"),
        ("[::1]", "::1"),
        ("db_1.corp", "db_1.corp"),
    ],
)
def test_valid_hosts_are_normalized(host: str, normal: str) -> None:
    assert normalize_host(host) == normal


@pytest.mark.parametrize(
    "host",
    [
        "x\u009dy",
        "a b",
        "tab\there",
        "-lead.example",
        "a" * 64 + ".example",
        "a." * 127 + "a",
        "a..b",
        "x\u0000y",
        "\ud800",
    ],
)
def test_invalid_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        normalize_host(host)


@pytest.mark.parametrize(
    "overrides",
    [
        {"db_host": "x\u009dy"},
        {"db_host": "a" * 64 + ".example"},
        {"db_password": "\ud800"},
        {"db_password": "pw\u0000"},
        {"db_user": "\udfff"},
        {"db_name": "sales\u0000"},
    ],
)
def test_bad_connection_fields_are_a_422_not_a_500(
    client: TestClient, caller: Caller, pg_target: ServerTarget, overrides: dict[str, Any]
) -> None:
    # Escaped JSON (`\\ud800`): a lone surrogate is valid JSON text, not valid UTF-8.
    response = client.post(
        URL,
        content=json.dumps(_pg_body(pg_target, **overrides)),
        headers={**caller.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


def _stored(session: Session, caller: Caller, settings: Settings, **fields: Any) -> str:
    """A connection written straight to the table, as an older release might have stored it."""
    password = fields.pop("password", None)
    connection = DatabaseConnection(
        user_id=caller.user.id,
        connection_name=f"raw{fields.get('db_port', '')}{len(fields)}",
        db_type="postgresql",
        created_at=utcnow(),
        **fields,
    )
    if password:
        connection.encrypted_db_password = encrypt_password(settings, password)
    session.add(connection)
    session.commit()
    return connection.id


def test_a_stored_bad_host_answers_documented_errors_everywhere(
    client: TestClient, caller: Caller, session: Session, settings: Settings
) -> None:
    cid = _stored(session, caller, settings, db_host="x\u009dy", db_port=5432, db_name="d")
    calls = [
        client.post(f"{URL}/{cid}/test", headers=caller.headers),
        client.post(f"{URL}/{cid}/refresh-schema", headers=caller.headers),
        client.get(f"{URL}/{cid}/schema", headers=caller.headers),
        client.post(
            "/api/v1/query/sql",
            json={"connection_id": cid, "sql": "SELECT 1"},
            headers=caller.headers,
        ),
    ]
    for response in calls:
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "connection_refused_by_policy", error
        assert error["details"]["kind"] == "refused_by_policy"
    # The failed SQL run is recorded like any other.
    session.expire_all()
    recorded = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.user_id == caller.user.id)
    ).all()
    assert [(r.success, r.error_code) for r in recorded] == [
        (False, "connection_refused_by_policy")
    ]


def test_the_platform_database_is_refused_by_any_name(
    client: TestClient, caller: Caller, session: Session, settings: Settings
) -> None:
    url = make_url(str(settings.database_url))
    if url.get_backend_name() != "postgresql":
        pytest.skip("the platform database is a file here (its path is refused elsewhere)")
    assert url.host is not None and url.database is not None
    for i, host in enumerate([url.host, "localhost", "127.0.0.1", "0.0.0.0"]):  # noqa: S104
        body = {
            "connection_name": f"platform{i}",
            "db_type": "postgresql",
            "db_host": host,
            "db_port": url.port or 5432,
            "db_user": url.username,
            "db_password": url.password,
            "db_name": url.database,
            "options": {"sslmode": "disable"},
        }
        response = client.post(URL, json=body, headers=caller.headers)
        assert response.status_code == 422, (host, response.text)
        error = response.json()["error"]
        assert (error["code"], error["details"]["rule"]) == (
            "connection_refused_by_policy",
            "platform_database",
        )
    # One stored before the policy existed is refused when it connects, with the platform's
    # own credentials and all: the users table is never read.
    cid = _stored(
        session,
        caller,
        settings,
        db_host="localhost",
        db_port=url.port or 5432,
        db_user=url.username,
        password=url.password,
        db_name=url.database,
    )
    response = client.post(
        "/api/v1/query/sql",
        json={"connection_id": cid, "sql": "SELECT password_hash FROM users"},
        headers=caller.headers,
    )
    assert response.status_code == 422, response.text
    assert "argon2" not in response.text
    tested = client.post(f"{URL}/{cid}/test", headers=caller.headers)
    assert tested.json()["error"]["details"] == {
        "kind": "refused_by_policy",
        "rule": "platform_database",
    }


def test_another_database_of_the_same_server_is_allowed(
    client: TestClient, caller: Caller, pg_target: ServerTarget
) -> None:
    created = client.post(URL, json=_pg_body(pg_target), headers=caller.headers)
    assert created.status_code == 201, created.text
    tested = client.post(f"{URL}/{created.json()['id']}/test", headers=caller.headers)
    assert tested.status_code == 200, tested.text


def test_this_servers_own_port_is_refused(
    client: TestClient, caller: Caller, settings: Settings, pg_target: ServerTarget
) -> None:
    for host in ("127.0.0.1", "localhost", "::1"):
        response = client.post(
            URL,
            json=_pg_body(pg_target, db_host=host, db_port=settings.port),
            headers=caller.headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["rule"] == "platform_server"


def _policy_settings(**overrides: Any) -> Settings:
    return Settings(
        database_url="sqlite:////tmp/nlsql-policy-test.db",
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        _env_file=None,
        **overrides,
    )


@pytest.mark.parametrize(
    ("overrides", "host", "port", "allowed"),
    [
        ({}, "127.0.0.1", 5432, True),
        ({}, "169.254.169.254", 5432, False),
        ({"production": True}, "127.0.0.1", 5432, False),
        ({"production": True, "connection_allowed_hosts": "127.0.0.0/8"}, "127.0.0.1", 5432, True),
        ({"connection_allowed_hosts": "10.0.0.0/8"}, "127.0.0.1", 5432, False),
        ({"connection_allowed_hosts": "localhost"}, "localhost", 5432, True),
        ({"connection_allowed_hosts": "*.example.test,127.0.0.1"}, "127.0.0.1", 5432, True),
        ({"connection_allowed_ports": "5432,6000-6010"}, "127.0.0.1", 6005, True),
        ({"connection_allowed_ports": "5432,6000-6010"}, "127.0.0.1", 22, False),
        ({"connection_denied_networks": "127.0.0.0/8"}, "localhost", 5432, False),
    ],
)
def test_the_policy_follows_the_settings(
    overrides: dict[str, Any], host: str, port: int, allowed: bool
) -> None:
    policy = network_policy(_policy_settings(**overrides))
    if allowed:
        assert policy.pick_address(host, port, "sales")
    else:
        with pytest.raises(ConnectionRefusedByPolicy):
            policy.pick_address(host, port, "sales")
