"""The job queue: procrastinate, on the platform's PostgreSQL or in memory inside the API.

Production (PostgreSQL): jobs are rows in procrastinate's tables (schema `procrastinate`,
created by the Alembic revision that created `background_jobs`); `nlsql worker` processes on
any host fetch them (`SELECT ... FOR UPDATE SKIP LOCKED`, so two workers never take one job),
send heartbeats, and recover the jobs of workers that died. The embedded default (SQLite)
uses procrastinate's in-memory connector and runs a worker inside the API process: the same
task functions, no extra service, but queued jobs live only as long as that process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import procrastinate
from procrastinate.schema import SchemaManager
from procrastinate.testing import InMemoryConnector
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import Settings
from backend.jobs.models import JOB_KINDS

logger = logging.getLogger("nlsql.jobs")

QUEUE_SCHEMA = "procrastinate"
"""The PostgreSQL schema that holds procrastinate's tables, functions and types."""
QUEUE_NAME = "nlsql"
RETRY_SAFE_KINDS = frozenset({"export", "schema_refresh", "prune"})
"""Kinds whose work can run again after a worker died mid-job; an ask is not (it may have
recorded its answer and spent LLM tokens), so a lost ask is marked failed instead; so is an
evaluation (its outcomes so far are stored, and it spent tokens)."""


def queue_schema_sql() -> str:
    """procrastinate's schema (tables, types, functions) of the installed release."""
    return str(SchemaManager.get_schema())


@dataclass(slots=True)
class JobRuntime:
    """What a task needs to run: the settings and the platform database of its process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


TaskRunner = Callable[[JobRuntime, str, str], None]
"""`run(runtime, kind, job_id)`: the one function every task calls (see `backend.jobs.run`)."""


def build_queue_app(settings: Settings, runner: TaskRunner) -> procrastinate.App:
    """A procrastinate app for this process: PostgreSQL when the platform database is
    PostgreSQL and jobs are not run in-process, else in memory."""
    connector: Any
    if settings.is_sqlite or settings.jobs_in_process:
        connector = InMemoryConnector()
    else:
        connector = procrastinate.PsycopgConnector(
            conninfo=_libpq_url(str(settings.database_url)),
            min_size=1,
            max_size=4,
            kwargs={"options": f"-c search_path={QUEUE_SCHEMA}"},
        )
    app = procrastinate.App(connector=connector)

    def task_for(kind: str) -> None:
        @app.task(name=f"nlsql.{kind}", queue=QUEUE_NAME, pass_context=True)
        def _run(context: procrastinate.JobContext, job_id: str) -> None:
            runner(context.additional_context["runtime"], kind, job_id)

    for kind in JOB_KINDS:
        task_for(kind)

    if settings.prune_cron.strip():

        @app.periodic(cron=settings.prune_cron, periodic_id="retention")
        @app.task(name="nlsql.scheduled_prune", queue=QUEUE_NAME, pass_context=True)
        def _scheduled_prune(context: procrastinate.JobContext, timestamp: int) -> None:
            runner(context.additional_context["runtime"], "scheduled_prune", "")

        @app.periodic(cron=settings.prune_cron, periodic_id="queue_cleanup")
        @app.task(name="nlsql.remove_old_jobs", queue=QUEUE_NAME, pass_context=True)
        async def _remove_old_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
            await remove_old_jobs(context.app, settings)

    return app


async def remove_old_jobs(app: procrastinate.App, settings: Settings) -> None:
    """Delete the queue's jobs that finished more than `jobs_queue_keep_hours` ago, whatever
    their outcome (procrastinate's `remove_old_jobs`, which nothing scheduled before; workers
    already delete succeeded jobs at once)."""
    await app.job_manager.delete_old_jobs(
        nb_hours=settings.jobs_queue_keep_hours,
        queue=QUEUE_NAME,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )


def is_in_memory(app: procrastinate.App) -> bool:
    return isinstance(app.connector, InMemoryConnector)


async def defer(app: procrastinate.App, kind: str, job_id: str) -> int:
    """Queue the task of `kind` for the job row `job_id`; returns procrastinate's job id."""
    task = app.tasks[f"nlsql.{kind}"]
    return int(await task.defer_async(job_id=job_id))


async def cancel(app: procrastinate.App, queue_job_id: int) -> bool:
    """Cancel a job that no worker took yet (best effort: the row's status decides)."""
    return bool(await app.job_manager.cancel_job_by_id_async(queue_job_id))


def worker_options(settings: Settings, runtime: JobRuntime, *, name: str) -> dict[str, Any]:
    return {
        "queues": [QUEUE_NAME],
        "name": name,
        "concurrency": settings.jobs_concurrency,
        "install_signal_handlers": False,
        "update_heartbeat_interval": settings.jobs_heartbeat_seconds,
        "stalled_worker_timeout": settings.jobs_stalled_seconds,
        "additional_context": {"runtime": runtime},
        "delete_jobs": "successful",
        "fetch_job_polling_interval": 1.0,
    }


StalledHandler = Callable[[str, str, bool], None]
"""`handle(kind, job_id, retried)`: update the job row of a recovered queue job."""


async def recover_stalled_jobs(
    app: procrastinate.App, settings: Settings, on_recovered: StalledHandler
) -> int:
    """Jobs whose worker stopped sending heartbeats: retry the retry-safe ones, fail the rest.

    Returns how many were recovered. Safe to run from every worker at once: procrastinate's
    retry and finish only act on a job still in `doing`.
    """
    stalled = await app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=settings.jobs_stalled_seconds
    )
    recovered = 0
    for job in stalled:
        kind = job.task_name.removeprefix("nlsql.")
        job_id = str(job.task_kwargs.get("job_id", ""))
        retry = kind in RETRY_SAFE_KINDS or kind in ("scheduled_prune", "remove_old_jobs")
        assert job.id is not None  # noqa: S101 - jobs read from the database have ids
        if retry:
            on_recovered(kind, job_id, True)
            await app.job_manager.retry_job(job)
        else:
            on_recovered(kind, job_id, False)
            await app.job_manager.finish_job_by_id_async(
                job.id, status=procrastinate.jobs.Status.FAILED, delete_job=False
            )
        logger.warning(
            "recovered job %s (%s) of a stalled worker: %s",
            job_id or job.id,
            kind,
            "retried" if retry else "marked failed",
        )
        recovered += 1
    return recovered


async def recovery_loop(
    app: procrastinate.App, settings: Settings, on_recovered: StalledHandler
) -> None:
    """Recover stalled jobs every `jobs_stalled_seconds` until cancelled."""
    while True:
        try:
            await recover_stalled_jobs(app, settings, on_recovered)
        except Exception:  # the loop must outlive a failed round (database restarting)
            logger.exception("could not recover stalled jobs")
        await asyncio.sleep(settings.jobs_stalled_seconds)
