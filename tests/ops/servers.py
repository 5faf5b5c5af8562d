"""Real server processes for the operations tests: `nlsql serve` on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

NLSQL = str(Path(sys.executable).parent / "nlsql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NLSQL_", "PROMETHEUS_"))}
    env.update(overrides)
    return env


class Server:
    """One `nlsql serve` (or any command serving HTTP on `port`), its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        self.log = log
        self.base = f"http://127.0.0.1:{port}"
        handle = log.open("wb")
        self.process = subprocess.Popen(
            args, env=env, cwd=log.parent, stdout=handle, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.output()}")
            try:
                response = httpx.get(f"{self.base}/readyz", timeout=2)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def serve(env: dict[str, str], log: Path, *extra: str) -> Server:
    port = free_port()
    return Server([NLSQL, "serve", "--port", str(port), *extra], env, log, port)
