"""Benchmark of `GET /query/{query_id}/export?format=csv`: peak memory of the server process.

Builds a SQLite target of `--rows` rows (default 1,000,000), starts the real app with uvicorn
in a subprocess on loopback (`python -m backend.cli serve`), registers a user, adds the target
as a connection, runs the query once through `POST /query/sql` (the capped preview that gets
recorded), then exports it over HTTP and reads every byte. Peak RSS of the server is read from
/proc/<pid>/status (VmHWM, the high-water mark, reset through /proc/<pid>/clear_refs before
each export) after a baseline export of `--baseline-rows` rows and again after the big one;
the report gives both in MB and their ratio, the CSV size, the rows received and the
throughput.

Speed is measured against two baselines on the same query over the same file, in the same
run, each timed right before and right after the export (their mean is the baseline):
`sqlite3 -csv` (the SQLite command-line shell, C; when it is not installed, `apt-get install
sqlite3`, the report says it is missing and uses only the second), and Python's `csv` module
writing the rows of `sqlite3.Cursor.fetchmany` as they come (no formula neutralising, no
HTTP): the floor for any exporter written in Python. Reported: rows/s of each and the
export's share of each; also the CPU seconds of `sqlite3 -csv` against those the server spent
during the export (every thread, /proc/<pid>/stat), which a loaded machine distorts less than
wall time.

Usage: python scripts/bench/bench_export.py [--rows 1000000] [--baseline-rows 1000] [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "bench-password-123"


def build_target(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, label TEXT NOT NULL, "
            "amount REAL, happened_on TEXT, note TEXT)"
        )
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO events SELECT i, 'event-' || i, i * 0.25, "
            "date('2021-01-01', '+' || (i % 1400) || ' days'), "
            "CASE WHEN i % 7 = 0 THEN NULL ELSE 'note, \"quoted\" ' || (i % 97) END FROM n",
            (rows,),
        )


EXPORT_SQL = "SELECT id, label, amount, happened_on, note FROM events ORDER BY id"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sqlite3_cli_seconds(target: Path, sql: str) -> tuple[float, int, float] | None:
    """Seconds, bytes and CPU seconds of `sqlite3 -csv` writing the query's rows to a pipe we
    drain."""
    cli = shutil.which("sqlite3")
    if cli is None:
        return None
    cpu = children_cpu_seconds()
    started = time.perf_counter()
    with subprocess.Popen([cli, "-csv", str(target), sql], stdout=subprocess.PIPE) as proc:  # noqa: S603
        assert proc.stdout is not None  # noqa: S101
        size = 0
        while chunk := proc.stdout.read(1 << 16):
            size += len(chunk)
    return time.perf_counter() - started, size, children_cpu_seconds() - cpu


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used: /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def python_csv_seconds(target: Path, sql: str) -> tuple[float, int]:
    """Seconds and bytes of Python's csv module writing the rows as fetched, 2,000 at a time."""
    started = time.perf_counter()
    size = 0
    with sqlite3.connect(f"file:{target}?mode=ro", uri=True) as conn:
        cursor = conn.execute(sql)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([d[0] for d in cursor.description])
        while batch := cursor.fetchmany(2000):
            writer.writerows(batch)
            size += len(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    return time.perf_counter() - started, size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: `5` into clear_refs); False where refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited early")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not start")


@contextmanager
def served_app(root: Path, allowed_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The real app in a subprocess (`nlsql serve`) on a free loopback port, its platform
    database under `root`, SQLite targets allowed in `allowed_dir`: (process, base URL)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "NLSQL_DATA_DIR": str(root),
        "NLSQL_DATABASE_URL": f"sqlite:///{root / 'app.db'}",
        "NLSQL_JWT_SECRET": "bench-secret-" + "x" * 40,
        "NLSQL_FERNET_KEYS": Fernet.generate_key().decode(),
        "NLSQL_SQLITE_ALLOWED_DIRS": str(allowed_dir),
        "NLSQL_RUN_MIGRATIONS_ON_START": "true",
        "NLSQL_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"], env=env, check=True, cwd=REPO_ROOT
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        yield proc, base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def signed_up(client: httpx.Client, email: str = "bench@example.com") -> dict[str, str]:
    """Register a user and sign in: the Authorization header of its access token."""
    client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Bench"},
    ).raise_for_status()
    login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def sqlite_connection(client: httpx.Client, headers: dict[str, str], name: str, path: Path) -> str:
    """Add the SQLite file `path` as a connection; its id."""
    created = client.post(
        "/api/v1/connections",
        json={"connection_name": name, "db_type": "sqlite", "db_name": str(path)},
        headers=headers,
    )
    created.raise_for_status()
    return str(created.json()["id"])


