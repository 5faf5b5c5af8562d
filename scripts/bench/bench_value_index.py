"""Benchmark: what the snapshot's value index costs, in bytes kept per cached schema and in
seconds to introspect, against the same snapshot without it, measured in one run.

    python scripts/bench/bench_value_index.py [--spider ../shared/bench/spider_train/database]
        [--largest 5] [--repeat 3]

Reads the `--largest` SQLite databases of a Spider-style folder (<db_id>/<db_id>.sqlite) and a
synthetic database of 100 tables written here (each with 2,000 rows of text columns of
thousands of distinct values: the worst case for the index). For each: the snapshot's JSON
size without the index (the baseline: what introspection stored before it) and with it, their
ratio, the index's own bytes against `INDEX_SCHEMA_BYTES`, and the median seconds to
introspect with and without it. The baseline turns the index off in-process
(`column_index` returning nothing): the same catalog queries and scan either way."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.connections import introspection  # noqa: E402
from backend.connections.executor import open_sqlite_read_only  # noqa: E402
from backend.connections.snapshot import SchemaSnapshot  # noqa: E402
from backend.connections.value_index import INDEX_SCHEMA_BYTES, index_bytes  # noqa: E402


def _introspect(path: Path) -> tuple[SchemaSnapshot, float]:
    engine = open_sqlite_read_only(path)
    try:
        started = time.perf_counter()
        snapshot = introspection.introspect(engine, db_type="sqlite", database_name=path.stem)
        return snapshot, time.perf_counter() - started
    finally:
        engine.dispose()


def _no_index(values: Iterable[object]) -> list[str]:
    return []


def _measure(path: Path, repeat: int) -> tuple[int, int, int, float, float]:
    real = introspection.column_index
    with_times, without_times = [], []
    snapshot = baseline = None
    for _ in range(repeat):
        introspection.column_index = _no_index
        try:
            baseline, seconds = _introspect(path)
        finally:
            introspection.column_index = real
        without_times.append(seconds)
        snapshot, seconds = _introspect(path)
        with_times.append(seconds)
    if snapshot is None or baseline is None:
        raise SystemExit("--repeat must be at least 1")
    held = index_bytes(c for t in snapshot.tables for c in t.columns)
    return (
        len(baseline.model_dump_json()),
        len(snapshot.model_dump_json()),
        held,
        statistics.median(without_times),
        statistics.median(with_times),
    )


def _synthetic(folder: Path, tables: int = 100, rows: int = 2000) -> Path:
    path = folder / "synthetic.sqlite"
    conn = sqlite3.connect(path)
    try:
        for i in range(tables):
            conn.execute(
                f"CREATE TABLE t{i:03d} (id INTEGER PRIMARY KEY, person_name TEXT, city TEXT,"
                " code VARCHAR(12), status TEXT, note TEXT)"
            )
            conn.executemany(
                f"INSERT INTO t{i:03d} VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608 - our own names
                [
                    (
                        r,
                        f"Person {i}-{r} O'Name",
                        f"City {r % 700}",
                        f"C{i:03d}{r:05d}",
                        ("open", "closed", "held")[r % 3],
                        "a note " * (r % 40),
                    )
                    for r in range(rows)
                ],
            )
        conn.commit()
    finally:
        conn.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--spider", type=Path, default=Path("../shared/bench/spider_train/database")
    )
    parser.add_argument("--largest", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(args.spider.glob("*/*.sqlite"), key=lambda p: p.stat().st_size, reverse=True)
    with tempfile.TemporaryDirectory() as folder:
        targets = [*paths[: args.largest], _synthetic(Path(folder))]
        print(
            f"{'database':<22} {'file MB':>8} {'snapshot B':>11} {'with index B':>13}"
            f" {'ratio':>6} {'index B':>8} {'/budget':>7} {'s before':>9} {'s after':>8}"
            f" {'ratio':>6}"
        )
        for path in targets:
            before, after, held, s_before, s_after = _measure(path, args.repeat)
            print(
                f"{path.stem:<22} {path.stat().st_size / 1e6:>8.1f} {before:>11,} {after:>13,}"
                f" {after / before:>6.2f} {held:>8,} {held / INDEX_SCHEMA_BYTES:>7.2f}"
                f" {s_before:>9.3f} {s_after:>8.3f} {s_after / s_before:>6.2f}"
            )


if __name__ == "__main__":
    main()
