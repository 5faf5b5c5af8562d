"""Serve the app with N uvicorn worker processes on one listening socket that keeps
TCP_NODELAY on every accepted connection (a stand-in for `nlsql serve --workers N` in the
benchmarks).

Stock `uvicorn --workers N` binds a socket whose protocol number is 0, so asyncio never sets
TCP_NODELAY on the connections the workers accept, and every keep-alive request waits ~40 ms
for a delayed ACK. Here the socket is opened as TCP (IPPROTO_TCP) before the workers fork.

    python scripts/bench/serve_workers.py --port 8000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve(sock: socket.socket) -> None:
    config = uvicorn.Config(
        "backend.main:create_app",
        factory=True,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sock = _listen(args.host, args.port)
    children: list[int] = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            _serve(sock)
            os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
