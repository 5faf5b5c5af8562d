"""Settings: zero-configuration embedded default, generated secrets, production refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from backend.core.config import SECRETS_FILE_NAME, ConfigurationError, Settings


def _settings(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **kwargs)  # type: ignore[arg-type]


def test_embedded_default_generates_secrets_readable_only_by_owner(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    secrets_file = tmp_path / SECRETS_FILE_NAME
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'app_data.db'}"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    stored = json.loads(secrets_file.read_text())
    assert settings.jwt_secret_value == stored["jwt_secret"]
    assert len(settings.jwt_secret_value) >= 32
    assert [k.get_secret_value() for k in settings.fernet_keys] == stored["fernet_keys"]
    assert settings.run_migrations_on_start is True


def test_generated_secrets_are_reused_on_the_next_start(tmp_path: Path) -> None:
    first = _settings(tmp_path)
    second = _settings(tmp_path)
    assert first.jwt_secret_value == second.jwt_secret_value
    assert first.fernet_keys[0].get_secret_value() == second.fernet_keys[0].get_secret_value()


def test_production_without_secrets_is_a_clear_startup_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NLSQL_JWT_SECRET"):
        _settings(tmp_path, production=True)
    assert not (tmp_path / SECRETS_FILE_NAME).exists()


@pytest.mark.parametrize("secret", ["changeme", "secret", "short-but-not-placeholder"])
def test_production_refuses_placeholder_or_short_jwt_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigurationError):
        _settings(
            tmp_path,
            production=True,
            jwt_secret=SecretStr(secret),
            fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        )


def test_production_with_real_secrets_starts_and_writes_no_file(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        production=True,
        jwt_secret=SecretStr("k" * 48),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        database_url="postgresql+psycopg://u@127.0.0.1/db",
    )
    assert settings.run_migrations_on_start is False
    assert not (tmp_path / SECRETS_FILE_NAME).exists()


def test_invalid_fernet_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Fernet"):
        _settings(tmp_path, jwt_secret=SecretStr("j" * 40), fernet_keys=[SecretStr("not-a-key")])


def test_environment_variables_with_prefix_and_comma_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    monkeypatch.setenv("NLSQL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NLSQL_FERNET_KEYS", ",".join(keys))
    monkeypatch.setenv("NLSQL_JWT_SECRET", "e" * 40)
    monkeypatch.setenv("NLSQL_SQLITE_ALLOWED_DIRS", f"{tmp_path},/srv/data")
    monkeypatch.setenv("NLSQL_ACCESS_TOKEN_TTL_MINUTES", "5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [k.get_secret_value() for k in settings.fernet_keys] == keys
    assert settings.sqlite_allowed_dirs == [tmp_path.resolve(), Path("/srv/data")]
    assert settings.access_token_ttl_minutes == 5
    assert not (tmp_path / SECRETS_FILE_NAME).exists()


def test_app_database_path_is_known_for_sqlite_only(tmp_path: Path) -> None:
    assert _settings(tmp_path).app_database_path == (tmp_path / "app_data.db").resolve()
    pg = _settings(
        tmp_path, database_url="postgresql+psycopg://u@127.0.0.1/db", jwt_secret=SecretStr("x" * 40)
    )
    assert pg.app_database_path is None
