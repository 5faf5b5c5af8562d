"""Running one job: claim its row, do the work with the same functions as the HTTP calls,
record how it ended. Every queue task (in a worker process or in-process) calls `run_job`.

A job runs at most once: the claim is one `UPDATE ... WHERE status = 'queued'`, so a second
delivery (two workers, a retried queue job whose row already finished) finds nothing to claim
and returns. Each step holds a platform transaction only for its own short reads and writes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth.deps import Principal
from backend.auth.models import ApiKey, User
from backend.auth.scopes import ROLE_SCOPES, Scope
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.errors import AppError, Forbidden, NotFound
from backend.core.logs import log_fields
from backend.jobs.models import BackgroundJob
from backend.jobs.queue import JobRuntime
from backend.observability import recorder
from backend.observability.event_types import EventType

logger = logging.getLogger("nlsql.jobs")

EXPORT_PROGRESS_EVERY_ROWS = 50_000


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


class JobOwnerGone(NotFound):
    code = "job_owner_gone"
    message = "The user or API key that submitted this job is no longer active."


def error_body(exc: BaseException) -> dict[str, Any]:
    """The API's one error shape for a job that failed."""
    if isinstance(exc, AppError):
        return {"code": exc.code, "message": exc.message, "details": dict(exc.details)}
    return {"code": "internal_error", "message": "An unexpected error occurred.", "details": {}}


def job_context(job: BackgroundJob) -> ClientContext:
    """The submitting request's client facts, so a job is recorded like the HTTP call."""
    given = job.params.get("context") or {}
    return ClientContext(
        ip_address=given.get("ip_address"),
        user_agent=given.get("user_agent"),
        request_id=job.request_id,
    )


def job_principal(session: Session, job: BackgroundJob, needs: Scope) -> Principal:
    """The submitter as they are now: an inactive user or a revoked key fails the job, and a
    key never grants more than its owner's role holds today."""
    user = session.get(User, job.user_id) if job.user_id else None
    if user is None or not user.is_active:
        raise JobOwnerGone()
    held = frozenset(Scope(s) for s in job.params.get("scopes", []) if s in set(Scope))
    scopes = held & ROLE_SCOPES.get(user.role, frozenset())
    api_key = None
    if key_id := job.params.get("api_key_id"):
        api_key = session.get(ApiKey, key_id)
        if api_key is None or not api_key.is_active or api_key.revoked_at is not None:
            raise JobOwnerGone()
    if needs not in scopes:
        raise Forbidden("The submitter no longer holds the scope this job needs.")
    allowed = job.params.get("allowed_connection_ids")
    return Principal(
        user=user,
        scopes=scopes,
        api_key=api_key,
        allowed_connection_ids=frozenset(allowed) if allowed is not None else None,
    )


def _claim(runtime: JobRuntime, job_id: str) -> BackgroundJob | None:
    with runtime.session_factory() as session, session.begin():
        claimed = session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job_id, BackgroundJob.status == "queued")
            .values(
                status="running",
                attempts=BackgroundJob.attempts + 1,
                started_at=utcnow(),
                worker=process_name(),
                progress={"stage": "started"},
            )
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return None
        return session.get(BackgroundJob, job_id)


def _finish(
    session: Session,
    job: BackgroundJob,
    *,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    result_file: str | None = None,
    started: float,
    cancelled: bool = False,
) -> None:
    status = "failed" if error is not None else "cancelled" if cancelled else "succeeded"
    session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job.id, BackgroundJob.status == "running")
        .values(
            status=status,
            result=result,
            error=error,
            result_file=result_file,
            finished_at=utcnow(),
            progress={"stage": "done"},
        )
    )
    recorder.event(
        session,
        event_type=EventType.JOB_FINISHED,
        user_id=job.user_id,
        context=job_context(job),
        data={
            "job_id": job.id,
            "kind": job.kind,
            "status": status,
            "attempt": job.attempts,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "error_code": error["code"] if error else None,
        },
    )


def set_progress(runtime: JobRuntime, job_id: str, progress: dict[str, Any]) -> None:
    with runtime.session_factory() as session, session.begin():
        session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job_id, BackgroundJob.status == "running")
            .values(progress=progress)
        )


