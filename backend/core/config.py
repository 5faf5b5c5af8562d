"""Settings: one pydantic-settings class, read from `NLSQL_*` environment variables and `.env`."""

from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
SECRETS_FILE_NAME = ".nlsql-secrets.json"
APP_DB_FILE_NAME = "app_data.db"

_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "changethis", "dev", "test"}
_MIN_JWT_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """Settings that cannot start the platform (missing or placeholder secrets in production)."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            return json.loads(stripped)
        return [part.strip() for part in stripped.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NLSQL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- mode and files ---
    production: bool = False
    """Production refuses generated or placeholder secrets and never writes a secrets file."""
    data_dir: Path = Field(default_factory=Path.cwd)
    """Where the embedded default keeps app_data.db and the generated secrets file."""
    database_url: str | None = None
    """The platform database; defaults to SQLite `<data_dir>/app_data.db`."""
    run_migrations_on_start: bool | None = None
    """Run `alembic upgrade head` when the server starts; defaults to on for SQLite."""

    # --- secrets ---
    jwt_secret: SecretStr | None = None
    fernet_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """Comma-separated Fernet keys, newest first (MultiFernet): encrypts connection passwords."""
    secrets_file: Path | None = None
    """Generated secrets of the embedded default; defaults to `<data_dir>/.nlsql-secrets.json`."""

    # --- tokens ---
    jwt_issuer: str = "nlsql"
    access_token_ttl_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)

    # --- HTTP server ---
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    """How many reverse proxies to trust in X-Forwarded-For when recording client IPs."""

    # --- user databases ---
    sqlite_allowed_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [DEMO_DIR])
    """Directories SQLite and DuckDB connection paths must stay inside."""

    # --- LLM providers (used only when chosen) ---
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-3-5-haiku-latest"
    llm_timeout_seconds: float = Field(default=60.0, gt=0)

    log_level: str = "INFO"

    # --- MCP over stdio ---
    mcp_api_key: SecretStr | None = None
    """The API key `nlsql mcp` acts with when `--api-key` is not given."""

    # --- recording ---
    record_request_metrics: bool = True
    """Time every HTTP request per route template and status (batched, off the request path)."""

    _split_lists = field_validator(
        "fernet_keys", "cors_origins", "sqlite_allowed_dirs", mode="before"
    )(_split_csv)

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / APP_DB_FILE_NAME}"
        if self.secrets_file is None:
            self.secrets_file = self.data_dir / SECRETS_FILE_NAME
        if self.run_migrations_on_start is None:
            self.run_migrations_on_start = self.is_sqlite
        self.sqlite_allowed_dirs = [p.expanduser().resolve() for p in self.sqlite_allowed_dirs]
        if self.production:
            self._refuse_weak_secrets()
        elif self.jwt_secret is None or not self.fernet_keys:
            self._load_or_generate_secrets()
        for key in self.fernet_keys:
            try:
                Fernet(key.get_secret_value().encode())
            except ValueError as exc:
                raise ConfigurationError(
                    "NLSQL_FERNET_KEYS holds a value that is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from exc
        return self

    @property
    def is_sqlite(self) -> bool:
        return str(self.database_url).startswith("sqlite")

    @property
    def app_database_path(self) -> Path | None:
        """The platform's own SQLite file, which no user connection may point at."""
        url = str(self.database_url)
        if not url.startswith("sqlite:///"):
            return None
        raw = url.removeprefix("sqlite:///").split("?", 1)[0]
        return Path(raw).expanduser().resolve() if raw and raw != ":memory:" else None

    def _refuse_weak_secrets(self) -> None:
        problems = []
        jwt = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if jwt.lower() in _PLACEHOLDER_SECRETS or len(jwt) < _MIN_JWT_SECRET_LENGTH:
            problems.append(
                f"NLSQL_JWT_SECRET must be set to a random value of at least "
                f"{_MIN_JWT_SECRET_LENGTH} characters"
            )
        if not self.fernet_keys:
            problems.append("NLSQL_FERNET_KEYS must hold at least one Fernet key")
        if problems:
            raise ConfigurationError(
                "production mode (NLSQL_PRODUCTION=true) refuses to start: " + "; ".join(problems)
            )

    def _load_or_generate_secrets(self) -> None:
        assert self.secrets_file is not None  # noqa: S101 - set by _complete
        stored = _read_secrets_file(self.secrets_file)
        changed = False
        if "jwt_secret" not in stored:
            stored["jwt_secret"] = secrets.token_urlsafe(48)
            changed = True
        if not stored.get("fernet_keys"):
            stored["fernet_keys"] = [Fernet.generate_key().decode()]
            changed = True
        if changed:
            _write_secrets_file(self.secrets_file, stored)
        if self.jwt_secret is None:
            self.jwt_secret = SecretStr(str(stored["jwt_secret"]))
        if not self.fernet_keys:
            self.fernet_keys = [SecretStr(str(k)) for k in stored["fernet_keys"]]

    @property
    def jwt_secret_value(self) -> str:
        assert self.jwt_secret is not None  # noqa: S101 - always set after validation
        return self.jwt_secret.get_secret_value()


def _read_secrets_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read the secrets file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"the secrets file {path} does not hold a JSON object")
    return data


def _write_secrets_file(path: Path, data: dict[str, Any]) -> None:
    """Write the secrets file readable only by its owner (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@lru_cache
def get_settings() -> Settings:
    return Settings()
