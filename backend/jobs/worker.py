"""Running the queue: inside the API process (embedded default) or as `nlsql worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import procrastinate
from sqlalchemy.exc import SQLAlchemyError

from backend.core.config import Settings
from backend.jobs import queue
from backend.jobs.queue import JobRuntime
from backend.jobs.run import process_name
from backend.jobs.service import build_app_for, fail_orphaned_memory_jobs, on_recovered

logger = logging.getLogger("nlsql.jobs")


def runs_in_process(settings: Settings) -> bool:
    """On SQLite the in-memory queue has no other worker than the API process itself."""
    return bool(settings.jobs_in_process or settings.is_sqlite)


@contextlib.asynccontextmanager
async def run_jobs(queue_app: procrastinate.App, runtime: JobRuntime) -> AsyncIterator[None]:
    """Open the queue for the API's lifetime; run a worker in it when jobs run in-process."""
    settings = runtime.settings
    await queue_app.open_async()
    tasks: list[asyncio.Task[None]] = []
    try:
        if runs_in_process(settings):
            if queue.is_in_memory(queue_app):
                try:
                    await asyncio.to_thread(fail_orphaned_memory_jobs, runtime)
                except SQLAlchemyError:  # not migrated yet: /readyz says so
                    logger.warning("could not check for interrupted jobs", exc_info=True)
            else:
                tasks.append(
                    asyncio.create_task(
                        queue.recovery_loop(queue_app, settings, on_recovered(runtime))
                    )
                )
            options = queue.worker_options(settings, runtime, name=f"api {process_name()}")
            tasks.append(asyncio.create_task(queue_app.run_worker_async(**options)))
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await queue_app.close_async()
        except (RuntimeError, ValueError):
            # A pool first used from another event loop (test harnesses that serve requests
            # on loops of their own) cannot be awaited from this one; the process is ending.
            logger.warning("the job queue's connections were not closed cleanly", exc_info=True)


async def _work(settings: Settings, runtime: JobRuntime) -> None:
    queue_app = build_app_for(runtime)
    async with queue_app.open_async():
        recovered = await queue.recover_stalled_jobs(queue_app, settings, on_recovered(runtime))
        if recovered:
            logger.warning("recovered %d jobs of stalled workers at start", recovered)
        recovery = asyncio.create_task(
            queue.recovery_loop(queue_app, settings, on_recovered(runtime))
        )
        options = queue.worker_options(settings, runtime, name=f"worker {process_name()}")
        options["install_signal_handlers"] = True
        try:
            await queue_app.run_worker_async(**options)
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery


def run_worker(settings: Settings) -> None:
    """`nlsql worker`: run queued jobs until SIGTERM/SIGINT (finishing the running ones)."""
    from backend.core.db import create_app_engine, create_session_factory

    engine = create_app_engine(str(settings.database_url))
    runtime = JobRuntime(settings, engine, create_session_factory(engine))
    logger.info("job worker %s started (concurrency %d)", process_name(), settings.jobs_concurrency)
    try:
        asyncio.run(_work(settings, runtime))
    finally:
        engine.dispose()