def _run_ask(runtime: JobRuntime, session: Session, job: BackgroundJob, started: float) -> bool:
    """Run the ask; its outcome (answer or error) is written to the job row in the ask's own
    recording transaction, so a crash can never leave a recorded ask with a job that reads
    `running` (and is then failed as lost). Returns True when that row is finished; raises
    what failed before the ask recorded anything."""
    from backend.chat.router import ask_response
    from backend.nl2sql import pipeline

    principal = job_principal(session, job, Scope.CHAT_WRITE)
    params = job.params
    session.commit()  # nothing of the job's stays open while the ask runs

    def finish_with_the_ask(recording: Session, outcome: pipeline.AskAnswer | Exception) -> None:
        if isinstance(outcome, pipeline.AskAnswer):
            result = ask_response(outcome).model_dump(mode="json")
            _finish(recording, job, result=result, started=started)
        else:
            _finish(recording, job, error=error_body(outcome), started=started)

    try:
        pipeline.ask(
            runtime.session_factory,
            principal=principal,
            chat_session_id=params["chat_session_id"],
            question=params["question"],
            connection_id=params.get("connection_id"),
            generator_name=params.get("generator"),
            settings=runtime.settings,
            context=job_context(job),
            on_recorded=finish_with_the_ask,
        )
    except Exception:
        if not _is_finished(session, job.id):
            raise
        logger.info("job %s finished: failed (recorded with the ask)", job.id)
        return True
    finished = _is_finished(session, job.id)
    if finished:
        logger.info("job %s finished: succeeded (recorded with the ask)", job.id)
    return finished


def _is_finished(session: Session, job_id: str) -> bool:
    status = session.scalar(select(BackgroundJob.status).where(BackgroundJob.id == job_id))
    session.rollback()
    return status != "running"


def _run_export(
    runtime: JobRuntime, session: Session, job: BackgroundJob
) -> tuple[dict[str, Any], str]:
    from backend.nl2sql import export

    principal = job_principal(session, job, Scope.QUERY_SQL)
    session.commit()  # nothing of the job's stays open while the rows are written
    prepared = export.prepare_csv_export(
        runtime.session_factory,
        principal=principal,
        query_id=job.params["query_id"],
        settings=runtime.settings,
        context=job_context(job),
    )
    jobs_dir = runtime.settings.jobs_dir
    assert jobs_dir is not None  # noqa: S101 - set by Settings
    jobs_dir.mkdir(parents=True, exist_ok=True)
    name = f"{job.id}.csv"
    partial = jobs_dir / f"{name}.partial"
    written = 0
    reported = 0
    with partial.open("wb") as handle:
        for chunk in prepared.rows():
            handle.write(chunk)
            written += len(chunk)
            if prepared.rows_sent - reported >= EXPORT_PROGRESS_EVERY_ROWS:
                reported = prepared.rows_sent
                set_progress(runtime, job.id, {"stage": "writing", "rows": reported})
    partial.replace(jobs_dir / name)
    result = {
        "query_id": prepared.query_id,
        "rows": prepared.rows_sent,
        "bytes": written,
        "filename": prepared.filename,
        "max_rows": prepared.max_rows,
        "media_type": "text/csv; charset=utf-8",
    }
    return result, name


def _run_schema_refresh(
    runtime: JobRuntime, session: Session, job: BackgroundJob
) -> dict[str, Any]:
    from backend.connections import service as connections_service

    principal = job_principal(session, job, Scope.CONNECTIONS_WRITE)
    read = connections_service.refresh_schema(
        session,
        owner=principal,
        connection_id=job.params["connection_id"],
        settings=runtime.settings,
        context=job_context(job),
    )
    # The stored snapshot is the one truth: the job keeps which one it stored, and whoever
    # reads the job later gets the view of it their credentials allow (`jobs.service.job_read`).
    return connections_service.refresh_summary(read)


def _run_evaluation(runtime: JobRuntime, session: Session, job: BackgroundJob) -> dict[str, Any]:
    from backend.evaluations import runner
    from backend.evaluations import service as evaluations_service
    from backend.evaluations.models import EvaluationRun

    run_id = job.params["run_id"]
    try:
        principal = job_principal(session, job, Scope.CHAT_WRITE)
    except AppError as exc:
        runner.fail_run(runtime.session_factory, run_id, error_body(exc))
        raise
    session.commit()  # nothing of the job's stays open while the questions run
    runner.run_evaluation(
        runtime.session_factory,
        run_id=run_id,
        principal=principal,
        settings=runtime.settings,
        context=job_context(job),
    )
    run = session.get(EvaluationRun, run_id)
    assert run is not None  # noqa: S101 - deleted only with its connection, which is in use
    session.refresh(run)
    return evaluations_service.run_read(session, run).model_dump(mode="json")


def _run_prune(runtime: JobRuntime, session: Session, job: BackgroundJob) -> dict[str, Any]:
    from backend.admin import service as admin_service

    report = admin_service.prune_expired_data(
        session,
        batch_size=int(job.params.get("batch_size", 5000)),
        after_batch=session.commit,
        context=job_context(job),
    )
    files = prune_result_files(session, runtime.settings.jobs_dir)
    return {**report.model_dump(mode="json"), "job_result_files": files}