def export(client: httpx.Client, query_id: str, headers: dict[str, str]) -> tuple[int, int, float]:
    """Rows (lines minus the header), bytes, seconds of one streamed export."""
    started = time.perf_counter()
    size = lines = 0
    with client.stream(
        "GET", f"/api/v1/query/{query_id}/export", params={"format": "csv"}, headers=headers
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return lines - 1, size, time.perf_counter() - started


def recorded_query(
    client: httpx.Client, connection_id: str, sql: str, headers: dict[str, str]
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/query/sql", json={"connection_id": connection_id, "sql": sql}, headers=headers
    )
    response.raise_for_status()
    return dict(response.json())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nlsql-bench-export-") as tmp:
        root = Path(tmp)
        targets = root / "targets"
        targets.mkdir()
        target = targets / "events.sqlite"
        started = time.perf_counter()
        build_target(target, args.rows)
        print(
            f"target: {args.rows:,} rows, {target.stat().st_size / 1e6:.1f} MB on disk, "
            f"built in {time.perf_counter() - started:.1f} s"
        )

        with (
            served_app(root, targets) as (proc, base),
            httpx.Client(base_url=base, timeout=600) as client,
        ):
            headers = signed_up(client)
            connection_id = sqlite_connection(client, headers, "events", target)
            columns = "id, label, amount, happened_on, note"
            small = recorded_query(
                client,
                connection_id,
                f"SELECT {columns} FROM events WHERE id <= {args.baseline_rows} ORDER BY id",
                headers,
            )
            big = recorded_query(client, connection_id, EXPORT_SQL, headers)
            print(f"preview: {big['row_count']:,} rows, truncated={big['truncated']}")

            rss_idle_kb = status_kb(proc.pid, "VmRSS")
            peak_reset = reset_peak(proc.pid)
            rows, size, seconds = export(client, small["query_id"], headers)
            if rows != args.baseline_rows:
                raise SystemExit(f"baseline: {rows:,} rows arrived of {args.baseline_rows:,}")
            baseline_kb = status_kb(proc.pid, "VmHWM")
            cli_runs = [sqlite3_cli_seconds(target, EXPORT_SQL)]
            python_runs = [python_csv_seconds(target, EXPORT_SQL)]
            reset_peak(proc.pid)
            cpu_before = process_cpu_seconds(proc.pid)
            rows, size, seconds = export(client, big["query_id"], headers)
            export_cpu = process_cpu_seconds(proc.pid) - cpu_before
            if rows != args.rows:
                raise SystemExit(f"{rows:,} rows arrived of {args.rows:,}")
            peak_kb = status_kb(proc.pid, "VmHWM")
            cli_runs.append(sqlite3_cli_seconds(target, EXPORT_SQL))
            python_runs.append(python_csv_seconds(target, EXPORT_SQL))

    export_rate = args.rows / seconds
    python_seconds = sum(r[0] for r in python_runs) / len(python_runs)
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "rows": args.rows,
        "csv_bytes": size,
        "export_seconds": round(seconds, 3),
        "export_rows_per_second": round(export_rate),
        "export_server_cpu_seconds": round(export_cpu, 3),
        "python_csv_seconds": round(python_seconds, 3),
        "share_of_python_csv": round(python_seconds / seconds, 3),
        "sqlite3_cli": None,
        "rss_idle_mb": round(rss_idle_kb / 1024, 1),
        "peak_rss_baseline_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_ratio": round(peak_kb / baseline_kb, 3),
        "peak_reset_per_export": peak_reset,
    }
    timed_cli = [r for r in cli_runs if r is not None]
    if timed_cli:
        cli_seconds = sum(r[0] for r in timed_cli) / len(timed_cli)
        cli_cpu = sum(r[2] for r in timed_cli) / len(timed_cli)
        report["sqlite3_cli"] = {
            "seconds": round(cli_seconds, 3),
            "bytes": timed_cli[0][1],
            "share": round(cli_seconds / seconds, 3),
            "cpu_seconds": round(cli_cpu, 3),
            "cpu_share": round(cli_cpu / export_cpu, 3) if export_cpu else None,
        }
        print(
            f"sqlite3 -csv: {cli_seconds:.2f} s ({args.rows / cli_seconds:,.0f} rows/s); "
            f"the export runs at {cli_seconds / seconds:.1%} of it"
        )
        if export_cpu:
            # On a loaded machine wall time depends on the scheduler; CPU time much less.
            print(
                f"CPU time: sqlite3 -csv {cli_cpu:.2f} s, the server during the export "
                f"{export_cpu:.2f} s: {cli_cpu / export_cpu:.1%}"
            )
    else:
        print("sqlite3 -csv: not installed (apt-get install sqlite3); Python csv only")
    print(
        f"Python csv module, same rows: {python_seconds:.2f} s; the export runs at "
        f"{python_seconds / seconds:.1%} of it"
    )
    print(f"server RSS before exporting: {rss_idle_kb / 1024:.1f} MB")
    print(
        "peak RSS measured per export (VmHWM reset before each)"
        if peak_reset
        else "VmHWM could not be reset: peaks include start-up"
    )
    print(
        f"peak RSS after a {args.baseline_rows:,}-row export (baseline): "
        f"{baseline_kb / 1024:.1f} MB"
    )
    print(f"peak RSS after the {args.rows:,}-row export: {peak_kb / 1024:.1f} MB")
    print(
        f"ratio peak/baseline: {peak_kb / baseline_kb:.2f}; "
        f"growth {(peak_kb - baseline_kb) / 1024:.1f} MB "
        f"for {size / 1e6:.1f} MB of CSV ({args.rows:,} rows in {seconds:.1f} s, "
        f"{args.rows / seconds:,.0f} rows/s)"
    )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
