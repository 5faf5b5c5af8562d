"""A throwaway PostgreSQL server on loopback for the tests (Debian's postgresql package).

`.ci/run` starts one with `python -m tests.support.postgres_server start DIR` and exports
`NLSQL_TEST_POSTGRES_URL`; when that variable is missing the test session starts its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def find_pg_bin() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; drop to the postgres system user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start(base_dir: Path) -> str:
    """Init and start a server under `base_dir`; return its superuser URL."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise RuntimeError("PostgreSQL server binaries not found (install postgresql-15)")
    base_dir.mkdir(parents=True, exist_ok=True)
    data = base_dir / "data"
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(base_dir, "postgres", "postgres")
        os.chmod(base_dir, 0o700)
    subprocess.run(
        _as_postgres(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        ),
        check=True,
        capture_output=True,
    )
    opts = (
        f"-p {port} -c listen_addresses=127.0.0.1 -k {base_dir} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(base_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    (base_dir / "port").write_text(str(port))
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    _wait_ready(port)
    return url


def _wait_ready(port: int, timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL did not accept connections on port {port}")


def stop(base_dir: Path) -> None:
    pg_bin = find_pg_bin()
    data = base_dir / "data"
    if pg_bin is None or not data.exists():
        return
    subprocess.run(
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
        check=False,
        capture_output=True,
    )


if __name__ == "__main__":
    action, directory = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(directory))  # noqa: T201
    elif action == "stop":
        stop(directory)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} start|stop DIR")
