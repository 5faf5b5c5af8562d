"""`nlsql serve`: one uvicorn process, or gunicorn with N uvicorn workers.

Several workers run under gunicorn (`uvicorn_worker.UvicornWorker`): gunicorn binds the socket
with TCP_NODELAY (stock `uvicorn --workers` leaves it off on the inherited socket, which adds
~40 ms to every keep-alive response), restarts a worker that dies, and forwards SIGTERM for a
graceful stop. Migrations run once here, before any worker starts (never raced by N
workers), and only on the embedded default; production mode refuses to start unless the
database is already at the head revision (`nlsql migrate` is its own deployment step).
Prometheus output of all workers is aggregated through `PROMETHEUS_MULTIPROC_DIR`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from backend.core.config import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_database(settings: Settings) -> None:
    """Migrate (embedded default) or check the head revision (production) once, before any
    worker starts; the workers then skip it. Raises `DatabaseNotAtHead` in production."""
    from backend.core.db import create_app_engine
    from backend.core.migrations import ensure_at_head, upgrade_to_head

    if settings.run_migrations_on_start:
        upgrade_to_head(str(settings.database_url))
        settings.run_migrations_on_start = False
    elif settings.production:
        engine = create_app_engine(str(settings.database_url))
        try:
            ensure_at_head(engine)
        finally:
            engine.dispose()


def serve_one(settings: Settings, host: str, port: int, log_config: dict[str, Any]) -> None:
    import uvicorn

    from backend.main import create_app

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=log_config,
        proxy_headers=settings.trusted_proxy_count > 0,
        forwarded_allow_ips="*" if settings.trusted_proxy_count > 0 else None,
    )


def fresh_multiproc_dir() -> Path:
    """The directory where every worker writes its Prometheus samples, emptied for this run."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        if path.exists():
            for child in path.iterdir():
                if child.suffix == ".db":
                    child.unlink()
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="nlsql-prometheus-"))
        os.environ[MULTIPROC_ENV] = str(path)
    return path


def serve_many(
    settings: Settings, host: str, port: int, workers: int, log_config: dict[str, Any]
) -> None:
    from gunicorn.app.base import BaseApplication

    owned_dir = MULTIPROC_ENV not in os.environ
    multiproc_dir = fresh_multiproc_dir()

    def child_exit(_server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "logconfig_dict": log_config,
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "child_exit": child_exit,
        "forwarded_allow_ips": "*" if settings.trusted_proxy_count > 0 else "127.0.0.1",
        "proc_name": "nlsql",
    }

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from backend.main import create_app

            return create_app(settings)

    try:
        Application().run()
    finally:
        if owned_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)
