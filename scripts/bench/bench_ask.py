"""Median time of an ask on the demo database, split into generate, guard, execute and record.

Runs the same questions in-process (through `pipeline.ask`) and over HTTP (the real app through
TestClient), on a fresh platform database in a temporary directory. Uses the `builtin` engine
when it is installed; otherwise a fixed question->SQL stand-in, which makes `generate` near zero
and says so in the output.

    python scripts/bench/bench_ask.py [--rounds 20] [--database-url URL]

With `--serve`, instead: the real server (`uvicorn`, a subprocess on loopback, as
`run_all.py` starts it) answers `--clients` closed loops of offline asks for `--seconds`, and
the server's CPU per ask is printed; `--py-spy FILE` records the server meanwhile (py-spy, the
`dev` extra; only the thread holding the GIL, so waits do not count) as a flame graph, or as
collapsed stacks when FILE ends in `.txt`:

    python scripts/bench/bench_ask.py --serve --clients 8 --seconds 20 --py-spy ask.svg

With `--serve --repeat K` (no py-spy): K closed loops of asks and K of a no-op (`GET
/healthz`), alternating, and K rounds of the in-process core (generate + guard + execute of the
same questions, as the ask does them: the guard takes the engine's parsed tree) in this
process; printed as CPU per request, the lowest of the K (the least disturbed by other work on
a shared machine) and the median, with the ratios `ask_cpu / core_cpu` and `ask_cpu /
noop_cpu`. CPU time, not wall time: a busy machine stretches wall times far more.

    python scripts/bench/bench_ask.py --serve --clients 1 --seconds 4 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from signin import bearer_headers  # noqa: E402

from backend.auth import service as auth_service  # noqa: E402
from backend.auth.deps import Principal  # noqa: E402
from backend.auth.scopes import ROLE_SCOPES  # noqa: E402
from backend.chat import service as chat_service  # noqa: E402
from backend.connections import service as connections_service  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.migrations import upgrade_to_head  # noqa: E402
from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.main import create_app  # noqa: E402
from backend.nl2sql import pipeline  # noqa: E402
from backend.nl2sql.engines import registry  # noqa: E402
from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator  # noqa: E402
from backend.observability.models import PerformanceMetric  # noqa: E402

QUESTIONS = {
    "how many orders are there?": "SELECT COUNT(*) FROM orders",
    "revenue by country": (
        "SELECT c.country, SUM(p.amount) AS revenue FROM payments p JOIN orders o ON "
        "o.id = p.order_id JOIN customers c ON c.id = o.customer_id GROUP BY c.country "
        "ORDER BY revenue DESC"
    ),
    "monthly revenue in 2023": (
        "SELECT strftime('%Y-%m', paid_at) AS month, SUM(amount) AS revenue FROM payments "
        "WHERE paid_at >= '2023-01-01' AND paid_at < '2024-01-01' GROUP BY month ORDER BY month"
    ),
    "top 5 products by quantity sold": (
        "SELECT p.name, SUM(oi.quantity) AS sold FROM order_items oi JOIN products p ON "
        "p.id = oi.product_id GROUP BY p.name ORDER BY sold DESC LIMIT 5"
    ),
    "products never ordered": (
        "SELECT name FROM products WHERE id NOT IN (SELECT product_id FROM order_items)"
    ),
}
STAGES = pipeline.STAGES


class FixedGenerator(SqlGenerator):
    name = "bench-fixed"

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation(sql=QUESTIONS[request.question], explanation="fixed")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _report(title: str, per_stage: dict[str, list[float]], totals: list[float]) -> None:
    print(f"\n{title} ({len(totals)} asks)")
    for stage in STAGES:
        print(f"  {stage:<8} median {_median(per_stage[stage]):8.3f} ms")
    print(f"  {'total':<8} median {_median(totals):8.3f} ms (wall time of the whole ask)")
    staged = sum(_median(per_stage[stage]) for stage in STAGES)
    print(
        f"  {'rest':<8} ~      {_median(totals) - staged:8.3f} ms (auth, session, snapshot, commit)"
    )


def answer_in_process(
    generator: Any, snapshot: Any, connection: Any, question: str, settings: Settings
) -> None:
    """`question` answered as an ask answers it with the builtin engine, in this process:
    generate, guard (handed the engine's parse, one parse as in the ask), execute."""
    from backend.connections import executor
    from backend.nl2sql.guard import guard_sql, sqlglot_dialect

    generation = generator.generate(
        GenerationRequest(
            question=question,
            schema=snapshot,
            dialect=sqlglot_dialect(connection.db_type),
            row_cap=1000,
        )
    )
    guarded = guard_sql(
        generation.sql,
        snapshot=snapshot,
        dialect=connection.db_type,
        row_cap=1001,
        shown_row_cap=1000,
        parsed=generation.parsed,
    )
    executor.run_on_connection(
        connection, guarded.sql, row_cap=1000, timeout_seconds=30, settings=settings
    )


def core_cpu_ms(platform: Any, questions: list[str], rounds: int) -> list[float]:
    """CPU ms per in-process generate + guard + execute of `questions`, one figure a round
    (after a warm-up round), as the ask does them with the builtin engine."""
    from backend.connections import schema_cache
    from backend.connections.models import DatabaseConnection
    from backend.core.db import create_app_engine, create_session_factory
    from backend.nl2sql.engines.builtin import BuiltinGenerator

    engine = create_app_engine(platform.url)
    try:
        with create_session_factory(engine)() as session:
            connection = session.get(DatabaseConnection, platform.connection_id)
            assert connection is not None  # noqa: S101 - made by prepare_platform
            session.expunge(connection)
    finally:
        engine.dispose()
    snapshot = schema_cache.read_snapshot(connection, settings=platform.settings)
    generator = BuiltinGenerator()
    figures: list[float] = []
    for round_number in range(rounds + 1):
        started = time.process_time()
        for question in questions:
            answer_in_process(generator, snapshot, connection, question, platform.settings)
        if round_number:  # the first round is a warm-up
            figures.append((time.process_time() - started) * 1000 / len(questions))
    return figures


def _cpu_summary(values: list[float]) -> dict[str, float]:
    return {"lowest": round(min(values), 3), "median": round(statistics.median(values), 3)}


def serve(args: argparse.Namespace) -> None:
    """Offline asks against the real server in a subprocess, optionally under py-spy."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run_all

    with tempfile.TemporaryDirectory(prefix="nlsql-bench-serve-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'app_data.db'}"
        platform = run_all.prepare_platform(url.split(":", 1)[0], url, Path(tmp))
        headers = bearer_headers(platform.settings, platform.user_id)
        chats = run_all.make_chats(platform, args.clients)
        with run_all.api_server(platform, workers=1, llm_url="http://127.0.0.1:9") as base:
            for question in run_all.QUESTIONS:  # first uses: the schema, the engine's data
                response = run_all.httpx.post(
                    f"{base}/api/v1/chat/sessions/{chats[0]}/ask",
                    json={"question": question},
                    headers=headers,
                    timeout=60,
                )
                response.raise_for_status()
            spy = None
            if args.py_spy:
                out = Path(args.py_spy)
                command = [
                    shutil.which("py-spy") or "py-spy", "record", "--pid",
                    str(run_all.SERVER_PIDS[base]), "--rate", str(args.py_spy_rate),
                    "--output", str(out),
                    "--format", "raw" if out.suffix == ".txt" else "flamegraph",
                ]  # fmt: skip
                # --native: every running thread with its C frames (time in SQLite's C code,
                # which releases the GIL, counts); otherwise only the thread holding the GIL.
                command.append("--native" if args.py_spy_native else "--gil")
                spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
            asks_cpu: list[float] = []
            noop_cpu: list[float] = []
            for _ in range(1 if spy is not None else args.repeat):
                loop = asyncio.run(
                    run_all.closed_loop(
                        base,
                        clients=args.clients,
                        seconds=args.seconds,
                        method="POST",
                        path_for=lambda i: f"/api/v1/chat/sessions/{chats[i]}/ask",
                        body_for=lambda i, n: {
                            "question": run_all.QUESTIONS[(i + n) % len(run_all.QUESTIONS)]
                        },
                        headers=headers,
                    )
                )
                loop.pop("query_ids")
                print(loop)
                asks_cpu.append(loop["server_cpu_ms_per_request"])
                if spy is None and args.repeat > 1:
                    noop = asyncio.run(
                        run_all.closed_loop(
                            base,
                            clients=args.clients,
                            seconds=args.seconds,
                            method="GET",
                            path_for=lambda _i: "/healthz",
                            body_for=lambda _i, _n: None,
                            headers={},
                        )
                    )
                    noop_cpu.append(noop["server_cpu_ms_per_request"])
            if spy is not None:
                spy.send_signal(run_all.signal.SIGINT)
                spy.wait(60)
        if spy is None and args.repeat > 1:
            core = core_cpu_ms(platform, run_all.QUESTIONS, args.repeat)
            ask, noop_summary, core_summary = (
                _cpu_summary(asks_cpu),
                _cpu_summary(noop_cpu),
                _cpu_summary(core),
            )
            report = {
                "clients": args.clients,
                "server_cpu_ms_per_ask": ask,
                "server_cpu_ms_per_noop": noop_summary,
                "in_process_core_cpu_ms": core_summary,
                "ask_cpu_over_core_cpu": round(ask["lowest"] / core_summary["lowest"], 2),
                "ask_cpu_over_noop_cpu": round(ask["lowest"] / noop_summary["lowest"], 2),
            }
            print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="platform DB (default: temp SQLite)")
    parser.add_argument("--serve", action="store_true", help="the real server, closed loops")
    parser.add_argument("--clients", type=int, default=8, help="with --serve")
    parser.add_argument("--seconds", type=float, default=10.0, help="with --serve")
    parser.add_argument("--py-spy", default=None, help="with --serve: record the server")
    parser.add_argument(
        "--py-spy-native",
        action="store_true",
        help="with --py-spy: all running threads with native frames, not only the GIL holder",
    )
    parser.add_argument("--py-spy-rate", type=int, default=250, help="with --py-spy: samples/s")
    parser.add_argument(
        "--repeat", type=int, default=1, help="with --serve: loops each of asks and no-ops"
    )
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return

    builtin = importlib.util.find_spec("backend.nl2sql.engines.builtin") is not None
    generator_name = "builtin" if builtin else FixedGenerator.name
    if not builtin:
        registry.register_generator(FixedGenerator.name, lambda _s: FixedGenerator())
    with tempfile.TemporaryDirectory(prefix="nlsql-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=args.database_url or f"sqlite:///{Path(tmp) / 'app_data.db'}",
            jwt_secret=SecretStr("bench-secret-" + "x" * 40),
            fernet_keys=[SecretStr(Fernet.generate_key().decode())],
            run_migrations_on_start=False,
            _env_file=None,
        )
        upgrade_to_head(str(settings.database_url))
        app = create_app(settings)
        session = app.state.session_factory()
        user = auth_service.create_user(
            session,
            email="bench@example.com",
            password="bench-password-1",  # noqa: S106 - a throwaway local account
            full_name="Bench",
        )
        connection = connections_service.ensure_sqlite_connection(
            session, user_id=user.id, connection_name="demo", path=str(DEMO_DB_PATH)
        )
        chat = chat_service.create_chat_session(
            session, user_id=user.id, title="bench", connection_id=connection.id
        )
        session.commit()
        principal = Principal(user=user, scopes=ROLE_SCOPES[user.role])
        print(f"generator: {generator_name}" + ("" if builtin else " (builtin not installed)"))
        print(f"platform database: {settings.database_url.split('@')[-1]}")

        # Warm-up: the schema snapshot is introspected and cached on the first ask.
        factory = app.state.session_factory
        pipeline.ask(
            factory,
            principal=principal,
            chat_session_id=chat.id,
            question=next(iter(QUESTIONS)),
            settings=settings,
            generator_name=generator_name,
        )

        per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        totals: list[float] = []
        for _ in range(args.rounds):
            for question in QUESTIONS:
                started = time.perf_counter()
                answer = pipeline.ask(
                    factory,
                    principal=principal,
                    chat_session_id=chat.id,
                    question=question,
                    settings=settings,
                    generator_name=generator_name,
                )
                totals.append((time.perf_counter() - started) * 1000)
                for stage, value in answer.timings.as_dict().items():
                    per_stage[stage].append(value)
        _report(
            "in-process, pipeline.ask (its own short sessions, commit included)", per_stage, totals
        )

        headers = bearer_headers(settings, user.id)
        per_stage = {s: [] for s in STAGES}
        totals = []
        with TestClient(app) as client:
            for _ in range(args.rounds):
                for question in QUESTIONS:
                    started = time.perf_counter()
                    response = client.post(
                        f"/api/v1/chat/sessions/{chat.id}/ask",
                        json={"question": question, "generator": generator_name},
                        headers=headers,
                    )
                    totals.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                    # The metrics table holds only this ask's rows: it is emptied after each.
                    app.state.metric_writer.flush()
                    rows = session.execute(
                        select(
                            PerformanceMetric.additional_data, PerformanceMetric.metric_value
                        ).where(PerformanceMetric.metric_name == "ask_stage_duration")
                    ).all()
                    session.rollback()
                    for data, value in rows:
                        stage = (data or {}).get("stage")
                        if stage in per_stage:
                            per_stage[stage].append(value)
                    session.execute(PerformanceMetric.__table__.delete())
                    session.commit()
        _report("over HTTP, POST /chat/sessions/{id}/ask", per_stage, totals)
        session.close()
        app.state.engine.dispose()


if __name__ == "__main__":
    main()