def run_job(runtime: JobRuntime, kind: str, job_id: str) -> None:
    """Run the job row `job_id` (a queue task's body). Never raises for the job's own failure:
    that is recorded on the row; the queue sees a task that finished."""
    if kind == "scheduled_prune":
        job_id = create_scheduled_prune(runtime)
    job = _claim(runtime, job_id)
    if job is None:
        logger.info("job %s is not queued any more; nothing to run", job_id)
        return
    started = time.perf_counter()
    with log_fields(job_id=job.id, user_id=job.user_id, request_id=job.request_id):
        logger.info("job %s (%s) started, attempt %d", job.id, job.kind, job.attempts)
        session = runtime.session_factory()
        try:
            result: dict[str, Any] | None = None
            result_file: str | None = None
            error: dict[str, Any] | None = None
            finished = False
            cancelled = False
            try:
                if job.kind == "ask":
                    finished = _run_ask(runtime, session, job, started)
                elif job.kind == "export":
                    result, result_file = _run_export(runtime, session, job)
                elif job.kind == "schema_refresh":
                    result = _run_schema_refresh(runtime, session, job)
                elif job.kind == "prune":
                    result = _run_prune(runtime, session, job)
                elif job.kind == "evaluation":
                    result = _run_evaluation(runtime, session, job)
                    cancelled = result["status"] == "cancelled"
                else:
                    raise ValueError(f"unknown job kind {job.kind!r}")
            except Exception as exc:  # noqa: BLE001 - a failed job is recorded, not raised
                session.rollback()
                error = error_body(exc)
                if isinstance(exc, AppError):
                    logger.info("job %s failed: %s", job.id, exc.code)
                else:
                    logger.exception("job %s failed unexpectedly", job.id)
            if not finished:
                _finish(
                    session,
                    job,
                    result=result,
                    error=error,
                    result_file=result_file,
                    started=started,
                    cancelled=cancelled,
                )
                session.commit()
                logger.info("job %s finished: %s", job.id, "failed" if error else "succeeded")
        finally:
            session.close()


def create_scheduled_prune(runtime: JobRuntime) -> str:
    """A job row for a pruning the schedule started (no owner)."""
    with runtime.session_factory() as session, session.begin():
        job = BackgroundJob(kind="prune", user_id=None, params={}, queue="schedule")
        session.add(job)
        session.flush()
        return job.id


def mark_recovered(runtime: JobRuntime, job_id: str, *, retried: bool) -> None:
    """Update the row of a job whose worker died: back to queued (it will be retried) or
    failed with `worker_lost`."""
    if not job_id:
        return
    with runtime.session_factory() as session, session.begin():
        values: dict[str, Any]
        if retried:
            values = {"status": "queued", "progress": {"stage": "requeued after a lost worker"}}
        else:
            values = {
                "status": "failed",
                "finished_at": utcnow(),
                "progress": {"stage": "done"},
                "error": {
                    "code": "worker_lost",
                    "message": "The worker running this job stopped; submit it again.",
                    "details": {},
                },
            }
        session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == job_id, BackgroundJob.status == "running")
            .values(**values)
        )


def result_path(runtime_jobs_dir: Path | None, job: BackgroundJob) -> Path | None:
    if runtime_jobs_dir is None or not job.result_file:
        return None
    path = runtime_jobs_dir / job.result_file
    return path if path.is_file() else None


def prune_result_files(
    session: Session, jobs_dir: Path | None, *, now: datetime | None = None
) -> int:
    """Delete the result files (exports) of jobs that finished before the retention
    (`retention.job_results_days`), and files in the jobs directory that no job row names
    (a worker that died mid-export leaves a `.partial`) once they are that old. The rows stay
    as they are: fetching such a result answers 404 "The result file of this job is gone".
    Returns how many files were deleted."""
    if jobs_dir is None or not jobs_dir.is_dir():
        return 0
    now = now or utcnow()
    before = now - timedelta(days=int(get_config_value(session, "retention.job_results_days")))
    expired = session.scalars(
        select(BackgroundJob.result_file).where(
            BackgroundJob.result_file.is_not(None), BackgroundJob.finished_at < before
        )
    ).all()
    deleted = 0
    for name in expired:
        path = jobs_dir / str(name)
        if path.parent == jobs_dir and path.is_file():
            path.unlink(missing_ok=True)
            deleted += 1
    named = set(
        session.scalars(
            select(BackgroundJob.result_file).where(BackgroundJob.result_file.is_not(None))
        )
    )
    for path in jobs_dir.iterdir():
        if path.name in named or not path.is_file():
            continue
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
