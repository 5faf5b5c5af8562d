"""The deployment files: compose.yaml's structure, and the image's commands run as real
processes against PostgreSQL in compose's order (Docker itself is not available here)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import make_url

from backend.core.config import Settings
from tests.conftest import create_pg_database, drop_pg_database
from tests.ops.servers import NLSQL, Server, clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
_VARIABLE = re.compile(r"\$\{([A-Z_]+)(?::?([-?])([^}]*))?\}")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _dockerfile_json(instruction: str) -> list[str]:
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith(instruction + " "):
            value = json.loads(line.removeprefix(instruction + " "))
            assert isinstance(value, list)
            return [str(v) for v in value]
    raise AssertionError(f"no {instruction} in the Dockerfile")


def _generated_env() -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compose_env.py")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if line)


def _substitute(value: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        assert kind == "-", f"${{{name}}} has no default and is not generated"
        return rest or ""

    return _VARIABLE.sub(replace, value)


def test_compose_runs_migrate_once_then_the_api_and_the_worker() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"db", "migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert services[name]["environment"] == services["migrate"]["environment"]
    api_command = services["api"]["command"]
    assert api_command[0] == "serve"
    assert int(api_command[api_command.index("--workers") + 1]) > 1
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert services["worker"]["command"] == ["worker"]
    # Exports written by the worker are read by the API: one volume at the data directory.
    environment = services["api"]["environment"]
    data_dir = environment["NLSQL_DATA_DIR"]
    for name in ("api", "worker"):
        assert any(v.endswith(f":{data_dir}") for v in services[name]["volumes"])
    assert environment["NLSQL_PRODUCTION"] == "true"


def test_every_setting_compose_passes_exists_and_every_variable_is_provided() -> None:
    environment = _compose()["services"]["api"]["environment"]
    fields = set(Settings.model_fields)
    for name in environment:
        assert name.startswith("NLSQL_")
        assert name.removeprefix("NLSQL_").lower() in fields, name
    generated = _generated_env()
    text = COMPOSE.read_text()
    for match in _VARIABLE.finditer(text):
        name, kind = match.group(1), match.group(2)
        assert name in generated or kind == "-", f"${{{name}}} is neither generated nor defaulted"


def test_the_image_runs_real_nlsql_commands() -> None:
    assert _dockerfile_json("ENTRYPOINT") == ["nlsql"]
    commands = [_dockerfile_json("CMD")] + [
        service["command"] for name, service in _compose()["services"].items() if name != "db"
    ]
    for command in commands:
        result = subprocess.run(
            [NLSQL, command[0], "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        for option in (part for part in command[1:] if part.startswith("--")):
            assert option in result.stdout, f"{command[0]} has no {option}"
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.fixture
def empty_pg_url(pg_admin_url: str) -> Iterator[str]:
    url = create_pg_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_compose_commands_as_real_processes_come_up_ready(
    empty_pg_url: str, tmp_path: Path
) -> None:
    services = _compose()["services"]
    generated = _generated_env()
    env = clean_env(
        **{k: _substitute(str(v), generated) for k, v in services["api"]["environment"].items()}
    )
    # The database service's address becomes the test server's; the data volume a folder.
    url = make_url(empty_pg_url)
    assert make_url(env["NLSQL_DATABASE_URL"]).host == "db"
    env["NLSQL_DATABASE_URL"] = url.render_as_string(hide_password=False)
    env["NLSQL_DATA_DIR"] = str(tmp_path)

    def command(service: str, port: int | None = None) -> list[str]:
        args = [NLSQL, *services[service]["command"]]
        if port is not None:
            args[args.index("--port") + 1] = str(port)
        return args

    # Before the migration the API refuses to start: production never migrates itself.
    refused = subprocess.run(
        command("api", free_port()),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "nlsql migrate" in refused.stderr

    migrated = subprocess.run(
        command("migrate"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr

    port = free_port()
    api = Server(command("api", port), env, tmp_path / "api.log", port)
    worker = Server(command("worker"), env, tmp_path / "worker.log", port)
    try:
        ready = api.wait_ready()
        body = ready.json()
        assert body["database"] == "ok" and body["queue"]["backend"] == "postgres"
        deadline = time.monotonic() + 30
        while body["queue"]["workers"] < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
            body = httpx.get(f"{api.base}/readyz", timeout=5).json()
        assert body["queue"]["workers"] == 1, worker.output()
        assert not (tmp_path / ".nlsql-secrets.json").exists()
    finally:
        assert api.stop() == 0, api.output()
        assert worker.stop() == 0, worker.output()
