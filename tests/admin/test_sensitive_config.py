"""Sensitive system config: sealed at rest under the connection-password Fernet keys, opened
where it is used, sealed when found in clear, re-encrypted by `nlsql rotate-keys`; and API keys
must be header-safe wherever they come from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.admin.config_keys import invalidate_config_cache
from backend.admin.models import SystemConfig
from backend.admin.secrets import open_secret, seal_sensitive_config
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.nl2sql.engines.llm import build_llm_generator
from backend.nl2sql.errors import LlmNotConfigured
from tests.observability.conftest import Account

CONFIG = "/api/v1/admin/config"
KEY = "sk-live-0123456789abcdefghijklmnop"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _raw_value(session: Session, key: str) -> str:
    """The stored value as the database holds it, bytes on disk included."""
    session.expire_all()
    raw = session.execute(
        text("SELECT config_value FROM system_config WHERE config_key = :k"), {"k": key}
    ).scalar_one()
    return str(raw)


def _with_keys(settings: Settings, *keys: str) -> Settings:
    return settings.model_copy(update={"fernet_keys": [SecretStr(k) for k in keys]})


def test_a_sensitive_value_is_stored_sealed_and_opened_where_it_is_used(
    client: TestClient, session: Session, settings: Settings, admin_account: Account
) -> None:
    response = client.put(
        f"{CONFIG}/llm.anthropic_api_key", json={"value": KEY}, headers=admin_account.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["value"] != KEY
    raw = _raw_value(session, "llm.anthropic_api_key")
    assert KEY not in raw and "fernet" in raw
    assert open_secret(session, settings, "llm.anthropic_api_key") == KEY
    other_key = Fernet.generate_key().decode()
    assert open_secret(session, _with_keys(settings, other_key), "llm.anthropic_api_key") is None
    row = session.scalars(
        select(SystemConfig).where(SystemConfig.config_key == "llm.anthropic_api_key")
    ).one()
    assert row.is_sensitive is True


def test_a_value_stored_in_clear_is_sealed_when_the_server_starts(
    app: FastAPI, session: Session, settings: Settings
) -> None:
    session.add(
        SystemConfig(
            config_key="llm.openai_api_key",
            config_value=KEY,
            is_sensitive=True,
            created_at=utcnow(),
        )
    )
    session.commit()
    assert open_secret(session, settings, "llm.openai_api_key") == KEY  # still readable

    with TestClient(app):
        pass

    assert KEY not in _raw_value(session, "llm.openai_api_key")
    invalidate_config_cache(session)
    assert open_secret(session, settings, "llm.openai_api_key") == KEY


def test_rotate_keys_re_encrypts_sealed_config_and_seals_clear_config(
    session: Session, settings: Settings, app_db_url: str, tmp_path: Path
) -> None:
    old_key = settings.fernet_keys[0].get_secret_value()
    new_key = Fernet.generate_key().decode()
    session.add(
        SystemConfig(config_key="llm.openai_api_key", config_value=KEY, created_at=utcnow())
    )
    session.commit()
    seal_sensitive_config(session, settings)  # sealed under the old key
    session.add(
        SystemConfig(config_key="llm.anthropic_api_key", config_value=KEY, created_at=utcnow())
    )
    session.commit()

    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "rotate-keys"],
        env={
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "NLSQL_DATABASE_URL": app_db_url,
            "NLSQL_DATA_DIR": str(tmp_path),
            "NLSQL_JWT_SECRET": settings.jwt_secret_value,
            "NLSQL_FERNET_KEYS": f"{new_key},{old_key}",
        },
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert "and 2 sensitive config values" in done.stdout
    invalidate_config_cache(session)
    only_new = _with_keys(settings, new_key)
    for key in ("llm.openai_api_key", "llm.anthropic_api_key"):
        assert KEY not in _raw_value(session, key)
        assert open_secret(session, only_new, key) == KEY


@pytest.mark.parametrize(
    "value",
    ["sk-abc\r\nX-Injected: 1", "sk-abc\ndef", "sk-clé-123", "sk abc", "sk-\t1", "sk-\x7f"],
    ids=["crlf", "lf", "non-ascii", "space", "tab", "del"],
)
def test_a_key_that_cannot_go_into_a_header_is_refused_naming_the_field(
    client: TestClient, session: Session, admin_account: Account, value: str
) -> None:
    response = client.put(
        f"{CONFIG}/llm.openai_api_key", json={"value": value}, headers=admin_account.headers
    )

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"]["key"] == "llm.openai_api_key"
    assert "llm.openai_api_key" in error["message"] and "visible ASCII" in error["message"]
    assert value not in response.text
    assert session.scalars(select(SystemConfig)).all() == []


def test_a_key_with_nul_is_refused_before_it_reaches_the_config(
    client: TestClient, admin_account: Account
) -> None:
    response = client.put(
        f"{CONFIG}/llm.openai_api_key", json={"value": "sk-\x00"}, headers=admin_account.headers
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["errors"][0]["type"] == "nul_character"


@pytest.mark.parametrize("field", ["openai_api_key", "anthropic_api_key"])
def test_an_environment_key_that_cannot_go_into_a_header_stops_the_start(
    field: str, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, data_dir=tmp_path, **{field: SecretStr("sk-abc\r\n")})

    assert field in str(raised.value) and "visible ASCII" in str(raised.value)
    assert "sk-abc" not in str(raised.value)


def test_a_bad_key_that_slipped_through_is_a_clear_error_at_use(settings: Settings) -> None:
    broken = settings.model_copy(update={"openai_api_key": SecretStr("sk-\u00e9")})

    with pytest.raises(LlmNotConfigured, match="visible ASCII"):
        build_llm_generator("openai", broken)
    # The other generator's key is not its concern.
    build_llm_generator(
        "anthropic", broken.model_copy(update={"anthropic_api_key": SecretStr(KEY)})
    )
