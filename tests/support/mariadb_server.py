"""A throwaway MariaDB server on loopback for the tests (Debian's mariadb-server package).

`.ci/run` may start one with `python -m tests.support.mariadb_server start DIR` and export
`NLSQL_TEST_MYSQL_URL`; when that variable is missing the test session starts its own, and the
MySQL tests skip when no server binaries are installed (`apt-get install mariadb-server`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

_SERVER_CANDIDATES = ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")


def find_server() -> Path | None:
    for name in ("mariadbd", "mysqld"):
        on_path = shutil.which(name)
        if on_path:
            return Path(on_path)
    for candidate in _SERVER_CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    return None


def _install_db() -> Path | None:
    found = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    return Path(found) if found else None


def _install(install_db: Path, data: Path) -> None:
    """Initialise the data directory. Run without the system's option files (`--no-defaults`,
    as the server is), so that the host's MariaDB configuration cannot change what the tests
    get; tried a second time on a clean directory, since it failed once on a busy machine."""
    command = [
        str(install_db),
        "--no-defaults",
        *_run_as(),
        f"--datadir={data}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
    ]
    said = ""
    for _ in range(2):
        installed = subprocess.run(command, capture_output=True)
        if installed.returncode == 0:
            return
        said = (installed.stdout + installed.stderr).decode(errors="replace")[-4000:]
        shutil.rmtree(data, ignore_errors=True)
    raise RuntimeError(f"{install_db} exited with {installed.returncode}:\n{said}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> list[str]:
    # mariadbd refuses to run as root; drop to the mysql system user the package creates.
    return ["--user=mysql"] if os.geteuid() == 0 else []


def start(base_dir: Path) -> str:
    """Initialise and start a server under `base_dir`; return a root URL (no password)."""
    server, install_db = find_server(), _install_db()
    if server is None or install_db is None:
        raise RuntimeError("MariaDB server binaries not found (apt-get install mariadb-server)")
    base_dir.mkdir(parents=True, exist_ok=True)
    data = base_dir / "data"
    if os.geteuid() == 0:
        shutil.chown(base_dir, "mysql", "mysql")
    _install(install_db, data)
    port = _free_port()
    log = open(base_dir / "server.log", "wb")  # noqa: SIM115 - handed to the server process
    process = subprocess.Popen(
        [
            str(server),
            "--no-defaults",
            *_run_as(),
            f"--datadir={data}",
            f"--socket={base_dir / 'mysqld.sock'}",
            f"--pid-file={base_dir / 'mysqld.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=0",
            "--skip-log-bin",
            "--max-connections=200",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (base_dir / "port").write_text(str(port))
    (base_dir / "server.pid").write_text(str(process.pid))
    _wait_ready(port, process)
    return f"mysql+pymysql://root@127.0.0.1:{port}/mysql"


def _wait_ready(port: int, process: subprocess.Popen[bytes], timeout_seconds: float = 60) -> None:
    import pymysql

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("MariaDB exited during start-up; see server.log")
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return
        except pymysql.err.MySQLError:
            time.sleep(0.2)
    raise RuntimeError(f"MariaDB did not accept connections on port {port}")


def stop(base_dir: Path) -> None:
    pid_file = base_dir / "server.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    os.kill(pid, 9)


if __name__ == "__main__":
    action, directory = sys.argv[1], Path(sys.argv[2])
    if action == "start":
        print(start(directory))  # noqa: T201
    elif action == "stop":
        stop(directory)
    else:
        raise SystemExit(f"usage: {sys.argv[0]} start|stop DIR")
