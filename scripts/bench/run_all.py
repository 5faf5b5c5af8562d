"""Every ask benchmark of issue 15 in one command; writes one results file (JSON) and prints it.

    python scripts/bench/run_all.py --out bench-results.json [--backends sqlite,postgresql]
        [--workers 1,2] [--llm-delay 2.0] [--seconds 4] [--no-llm] [--export-rows 0]

`--no-llm` skips the slow-LLM bursts (and their sign-in probe): only the offline figures;
`--no-offline` skips the offline figures: only the bursts.

For each platform database (SQLite file, PostgreSQL started on loopback like the tests do) and
each number of API worker processes (one: `uvicorn`; more: `serve_workers.py`, N uvicorn
processes sharing one listening socket that keeps TCP_NODELAY; subprocesses on loopback):

* slow LLM: an OpenAI-compatible server on loopback (a process of its own) answers every
  request after `--llm-delay` seconds; 8, 32 and 64 asks are sent at once. Reported: wall
  time, throughput as a share of the physical limit (clients / delay per second), errors, and
  the p99 of sign-ins (`POST /auth/login`) and `GET /auth/me` sent one after another during
  the burst, from a process of their own (in the load generator's, a probe's answer waited
  for that event loop to read the burst's answers); the same probe alone for 2 s before the
  bursts (`auth_alone`) is their baseline. Also the CPU time per ask that the server, the
  stand-in and the load generator spent during each burst; the server's also without what
  the probe's sign-ins cost it (`server_cpu_ms_per_ask_without_probe`: each sign-in's argon2
  verification is tens of ms of CPU, counted per ask otherwise), and (`stand_in_alone`, once
  per platform database) the same bursts sent straight to the stand-in with no server between:
  the ceiling this machine's load generator and stand-in allow.
* offline engine: `POST /ask` (builtin engine) throughput with 1, 8 and 32 clients for
  `--seconds` each, as a share of a no-op endpoint (`GET /healthz`) served the same way in the
  same run; the record stage's p99 at 32 clients (from the recorded `ask_stage_duration`
  metrics of exactly those asks).
* the server's CPU time (user + system, read from /proc for the server process and its
  workers) per request of each closed loop, and per ask over per no-op: a figure less
  sensitive to a machine shared with other work than throughput.
* once per platform database, in this process: one client's end-to-end HTTP ask divided by
  the in-process generate + guard + execute of the same questions; also the same ratio with
  one client's no-op HTTP round trip (`GET /healthz`, measured in the same run) taken off the
  ask, i.e. what the platform adds to the core apart from HTTP itself; and the same in CPU
  time (`cpu_ratio`: the server's CPU per HTTP ask over this process's CPU per in-process
  generate + guard + execute).
* once (`--export-rows`, 0 to skip): `bench_export.py`, a CSV export of that many rows against
  `sqlite3 -csv` and Python's csv module on the same query, and the server's peak memory.

The load generator runs in this process on the same machine as the server: on a busy or small
machine the absolute figures include its CPU; the ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, select, text

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ask import answer_in_process  # noqa: E402
from signin import bearer_headers  # noqa: E402

from backend.auth import service as auth_service  # noqa: E402
from backend.chat import service as chat_service  # noqa: E402
from backend.connections import schema_cache  # noqa: E402
from backend.connections import service as connections_service  # noqa: E402
from backend.connections.models import DatabaseConnection  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.db import create_app_engine, create_session_factory  # noqa: E402
from backend.core.migrations import upgrade_to_head  # noqa: E402
from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.nl2sql.engines.builtin import BuiltinGenerator  # noqa: E402
from backend.observability.models import PerformanceMetric  # noqa: E402
from tests.support import postgres_server  # noqa: E402

PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway local account
LLM_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country"
QUESTIONS = [
    "How many customers are there?",
    "Number of orders per status",
    "What is the average unit price of products?",
    "Top 5 products by unit price",
    "Customers in France",
    "How many orders were placed in 2023?",
    "Total payment amount by method",
    "Products never ordered",
]
LLM_CLIENTS = (8, 32, 64)
OFFLINE_CLIENTS = (1, 8, 32)


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the slow LLM -------------------------------------------------------------------------


def serve_slow_llm(delay_seconds: float) -> None:
    """The slow LLM's server loop, in a process of its own (see `slow_llm`): prints its port."""
    body = json.dumps(
        {
            "id": "bench",
            "object": "chat.completion",
            "model": "bench-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": LLM_SQL},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY: the body is written after the headers, and without it waited for the
        # client's delayed ACK of the headers (Nagle), ~40 ms added to every answer.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay_seconds)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        request_queue_size = 512
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


@contextmanager
def slow_llm(delay_seconds: float) -> Iterator[str]:
    """An OpenAI-compatible chat-completions server that answers after `delay_seconds`.

    It runs in a process of its own: in this one, its threads would share the interpreter with
    the load generator and the sign-in probe, spreading the burst's arrivals over most of a
    second and adding to the latencies measured here."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import run_all; run_all.serve_slow_llm({delay_seconds!r})",
        ],
        cwd=Path(__file__).resolve().parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None  # noqa: S101 - piped above
        port = int(process.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        SERVER_PIDS[url] = process.pid
        yield url
    finally:
        process.terminate()
        process.wait(10)


# --- the platform database and its benchmark user -----------------------------------------


@dataclass
class Platform:
    backend: str
    url: str
    settings: Settings
    user_id: str
    email: str
    connection_id: str


def _settings(url: str, data_dir: Path, fernet_key: str, jwt_secret: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        jwt_secret=SecretStr(jwt_secret),
        fernet_keys=[SecretStr(fernet_key)],
        run_migrations_on_start=False,
        _env_file=None,
    )


def prepare_platform(backend: str, url: str, data_dir: Path) -> Platform:
    upgrade_to_head(url)
    settings = _settings(url, data_dir, Fernet.generate_key().decode(), "bench-" + "x" * 40)
    engine = create_app_engine(url)
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    try:
        with create_session_factory(engine)() as session:
            user = auth_service.create_user(
                session, email=email, password=PASSWORD, full_name="Bench"
            )
            connection = connections_service.ensure_sqlite_connection(
                session, user_id=user.id, connection_name="demo", path=str(DEMO_DB_PATH)
            )
            session.commit()
            return Platform(backend, url, settings, user.id, email, connection.id)
    finally:
        engine.dispose()


def make_chats(platform: Platform, count: int) -> list[str]:
    engine = create_app_engine(platform.url)
    try:
        with create_session_factory(engine)() as session:
            ids = [
                chat_service.create_chat_session(
                    session,
                    user_id=platform.user_id,
                    title="bench",
                    connection_id=platform.connection_id,
                ).id
                for _ in range(count)
            ]
            session.commit()
            return ids
    finally:
        engine.dispose()


# --- the API server -------------------------------------------------------------------------

SERVER_PIDS: dict[str, int] = {}
"""The process id of the API server listening at each base URL (its workers are its children)."""


def _process_tree_cpu_ms(pid: int) -> float | None:
    """CPU time (user + system, ms) of a process and its children so far (Linux /proc), or
    None where /proc is not available. Less sensitive to a busy machine than wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    try:
        while pending:
            current = pending.pop()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick * 1000
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
    except (OSError, ValueError, IndexError):
        return None
    return total


@contextmanager
def api_server(
    platform: Platform, *, workers: int, llm_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    port = _free_port()
    settings = platform.settings
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NLSQL_")},
        "PYTHONPATH": str(REPO_ROOT),
        "NLSQL_DATABASE_URL": platform.url,
        "NLSQL_DATA_DIR": str(settings.data_dir),
        "NLSQL_JWT_SECRET": settings.jwt_secret_value,
        "NLSQL_FERNET_KEYS": ",".join(k.get_secret_value() for k in settings.fernet_keys),
        "NLSQL_RUN_MIGRATIONS_ON_START": "false",
        "NLSQL_OPENAI_BASE_URL": llm_url,
        "NLSQL_OPENAI_API_KEY": "sk-bench",
        "NLSQL_OPENAI_MODEL": "bench-model",
        "NLSQL_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    if workers == 1:
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "backend.main:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log",
        ]  # fmt: skip
    else:
        # Not stock `uvicorn --workers N`, whose accepted connections lack TCP_NODELAY.
        command = [
            sys.executable, str(Path(__file__).resolve().parent / "serve_workers.py"),
            "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = process.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# --- load -----------------------------------------------------------------------------------


async def _probe_auth(
    client: httpx.AsyncClient, email: str, headers: dict[str, str], stop: asyncio.Event
) -> dict[str, Any]:
    """Sign-ins and GET /auth/me, one after another, until `stop`."""
    login_ms: list[float] = []
    me_ms: list[float] = []
    errors = 0
    while not stop.is_set():
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        login_ms.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200
        started = time.perf_counter()
        response = await client.get("/api/v1/auth/me", headers=headers)
        me_ms.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200
        await asyncio.sleep(0.05)
    return {
        "signin_count": len(login_ms),
        "signin_p50_ms": _p(login_ms, 0.5),
        "signin_p99_ms": _p(login_ms, 0.99),
        "me_count": len(me_ms),
        "me_p50_ms": _p(me_ms, 0.5),
        "me_p99_ms": _p(me_ms, 0.99),
        "probe_errors": errors,
    }


def serve_auth_probe(base: str, email: str, authorization: str) -> None:
    """The sign-in probe's loop, in a process of its own (see `auth_probe`): prints `ready`
    once its connection is open, probes until a line arrives on stdin, then prints its figures
    as one JSON line."""

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        headers = {"Authorization": authorization}
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            (await client.get("/healthz")).raise_for_status()
            print("ready", flush=True)

            def stop_probing() -> None:
                loop.remove_reader(sys.stdin.fileno())
                stop.set()

            loop.add_reader(sys.stdin.fileno(), stop_probing)
            return await _probe_auth(client, email, headers, stop)

    print(json.dumps(asyncio.run(main())), flush=True)


class _AuthProbe:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def finish(self) -> dict[str, Any]:
        """Stop probing; the probe's figures."""
        assert self.process.stdin is not None and self.process.stdout is not None  # noqa: S101
        self.process.stdin.write("stop\n")
        self.process.stdin.flush()
        figures: dict[str, Any] = json.loads(self.process.stdout.readline())
        return figures


@contextmanager
def auth_probe(base: str, platform: Platform, headers: dict[str, str]) -> Iterator[_AuthProbe]:
    """Sign-ins and `GET /auth/me` sent one after another from a process of their own.

    Not from the load generator's process: there, a probe request's answer waited while the
    same event loop read the burst's answers, and that wait was counted as the server's."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import logging, run_all; logging.getLogger('httpx').setLevel(logging.WARNING); "
            f"run_all.serve_auth_probe({base!r}, {platform.email!r}, "
            f"{headers['Authorization']!r})",
        ],
        cwd=Path(__file__).resolve().parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None  # noqa: S101 - piped above
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the sign-in probe did not start")
        yield _AuthProbe(process)
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)


def auth_alone(base: str, platform: Platform, headers: dict[str, str]) -> dict[str, Any]:
    """The same sign-ins and `GET /auth/me` with nothing else running: the baseline of the
    burst's probe (a sign-in's argon2 verification alone takes what it takes on this machine),
    and the server's CPU per probe round (one sign-in and one `/auth/me`), which a burst's
    `server_cpu_ms_per_ask` has taken off."""
    pid = SERVER_PIDS.get(base)
    with auth_probe(base, platform, headers) as probe:
        before = _cpu_of(pid)
        time.sleep(2.0)
        figures = probe.finish()
        after = _cpu_of(pid)
    rounds = figures["signin_count"]
    if before is not None and after is not None and rounds:
        figures["server_cpu_ms_per_probe_round"] = round((after - before) / rounds, 2)
    return figures


def llm_burst(
    base: str,
    platform: Platform,
    headers: dict[str, str],
    chats: list[str],
    delay: float,
    llm_url: str,
    probe_round_cpu_ms: float | None = None,
) -> dict[str, Any]:
    """`chats` asks sent at once while the sign-in probe runs; `probe_round_cpu_ms` (the
    server's CPU per probe round alone, `auth_alone`) is taken off the server's CPU per ask in
    `server_cpu_ms_per_ask_without_probe`."""
    with auth_probe(base, platform, headers) as probe:
        time.sleep(0.2)
        measured = asyncio.run(_burst(base, headers, chats, llm_url))
        probed = probe.finish()
    clients = len(chats)
    limit = clients / delay
    elapsed = measured.pop("elapsed")
    result = {
        "clients": clients,
        "wall_seconds": round(elapsed, 3),
        "asks_per_second": round(clients / elapsed, 2),
        "physical_limit_per_second": round(limit, 2),
        "share_of_physical_limit": round((clients / elapsed) / limit, 3),
        **measured,
        **probed,
    }
    server_ms = measured.get("server_cpu_ms_per_ask")
    if server_ms is not None and probe_round_cpu_ms is not None:
        # The probe ran a little longer than the burst (its start and its stop): an upper bound
        # of what it cost the server during the burst, taken off.
        probe_ms = probed["signin_count"] * probe_round_cpu_ms
        result["server_cpu_ms_per_ask_without_probe"] = round(
            max(0.0, server_ms - probe_ms / clients), 2
        )
    return result


async def _burst(
    base: str, headers: dict[str, str], chats: list[str], llm_url: str
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=len(chats) + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def ask(chat_id: str) -> int:
            response = await client.post(
                f"/api/v1/chat/sessions/{chat_id}/ask",
                json={"question": "customers per country", "generator": "openai"},
                headers=headers,
            )
            return response.status_code

        cpu = _BurstCpu(base, llm_url)
        started = time.perf_counter()
        statuses = await asyncio.gather(*(ask(c) for c in chats))
        elapsed = time.perf_counter() - started
        spent = cpu.per_request(len(chats))
    return {"elapsed": elapsed, "errors": sum(1 for s in statuses if s != 200), **spent}


class _BurstCpu:
    """CPU time (ms) spent during a burst by the API server (all its workers), the slow LLM
    stand-in and this process (the load generator and the sign-in probe), per request: where a
    2-core machine's time went, apart from the wall clock."""

    def __init__(self, base: str, llm_url: str) -> None:
        self.pids = {"server": SERVER_PIDS.get(base), "stand_in": SERVER_PIDS.get(llm_url)}
        self.before = {name: _cpu_of(pid) for name, pid in self.pids.items()}
        self.client_before = time.process_time()

    def per_request(self, requests: int) -> dict[str, float | None]:
        spent: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            after, before = _cpu_of(pid), self.before[name]
            spent[f"{name}_cpu_ms_per_ask"] = (
                round((after - before) / requests, 2)
                if after is not None and before is not None
                else None
            )
        client = (time.process_time() - self.client_before) * 1000
        spent["client_cpu_ms_per_ask"] = round(client / requests, 2)
        return spent


def _cpu_of(pid: int | None) -> float | None:
    return _process_tree_cpu_ms(pid) if pid is not None else None


async def stand_in_alone(llm_url: str, clients: int, delay: float) -> dict[str, Any]:
    """The same burst sent straight to the slow LLM stand-in by this load generator, with no
    API server between: the best share this machine's client and stand-in allow (the honest
    ceiling for the bursts through the server)."""
    payload = {
        "model": "bench-model",
        "messages": [{"role": "user", "content": "customers per country " + "x" * 4000}],
    }
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=llm_url, timeout=120, limits=limits) as client:

        async def call() -> int:
            response = await client.post("/chat/completions", json=payload)
            return response.status_code

        cpu = _BurstCpu("", llm_url)
        started = time.perf_counter()
        statuses = await asyncio.gather(*(call() for _ in range(clients)))
        elapsed = time.perf_counter() - started
        spent = cpu.per_request(clients)
    spent.pop("server_cpu_ms_per_ask", None)
    return {
        "clients": clients,
        "wall_seconds": round(elapsed, 3),
        "share_of_physical_limit": round(delay / elapsed, 3),
        "errors": sum(1 for s in statuses if s != 200),
        **spent,
    }


async def closed_loop(
    base: str,
    *,
    clients: int,
    seconds: float,
    method: str,
    path_for: Any,
    body_for: Any,
    headers: dict[str, str],
) -> dict[str, Any]:
    """`clients` loops sending requests back to back for `seconds`; count what completed."""
    limits = httpx.Limits(max_connections=clients + 2)
    latencies: list[float] = []
    query_ids: list[str] = []
    errors = 0
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def loop(index: int) -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.request(
                    method, path_for(index), json=body_for(index, n), headers=headers
                )
                latencies.append((time.perf_counter() - started) * 1000)
                n += 1
                if response.status_code != 200:
                    errors += 1
                elif method == "POST":
                    query_ids.append(response.json()["query_id"])

        pid = SERVER_PIDS.get(base)
        cpu_before = _process_tree_cpu_ms(pid) if pid is not None else None
        started = time.perf_counter()
        await asyncio.gather(*(loop(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
        cpu_after = _process_tree_cpu_ms(pid) if pid is not None else None
    server_cpu = (
        round((cpu_after - cpu_before) / len(latencies), 3)
        if cpu_before is not None and cpu_after is not None and latencies
        else None
    )
    return {
        "clients": clients,
        "requests": len(latencies),
        "server_cpu_ms_per_request": server_cpu,
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": _p(latencies, 0.5),
        "p99_ms": _p(latencies, 0.99),
        "errors": errors,
        "query_ids": query_ids,
    }


def record_p99(platform: Platform, query_ids: list[str]) -> dict[str, Any]:
    """p50/p99 of the record stage of exactly these asks, from their recorded metrics."""
    wanted = set(query_ids)
    engine = create_app_engine(platform.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(PerformanceMetric.metric_value, PerformanceMetric.additional_data).where(
                    PerformanceMetric.metric_name == "ask_stage_duration"
                )
            ).all()
    finally:
        engine.dispose()
    values = [
        float(value)
        for value, data in rows
        if data and data.get("stage") == "record" and data.get("query_id") in wanted
    ]
    return {
        "record_samples": len(values),
        "record_p50_ms": _p(values, 0.5),
        "record_p99_ms": _p(values, 0.99),
    }


def offline_runs(
    base: str, platform: Platform, headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    chats = make_chats(platform, max(OFFLINE_CLIENTS))
    results: dict[str, Any] = {}
    for clients in OFFLINE_CLIENTS:
        noop = asyncio.run(
            closed_loop(
                base,
                clients=clients,
                seconds=seconds,
                method="GET",
                path_for=lambda _i: "/healthz",
                body_for=lambda _i, _n: None,
                headers={},
            )
        )
        asks = asyncio.run(
            closed_loop(
                base,
                clients=clients,
                seconds=seconds,
                method="POST",
                path_for=lambda i: f"/api/v1/chat/sessions/{chats[i]}/ask",
                body_for=lambda i, n: {"question": QUESTIONS[(i + n) % len(QUESTIONS)]},
                headers=headers,
            )
        )
        query_ids = asks.pop("query_ids")
        noop.pop("query_ids")
        entry = {
            "ask": asks,
            "noop_healthz": noop,
            "ask_share_of_noop": round(asks["per_second"] / noop["per_second"], 3),
        }
        if asks["server_cpu_ms_per_request"] and noop["server_cpu_ms_per_request"]:
            entry["ask_cpu_over_noop_cpu"] = round(
                asks["server_cpu_ms_per_request"] / noop["server_cpu_ms_per_request"], 2
            )
        if clients == max(OFFLINE_CLIENTS):
            time.sleep(3)  # the metric writer flushes in the background
            entry.update(record_p99(platform, query_ids))
        results[f"clients_{clients}"] = entry
    return results


# --- in-process core versus one HTTP client -----------------------------------------------


def in_process_ratio(base: str, platform: Platform, headers: dict[str, str]) -> dict[str, Any]:
    """Median end-to-end HTTP ask (one client) / median in-process generate + guard + execute."""
    engine = create_app_engine(platform.url)
    try:
        with create_session_factory(engine)() as session:
            connection = session.get(DatabaseConnection, platform.connection_id)
            assert connection is not None  # noqa: S101
            session.expunge(connection)
    finally:
        engine.dispose()
    snapshot = schema_cache.read_snapshot(connection, settings=platform.settings)
    generator = BuiltinGenerator()
    core_ms: list[float] = []
    core_cpu_started = time.process_time()
    for round_number in range(6):
        if round_number == 1:
            # The first round is a warm-up (first-use loads of the engine in this process).
            core_ms.clear()
            core_cpu_started = time.process_time()
        for question in QUESTIONS:
            started = time.perf_counter()
            answer_in_process(generator, snapshot, connection, question, platform.settings)
            core_ms.append((time.perf_counter() - started) * 1000)
    core_cpu_ms = (time.process_time() - core_cpu_started) * 1000 / len(core_ms)
    (chat,) = make_chats(platform, 1)
    pid = SERVER_PIDS.get(base)
    server_cpu_ms: float | None = None
    http_ms: list[float] = []
    noop_ms: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(5 * len(QUESTIONS)):
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            noop_ms.append((time.perf_counter() - started) * 1000)
        cpu_before = _process_tree_cpu_ms(pid) if pid is not None else None
        for _ in range(5):
            for question in QUESTIONS:
                started = time.perf_counter()
                response = client.post(
                    f"/api/v1/chat/sessions/{chat}/ask",
                    json={"question": question},
                    headers=headers,
                )
                http_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
        cpu_after = _process_tree_cpu_ms(pid) if pid is not None else None
        if cpu_before is not None and cpu_after is not None:
            server_cpu_ms = (cpu_after - cpu_before) / len(http_ms)
    core, end_to_end = statistics.median(core_ms), statistics.median(http_ms)
    noop = statistics.median(noop_ms)
    return {
        "questions": len(QUESTIONS),
        "in_process_generate_guard_execute_median_ms": round(core, 3),
        "http_ask_median_ms": round(end_to_end, 3),
        "http_noop_median_ms": round(noop, 3),
        "ratio": round(end_to_end / core, 2),
        "ratio_without_http_round_trip": round((end_to_end - noop) / core, 2),
        # CPU rather than wall time (less sensitive to a busy machine): the server's CPU per
        # HTTP ask over this process's CPU per in-process generate + guard + execute.
        "in_process_core_cpu_ms": round(core_cpu_ms, 3),
        "server_cpu_ms_per_http_ask": round(server_cpu_ms, 3) if server_cpu_ms else None,
        "cpu_ratio": round(server_cpu_ms / core_cpu_ms, 2) if server_cpu_ms else None,
    }


# --- the run --------------------------------------------------------------------------------


@contextmanager
def platform_url(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'app_data.db'}"
        return
    given = os.environ.get("NLSQL_TEST_POSTGRES_URL")
    # A directory of its own: the server runs as the postgres user, who cannot enter `tmp`.
    base = Path(tempfile.mkdtemp(prefix="nlsql-bench-pg-"))
    admin_url = given or postgres_server.start(base)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        admin.dispose()
        if not given:
            postgres_server.stop(base)
        shutil.rmtree(base, ignore_errors=True)


def _cpu_bound_shares(entry: dict[str, Any], delay: float) -> None:
    """What share of the physical limit the same server could reach at best given how fast
    it serves offline asks (measured in this run, 32 clients): N asks need `delay` plus N
    asks' worth of platform work, which one process does one at a time."""
    rate = entry["offline"][f"clients_{max(OFFLINE_CLIENTS)}"]["ask"]["per_second"]
    for burst in entry["llm_burst"].values():
        clients = burst["clients"]
        best_wall = delay + clients / rate if rate else float("inf")
        burst["best_share_given_offline_rate"] = round(delay / best_wall, 3)


def run_backend(
    backend: str,
    workers_list: list[int],
    delay: float,
    seconds: float,
    *,
    llm: bool = True,
    offline: bool = True,
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"nlsql-bench-{backend}-"))
    results: dict[str, Any] = {}
    try:
        with platform_url(backend, tmp) as url:
            platform = prepare_platform(backend, url, tmp)
            headers = bearer_headers(platform.settings, platform.user_id)
            with slow_llm(delay) as llm_url:
                if llm:
                    results["stand_in_alone"] = {
                        f"clients_{clients}": asyncio.run(stand_in_alone(llm_url, clients, delay))
                        for clients in LLM_CLIENTS
                    }
                for workers in workers_list:
                    key = f"workers_{workers}"
                    print(f"[{backend}] {workers} worker(s)", file=sys.stderr, flush=True)
                    with api_server(platform, workers=workers, llm_url=llm_url) as base:
                        entry: dict[str, Any] = {"llm_burst": {}}
                        # Warm-up: the first ask introspects and caches the schema; each
                        # question once loads what the engine loads on first use (its word
                        # vectors), which no later ask pays again.
                        warm = make_chats(platform, 1)[0]
                        for question in QUESTIONS:
                            httpx.post(
                                f"{base}/api/v1/chat/sessions/{warm}/ask",
                                json={"question": question},
                                headers=headers,
                                timeout=60,
                            ).raise_for_status()
                        if llm:
                            alone = entry["auth_alone"] = auth_alone(base, platform, headers)
                            for clients in LLM_CLIENTS:
                                chats = make_chats(platform, clients)
                                entry["llm_burst"][f"clients_{clients}"] = llm_burst(
                                    base,
                                    platform,
                                    headers,
                                    chats,
                                    delay,
                                    llm_url,
                                    alone.get("server_cpu_ms_per_probe_round"),
                                )
                        if offline:
                            entry["offline"] = offline_runs(base, platform, headers, seconds)
                        if llm and offline:
                            _cpu_bound_shares(entry, delay)
                        if offline and workers == workers_list[0]:
                            results["in_process_ratio"] = in_process_ratio(base, platform, headers)
                        results[key] = entry
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def export_run(rows: int) -> dict[str, Any]:
    """`bench_export.py --json` in a subprocess: its last line is the report."""
    script = Path(__file__).resolve().parent / "bench_export.py"
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(script), "--rows", str(rows), "--json"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    # One log line per request the load generator sends would cost it more than the request.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--llm-delay", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=4.0, help="per offline measurement")
    parser.add_argument("--export-rows", type=int, default=1_000_000, help="0: no export run")
    parser.add_argument(
        "--no-llm", action="store_true", help="skip the slow-LLM bursts (offline figures only)"
    )
    parser.add_argument(
        "--no-offline",
        action="store_true",
        help="skip the offline-engine figures and the in-process ratio (the bursts only)",
    )
    args = parser.parse_args()
    workers_list = [int(w) for w in args.workers.split(",") if w.strip()]
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "llm_delay_seconds": args.llm_delay,
        "offline_seconds_per_measurement": args.seconds,
        "server": "1 worker: uvicorn; N workers: scripts/bench/serve_workers.py (N uvicorn "
        "processes on one TCP_NODELAY socket); subprocesses on loopback",
        "results": {},
    }
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        report["results"][backend] = run_backend(
            backend,
            workers_list,
            args.llm_delay,
            args.seconds,
            llm=not args.no_llm,
            offline=not args.no_offline,
        )
    if args.export_rows > 0:
        print(f"[export] {args.export_rows:,} rows", file=sys.stderr, flush=True)
        report["csv_export"] = export_run(args.export_rows)
    report["load_average_at_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
