"""Several real processes that agree: API key counts exact across processes and kept when one
is killed, Prometheus output aggregating every process, `nlsql serve --workers N`, one secrets
file for processes that start together."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from backend.core.config import Settings
from tests.conftest import create_pg_database, drop_pg_database
from tests.ops.servers import NLSQL, Server, clean_env, serve

pytestmark = pytest.mark.timeout(240)

PASSWORD = "a-long-test-password-1"


def _healthz_count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "nlsql_http_request_duration_seconds_count"
                and sample.labels.get("route") == "/api/v1/auth/me"
            ):
                total += sample.value
    return total


def _admin(env: dict[str, str], cwd: Path, email: str = "ops@example.com") -> None:
    subprocess.run(
        [NLSQL, "create-admin", "--email", email, "--password", PASSWORD],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _login(base: str, email: str = "ops@example.com") -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    url = create_pg_database(pg_admin_url, template=pg_template)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


@pytest.mark.postgres
def test_two_processes_on_one_database_count_key_uses_exactly_and_share_prometheus(
    pg_url: str, tmp_path: Path
) -> None:
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    env = clean_env(
        NLSQL_DATABASE_URL=pg_url,
        NLSQL_PRODUCTION="true",
        NLSQL_JWT_SECRET="s" * 48,
        NLSQL_FERNET_KEYS=Fernet.generate_key().decode(),
        NLSQL_PRUNE_CRON="",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    _admin(env, tmp_path)
    first = serve(env, tmp_path / "a.log")
    second = serve(env, tmp_path / "b.log")
    try:
        first.wait_ready()
        second.wait_ready()
        headers = _login(first.base)
        created = httpx.post(
            f"{first.base}/api/v1/api-keys",
            json={"key_name": "ops", "scopes": ["chat:read"]},
            headers=headers,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        key = {"X-API-Key": created.json()["key"]}
        for _ in range(7):
            assert httpx.get(f"{first.base}/api/v1/auth/me", headers=key).status_code == 200
        for _ in range(3):
            assert httpx.get(f"{second.base}/api/v1/auth/me", headers=key).status_code == 200

        def usage(server: Server) -> int:
            listed = httpx.get(f"{server.base}/api/v1/api-keys", headers=headers, timeout=10)
            return int(listed.json()["items"][0]["usage_count"])

        assert usage(first) == usage(second) == 10

        metrics = httpx.get(
            f"{second.base}/api/v1/admin/metrics/prometheus", headers=headers, timeout=10
        )
        assert metrics.status_code == 200
        # Both processes' requests, whichever one is scraped (the writers flush each second).
        deadline = time.monotonic() + 10
        while _healthz_count(metrics.text) < 10 and time.monotonic() < deadline:
            time.sleep(0.3)
            metrics = httpx.get(
                f"{second.base}/api/v1/admin/metrics/prometheus", headers=headers, timeout=10
            )
        assert _healthz_count(metrics.text) == 10

        # A process killed outright loses no counted use.
        first.process.kill()
        first.process.wait(timeout=10)
        assert usage(second) == 10
    finally:
        first.stop()
        second.stop()


def test_serve_with_several_workers_on_the_embedded_default(tmp_path: Path) -> None:
    env = clean_env(
        NLSQL_DATA_DIR=str(tmp_path),
        NLSQL_LOG_FORMAT="json",
        NLSQL_PRUNE_CRON="",
    )
    _admin(env, tmp_path)
    server = serve(env, tmp_path / "serve.log", "--workers", "2")
    try:
        ready = server.wait_ready()
        assert ready.json()["queue"]["backend"] == "memory"
        headers = _login(server.base)

        def me(_: int) -> int:
            # A new connection each time, so both workers answer with the one secrets file.
            return httpx.get(
                f"{server.base}/api/v1/auth/me", headers=headers, timeout=10
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(me, range(40))) == {200}
        deadline = time.monotonic() + 10
        count = 0.0
        while time.monotonic() < deadline:
            text = httpx.get(
                f"{server.base}/api/v1/admin/metrics/prometheus", headers=headers, timeout=10
            ).text
            count = _healthz_count(text)
            if count >= 40:
                break
            time.sleep(0.3)
        assert count == 40
    finally:
        assert server.stop() == 0
    secrets = json.loads((tmp_path / ".nlsql-secrets.json").read_text())
    assert set(secrets) == {"jwt_secret", "fernet_keys"}
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] in ("uvicorn.access", "gunicorn.access")]
    assert access and all("time" in line and "level" in line for line in access)
    assert any(line.get("request_id") for line in access)


def test_processes_starting_together_share_one_generated_secrets_file(tmp_path: Path) -> None:
    code = (
        "from backend.core.config import Settings;"
        "s = Settings(_env_file=None);"
        "print(s.jwt_secret_value)"
    )
    env = clean_env(NLSQL_DATA_DIR=str(tmp_path))
    processes = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    secrets = {p.communicate(timeout=60)[0].strip() for p in processes}
    assert len(secrets) == 1
    assert secrets == {Settings(data_dir=tmp_path, _env_file=None).jwt_secret_value}
