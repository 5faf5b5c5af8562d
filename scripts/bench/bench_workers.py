"""Throughput of a no-op endpoint (`GET /healthz`) over keep-alive connections, served three
ways in the same run: `nlsql serve` (one uvicorn process, the baseline), `nlsql serve --workers
N` (gunicorn with uvicorn workers, what production runs) and stock `uvicorn --workers N` (for
comparison: its supervisor-bound socket lacks TCP_NODELAY, which costs ~40 ms per keep-alive
response). Clients are threads with one keep-alive httpx connection each; the figure is
requests per second over `--seconds`, and the ratio is against the single process.

    python scripts/bench/bench_workers.py [--workers 2] [--clients 8] [--seconds 5] [--json P]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def _load(base: str, clients: int, seconds: float) -> tuple[float, float]:
    """(requests per second, median latency ms) of `clients` keep-alive clients."""
    counts = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            client.get("/healthz")  # open the connection before the clock runs
            while time.monotonic() < stop:
                started = time.perf_counter()
                client.get("/healthz")
                latencies[i].append((time.perf_counter() - started) * 1000)
                counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    merged = sorted(x for per in latencies for x in per)
    median = merged[len(merged) // 2] if merged else float("nan")
    return sum(counts) / elapsed, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nlsql-bench-workers-") as tmp:
        data = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NLSQL_")}
        env.update(
            {
                "NLSQL_DATA_DIR": str(data),
                "NLSQL_LOG_LEVEL": "WARNING",
                "NLSQL_RECORD_REQUEST_METRICS": "false",
                "NLSQL_PRUNE_CRON": "",
            }
        )
        subprocess.run([str(BIN / "nlsql"), "migrate"], env=env, cwd=data, check=True)
        (data / "bench_app.py").write_text(
            "from backend.main import create_app\napp = create_app()\n", encoding="utf-8"
        )
        n = str(options.workers)
        variants = {
            "nlsql serve (1 process)": [str(BIN / "nlsql"), "serve"],
            f"nlsql serve --workers {n} (gunicorn)": [str(BIN / "nlsql"), "serve", "--workers", n],
            f"uvicorn --workers {n} (stock)": [
                str(BIN / "uvicorn"),
                "bench_app:app",
                "--workers",
                n,
                "--log-level",
                "warning",
            ],
        }
        results: dict[str, tuple[float, float]] = {}
        for name, args in variants.items():
            port = _free_port()
            args = [*args, "--port", str(port)]
            process = _start(args, env, data)
            base = f"http://127.0.0.1:{port}"
            try:
                _wait(base, process)
                _load(base, options.clients, 1.0)  # warm-up
                results[name] = _load(base, options.clients, options.seconds)
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()

    baseline = next(iter(results.values()))[0]
    print(
        f"GET /healthz, {options.clients} keep-alive clients, {options.seconds:g} s each "
        f"(machine: {os.cpu_count()} cores)"
    )
    for name, (rate, median) in results.items():
        print(
            f"  {name:<40} {rate:8.0f} req/s  median {median:7.2f} ms  "
            f"ratio to 1 process {rate / baseline:5.2f}"
        )
    if options.json is not None:
        options.json.write_text(
            json.dumps(
                {
                    "benchmark": "workers",
                    "clients": options.clients,
                    "seconds": options.seconds,
                    "baseline": "nlsql serve (1 process)",
                    "results": {
                        name: {
                            "requests_per_second": round(rate, 1),
                            "median_ms": round(median, 3),
                            "ratio": round(rate / baseline, 3),
                        }
                        for name, (rate, median) in results.items()
                    },
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
