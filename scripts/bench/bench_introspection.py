"""Benchmark: seconds to introspect SQLite and PostgreSQL databases of 300 and 1000 tables.

    python scripts/bench/bench_introspection.py [--tables 300 1000] [--repeat 3]

PostgreSQL is started from Debian's binaries (as the tests do) unless NLSQL_TEST_POSTGRES_URL
is set; it is skipped when neither is available. Reports the median of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.connections.crypto import encrypt_password  # noqa: E402
from backend.connections.engines import engine_cache  # noqa: E402
from backend.connections.models import DatabaseConnection  # noqa: E402
from backend.connections.schema_cache import read_snapshot  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from tests.support import postgres_server  # noqa: E402

ROWS = "INSERT INTO t{i:04d} VALUES (1, 1, 'a', 'x', 1.5, '2024-01-01'), (2, 1, 'b', 'y', 2.5, '2024-01-02')"  # noqa: E501, S608
DDL = (
    "CREATE TABLE t{i:04d} (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES t0000 (id), "
    "label VARCHAR(40), category VARCHAR(20), amount NUMERIC(10, 2), created_at TIMESTAMP)"
)


def _median_seconds(connection: DatabaseConnection, settings: Settings, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        engine_cache.dispose_all()
        started = time.perf_counter()
        snapshot = read_snapshot(connection, settings=settings)
        times.append(time.perf_counter() - started)
    if not snapshot.tables:
        raise SystemExit("introspection found no tables")
    return statistics.median(times)


def _connection(db_type: str, db_name: str, **fields: object) -> DatabaseConnection:
    return DatabaseConnection(
        id=str(uuid.uuid4()),
        user_id="bench",
        connection_name=db_type,
        db_type=db_type,
        db_name=db_name,
        created_at=datetime.now(UTC),
        **fields,
    )


def bench_sqlite(work: Path, tables: int, settings: Settings, repeat: int) -> float:
    path = work / f"bench_{tables}.sqlite"
    with sqlite3.connect(path) as conn:
        for i in range(tables):
            conn.execute(DDL.format(i=i))
            conn.execute(ROWS.format(i=i))
    return _median_seconds(_connection("sqlite", str(path)), settings, repeat)


def bench_postgresql(admin_url: str, tables: int, settings: Settings, repeat: int) -> float:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = make_url(admin_url).set(database=name)
    target = create_engine(url, isolation_level="AUTOCOMMIT")
    with target.connect() as conn:
        for i in range(tables):
            conn.execute(text(DDL.format(i=i)))
            conn.execute(text(ROWS.format(i=i)))
    target.dispose()
    try:
        connection = _connection(
            "postgresql",
            name,
            db_host=url.host,
            db_port=url.port,
            db_user=url.username,
            encrypted_db_password=(
                encrypt_password(settings, url.password) if url.password else None
            ),
        )
        return _median_seconds(connection, settings, repeat)
    finally:
        engine_cache.dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nlsql-bench-"))
    settings = Settings(
        data_dir=work,
        database_url=f"sqlite:///{work / 'app.db'}",
        jwt_secret=SecretStr("bench-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        sqlite_allowed_dirs=[work],
        _env_file=None,
    )
    pg_url = os.environ.get("NLSQL_TEST_POSTGRES_URL")
    pg_dir: Path | None = None
    if pg_url is None and postgres_server.find_pg_bin() is not None:
        pg_dir = Path(tempfile.mkdtemp(prefix="nlsql-bench-pg-"))
        pg_url = postgres_server.start(pg_dir)
    try:
        print(f"{'dialect':<12}{'tables':>8}{'median s':>10}")
        for tables in args.tables:
            seconds = bench_sqlite(work, tables, settings, args.repeat)
            print(f"{'sqlite':<12}{tables:>8}{seconds:>10.3f}")
            if pg_url:
                seconds = bench_postgresql(pg_url, tables, settings, args.repeat)
                print(f"{'postgresql':<12}{tables:>8}{seconds:>10.3f}")
    finally:
        engine_cache.dispose_all()
        if pg_dir is not None:
            postgres_server.stop(pg_dir)
            shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
