"""Benchmark of result size: peak memory and time of the server per `POST /query/sql` request for
huge values against a small query, in the same run.

Builds a SQLite target with a table `docs` of `--rows` rows of `--cell-kb` kB of text each, and a
table `huge` of one `--huge-mb` MB value; starts the real app with uvicorn in a subprocess on
loopback; then, resetting the server's peak RSS (VmHWM, /proc/<pid>/clear_refs) before each,
runs: a small query (the baseline), the one huge value (refused by SQLite past the result
budget: 422 `result_too_large`), and every row of `docs` (stopped at the byte budget:
`truncated_reason: byte_limit`). Reports each request's peak RSS, its growth over the baseline,
the ratio, the response size and the time.

Usage: python scripts/bench/bench_result_size.py [--rows 200] [--cell-kb 500] [--huge-mb 100]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import (  # noqa: E402 - a sibling script, not a package
    reset_peak,
    served_app,
    signed_up,
    sqlite_connection,
    status_kb,
)


def build_target(path: Path, *, rows: int, cell_kb: int, huge_mb: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO docs SELECT i, replace(hex(zeroblob(? / 2)), '0', char(97 + i % 26)) "
            "FROM n",
            (rows, cell_kb * 1000),
        )
        conn.execute("CREATE TABLE huge (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute(
            "INSERT INTO huge VALUES (1, replace(hex(zeroblob(? / 2)), '0', 'h'))",
            (huge_mb * 1_000_000,),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--cell-kb", type=int, default=500)
    parser.add_argument("--huge-mb", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nlsql-bench-result-") as tmp:
        root = Path(tmp)
        targets = root / "targets"
        targets.mkdir()
        target = targets / "docs.sqlite"
        build_target(target, rows=args.rows, cell_kb=args.cell_kb, huge_mb=args.huge_mb)
        print(f"target: {target.stat().st_size / 1e6:.1f} MB on disk")
        results: list[tuple[str, int, float, int, str]] = []
        with (
            served_app(root, targets) as (proc, base),
            httpx.Client(base_url=base, timeout=600) as client,
        ):
            headers = signed_up(client)
            cid = sqlite_connection(client, headers, "docs", target)
            # The first query takes the schema snapshot; it is not what is measured.
            client.post(
                "/api/v1/query/sql",
                json={"connection_id": cid, "sql": "SELECT id FROM docs WHERE id = 1"},
                headers=headers,
            ).raise_for_status()
            cases = [
                ("small query (baseline)", "SELECT id FROM docs WHERE id <= 10 ORDER BY id"),
                (f"one {args.huge_mb} MB value", "SELECT body FROM huge"),
                (
                    f"{args.rows} rows of {args.cell_kb} kB",
                    "SELECT id, body FROM docs ORDER BY id",
                ),
            ]
            for label, sql in cases:
                reset_peak(proc.pid)
                started = time.perf_counter()
                response = client.post(
                    "/api/v1/query/sql",
                    json={"connection_id": cid, "sql": sql},
                    headers=headers,
                )
                seconds = time.perf_counter() - started
                body = response.json()
                outcome = (
                    f"{body['row_count']} rows, truncated_reason={body.get('truncated_reason')}"
                    if response.status_code == 200
                    else f"{response.status_code} {body['error']['code']}"
                )
                results.append(
                    (
                        label,
                        status_kb(proc.pid, "VmHWM"),
                        seconds,
                        len(response.content),
                        outcome,
                    )
                )

    baseline_kb = results[0][1]
    for label, peak_kb, seconds, size, outcome in results:
        print(
            f"{label}: peak RSS {peak_kb / 1024:.1f} MB "
            f"(+{(peak_kb - baseline_kb) / 1024:.1f} MB, ratio {peak_kb / baseline_kb:.2f}), "
            f"{seconds:.2f} s, response {size / 1e6:.2f} MB: {outcome}"
        )


if __name__ == "__main__":
    main()
