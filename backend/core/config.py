"""Settings: one pydantic-settings class, read from `NLSQL_*` environment variables and `.env`."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
SECRETS_FILE_NAME = ".nlsql-secrets.json"
APP_DB_FILE_NAME = "app_data.db"

_PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "changethis", "dev", "test"}
_MIN_JWT_SECRET_LENGTH = 32


_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def is_header_safe(secret: str) -> bool:
    """Whether `secret` can go into an HTTP header as it is (visible ASCII, no spaces)."""
    return _HEADER_SAFE.fullmatch(secret) is not None


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
    platform_lock_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """Longest a request waits for a lock on the platform database before answering 503."""
    record_retry_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long an ask (or SQL or template run) whose query already ran keeps retrying its
    recording while the platform database stays busy (each try waits up to the lock timeout;
    no CPU slot is held between tries). Past it the request answers 503 `database_busy`."""
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
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Larger request bodies are refused with 413 `payload_too_large`."""
    trusted_proxy_count: int = Field(default=0, ge=0, le=5)
    """How many reverse proxies to trust in X-Forwarded-For when recording client IPs."""

    # --- user databases ---
    sqlite_allowed_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [DEMO_DIR])
    """Directories SQLite and DuckDB connection paths must stay inside."""
    connection_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Host names (`db.internal`, `*.corp.example`), addresses and CIDR blocks connections to
    database servers may reach. Empty: any host on the embedded default, none in production."""
    connection_allowed_ports: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Ports (`5432`) and ranges (`6000-6100`) connections may use; empty: any."""
    connection_denied_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["169.254.0.0/16", "fe80::/10"]
    )
    """Address blocks no connection may reach, whatever the allow-list (link-local: cloud
    metadata services)."""

    # --- LLM providers (used only when chosen) ---
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str = "claude-3-5-haiku-latest"
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_backoff_base_seconds: float = Field(default=0.5, ge=0, le=60)
    """Wait before the first retry of a failed LLM call (429, 5xx); doubled for each next one
    and never shorter than the provider's Retry-After."""

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object a line (time, level, logger, message, request/user/query ids)."""

    # --- processes ---
    workers: int = Field(default=1, ge=1, le=64)
    """HTTP worker processes of `nlsql serve` (more than one runs gunicorn with uvicorn workers)."""
    ask_cpu_slots: int | None = Field(default=None, ge=0, le=1024)
    """Asks that run their platform and CPU-bound stages (read, offline generation, guard,
    record) at once in one process (`backend.core.cpu_slots`); unset: one per core, at least
    two; 0: no limit. An ask waiting on an LLM or on a user's database holds no slot."""

    # --- background jobs ---
    jobs_in_process: bool | None = None
    """Run queued jobs inside the API process (in-memory queue); defaults to on for SQLite.
    Off: jobs wait in PostgreSQL (procrastinate) for `nlsql worker`."""
    jobs_dir: Path | None = None
    """Where job results too large for a row (exports) are written; `<data_dir>/job-results`.
    Shared by the API and every worker (a shared volume when they run on several hosts)."""
    jobs_concurrency: int = Field(default=4, ge=1, le=64)
    """Jobs one worker process runs at once (each in a thread)."""
    jobs_heartbeat_seconds: float = Field(default=10.0, gt=0)
    jobs_stalled_seconds: float = Field(default=30.0, gt=0)
    """A job whose worker sent no heartbeat for this long is recovered: retried when it is
    safe to run again (exports, schema refreshes, pruning), else marked failed (asks)."""
    prune_cron: str = "17 3 * * *"
    """When the scheduled retention pruning runs (cron, UTC); an empty value turns it off.
    The same schedule deletes the queue's own finished jobs (procrastinate's rows) older than
    `jobs_queue_keep_hours`, and job result files older than `retention.job_results_days`."""
    jobs_queue_keep_hours: int = Field(default=168, ge=1)
    """Hours the queue keeps its finished (failed, cancelled, aborted) job rows; the
    user-facing `background_jobs` rows are not affected."""

    # --- MCP over stdio ---
    mcp_api_key: SecretStr | None = None
    """The API key `nlsql mcp` acts with when `--api-key` is not given."""

    # --- recording ---
    record_request_metrics: bool = True
    """Time every HTTP request per route template and status (batched, off the request path)."""

    _split_lists = field_validator(
        "fernet_keys",
        "cors_origins",
        "sqlite_allowed_dirs",
        "connection_allowed_hosts",
        "connection_allowed_ports",
        "connection_denied_networks",
        mode="before",
    )(_split_csv)

    @field_validator("openai_api_key", "anthropic_api_key")
    @classmethod
    def _header_safe(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_header_safe(value.get_secret_value()):
            # The value is left out of the message: it is a secret.
            raise ValueError(
                "an API key must be visible ASCII characters only (no spaces, line breaks, "
                "NUL or non-ASCII): it is sent in an HTTP header"
            )
        return value

    @field_validator("connection_allowed_ports")
    @classmethod
    def _check_ports(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            low, _, high = entry.strip().partition("-")
            if not (low.isdigit() and (not high or high.isdigit())):
                raise ValueError(f"not a port or port range: {entry!r}")
            if not 1 <= int(low) <= int(high or low) <= 65535:
                raise ValueError(f"not a port or port range: {entry!r}")
        return entries

    @field_validator("connection_denied_networks")
    @classmethod
    def _check_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            ipaddress.ip_network(entry.strip(), strict=False)
        return entries

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.database_url is None:
            self.database_url = f"sqlite:///{self.data_dir / APP_DB_FILE_NAME}"
        if self.secrets_file is None:
            self.secrets_file = self.data_dir / SECRETS_FILE_NAME
        if self.run_migrations_on_start is None:
            self.run_migrations_on_start = self.is_sqlite and not self.production
        if self.jobs_in_process is None:
            self.jobs_in_process = self.is_sqlite
        if self.jobs_dir is None:
            self.jobs_dir = self.data_dir / "job-results"
        self.jobs_dir = self.jobs_dir.expanduser().resolve()
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
        # Processes starting together (workers, a CLI next to the server) take turns on a lock
        # file, so exactly one generates and every one reads the same secrets.
        self.secrets_file.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.secrets_file.with_name(self.secrets_file.name + ".lock")
        with open(lock_path, "a") as lock:  # noqa: PTH123
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                stored = self._read_or_generate_locked()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        if self.jwt_secret is None:
            self.jwt_secret = SecretStr(str(stored["jwt_secret"]))
        if not self.fernet_keys:
            self.fernet_keys = [SecretStr(str(k)) for k in stored["fernet_keys"]]

    def _read_or_generate_locked(self) -> dict[str, Any]:
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
        return stored

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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@lru_cache
def get_settings() -> Settings:
    return Settings()
