"""Submitting, reading and cancelling jobs; the queue's process-level wiring."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime
from typing import Any

import procrastinate
from anyio.from_thread import run as run_in_loop
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.auth.scopes import Scope
from backend.chat import service as chat_service
from backend.connections import service as connections_service
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.errors import AppError, Conflict, Forbidden, NotFound, ServiceUnavailable
from backend.core.pagination import keyset_page
from backend.evaluations import service as evaluations_service
from backend.evaluations.schemas import EvaluationCreate
from backend.jobs import queue
from backend.jobs.models import FINISHED_STATUSES, BackgroundJob
from backend.jobs.queue import JobRuntime
from backend.jobs.run import process_name
from backend.jobs.schemas import (
    AskJobCreate,
    EvaluationJobCreate,
    ExportJobCreate,
    JobRead,
    PruneJobCreate,
    SchemaRefreshJobCreate,
)
from backend.nl2sql.errors import QueryNotFound
from backend.observability import recorder
from backend.observability.event_types import EventType
from backend.observability.models import QueryAnalytics

logger = logging.getLogger("nlsql.jobs")

JOBS_PATH = "/api/v1/jobs"
_NEEDS = {
    "ask": Scope.CHAT_WRITE,
    "export": Scope.QUERY_SQL,
    "schema_refresh": Scope.CONNECTIONS_WRITE,
    "prune": Scope.ADMIN,
    "evaluation": Scope.CHAT_WRITE,
}


class JobNotFound(NotFound):
    code = "job_not_found"
    message = "No job with that id."


class JobNotFinished(Conflict):
    code = "job_not_finished"
    message = "The job has no result yet."


class JobNotCancellable(Conflict):
    code = "job_not_cancellable"
    message = "Only a job that has not started can be cancelled."


JobBody = (
    AskJobCreate | ExportJobCreate | SchemaRefreshJobCreate | PruneJobCreate | EvaluationJobCreate
)


def _check(session: Session, principal: Principal, data: JobBody) -> dict[str, Any]:
    """What the HTTP call would check before it starts; the job's parameters."""
    needs = _NEEDS[data.kind]
    if needs not in principal.scopes:
        raise Forbidden(
            "Your credentials lack the scope this needs.", details={"missing_scopes": [needs]}
        )
    if isinstance(data, AskJobCreate):
        chat = chat_service.get_chat_session(
            session, user_id=principal.user.id, session_id=data.chat_session_id
        )
        chosen = data.connection_id or chat.connection_id
        if chosen is not None:
            connections_service.get_connection(session, principal, chosen)
        return data.model_dump(exclude={"kind"})
    if isinstance(data, ExportJobCreate):
        owned = session.scalar(
            select(QueryAnalytics.query_id).where(
                QueryAnalytics.query_id == data.query_id,
                QueryAnalytics.user_id == principal.user.id,
            )
        )
        if owned is None:
            raise QueryNotFound(details={"query_id": data.query_id})
        return data.model_dump(exclude={"kind"})
    if isinstance(data, SchemaRefreshJobCreate):
        connections_service.get_connection(session, principal, data.connection_id)
        return data.model_dump(exclude={"kind"})
    if isinstance(data, EvaluationJobCreate):
        return evaluations_service.plan_run(
            session,
            principal,
            connection_id=data.connection_id,
            data=EvaluationCreate.model_validate(
                data.model_dump(exclude={"kind", "connection_id"})
            ),
        )
    return data.model_dump(exclude={"kind"})


def create_job(
    session: Session,
    *,
    principal: Principal,
    data: JobBody,
    context: ClientContext,
    in_memory: bool,
) -> BackgroundJob:
    """Check and store a queued job (flushed, not committed; the caller commits, then defers)."""
    params = _check(session, principal, data)
    params["scopes"] = sorted(s.value for s in principal.scopes)
    params["api_key_id"] = principal.api_key.id if principal.api_key is not None else None
    params["allowed_connection_ids"] = (
        sorted(principal.allowed_connection_ids)
        if principal.allowed_connection_ids is not None
        else None
    )
    params["context"] = {"ip_address": context.ip_address, "user_agent": context.user_agent}
    job = BackgroundJob(
        user_id=principal.user.id,
        kind=data.kind,
        params=params,
        queue="memory" if in_memory else "postgres",
        worker=process_name() if in_memory else None,
        request_id=context.request_id,
    )
    session.add(job)
    session.flush()
    if isinstance(data, EvaluationJobCreate):
        evaluations_service.create_run(
            session, principal=principal, params=params, job_id=job.id, context=context
        )
    recorder.event(
        session,
        event_type=EventType.JOB_SUBMITTED,
        user_id=principal.user.id,
        context=context,
        user_session_id=principal.user_session_id,
        data={"job_id": job.id, "kind": job.kind},
    )
    return job


def submit_job(
    session: Session,
    queue_app: procrastinate.App,
    *,
    principal: Principal,
    data: JobBody,
    context: ClientContext,
) -> BackgroundJob:
    """Check, store and queue a job (from a request's worker thread); 503 when the queue is not
    reachable (the job row is then marked failed)."""
    job = create_job(
        session,
        principal=principal,
        data=data,
        context=context,
        in_memory=queue.is_in_memory(queue_app),
    )
    # Committed before it is queued, so the worker always finds the row it is handed.
    session.commit()
    try:
        queue_job_id = run_in_loop(queue.defer, queue_app, job.kind, job.id)
    except Exception as exc:
        logger.exception("could not queue job %s", job.id)
        fail_unqueued(session, job.id, "The job queue is not reachable.")
        session.commit()
        raise ServiceUnavailable(
            "The job queue is not reachable; try again.", details={"job_id": job.id}
        ) from exc
    set_queue_job_id(session, job.id, queue_job_id)
    return job


def set_queue_job_id(session: Session, job_id: str, queue_job_id: int) -> None:
    session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id)
        .values(queue_job_id=queue_job_id)
        .execution_options(synchronize_session=False)
    )


def fail_unqueued(session: Session, job_id: str, reason: str) -> None:
    session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job_id, BackgroundJob.status == "queued")
        .values(
            status="failed",
            finished_at=utcnow(),
            error={"code": "queue_unavailable", "message": reason, "details": {}},
        )
        .execution_options(synchronize_session=False)
    )


def get_job(session: Session, *, principal: Principal, job_id: str) -> BackgroundJob:
    """The caller's job; `JobNotFound` (404) for an unknown id and another user's job alike."""
    job = session.get(BackgroundJob, job_id)
    if job is None or job.user_id != principal.user.id:
        raise JobNotFound(details={"job_id": job_id})
    return job


def list_jobs(
    session: Session, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[BackgroundJob], str | None]:
    return keyset_page(
        session,
        select(BackgroundJob).where(BackgroundJob.user_id == principal.user.id),
        keys=[BackgroundJob.created_at, BackgroundJob.id],
        kinds=[datetime, str],
        key_of=lambda j: (j.created_at, j.id),
        limit=limit,
        cursor=cursor,
    )


def cancel_job(session: Session, *, principal: Principal, job_id: str) -> BackgroundJob:
    """Cancel a queued job (a worker that later picks it up finds nothing to claim)."""
    job = get_job(session, principal=principal, job_id=job_id)
    cancelled = session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == job.id, BackgroundJob.status == "queued")
        .values(status="cancelled", finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not cancelled:
        session.refresh(job)
        raise JobNotCancellable(details={"status": job.status})
    session.refresh(job)
    return job


def _result_for(
    session: Session, principal: Principal, job: BackgroundJob
) -> dict[str, Any] | None:
    """The job's result as `principal` may read it. A schema refresh keeps only which snapshot
    it stored; its answer is derived from the stored snapshot now, as `POST
    /connections/{id}/refresh-schema` answers it (hidden items marked for whoever manages the
    semantic layer, left out for anyone else). A connection that is gone or out of the caller's
    reach leaves the stored summary."""
    result = job.result
    if job.kind != "schema_refresh" or job.status != "succeeded" or not result:
        return result
    connection_id = result.get("connection_id")
    if not isinstance(connection_id, str):
        return result
    try:
        read = connections_service.stored_schema(
            session, owner=principal, connection_id=connection_id
        )
    except AppError:
        return result
    return result if read is None else read.model_dump(mode="json")


def job_read(session: Session, principal: Principal, job: BackgroundJob) -> JobRead:
    result_url = (
        f"{JOBS_PATH}/{job.id}/result"
        if job.status == "succeeded" and job.result_file is not None
        else None
    )
    return JobRead(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=job.progress,
        result=_result_for(session, principal, job),
        error=job.error,
        attempts=job.attempts,
        result_url=result_url,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def ensure_finished(job: BackgroundJob) -> None:
    if job.status != "succeeded":
        raise JobNotFinished(
            "The job has no result: it has not finished or it failed.",
            details={"status": job.status, "finished": job.status in FINISHED_STATUSES},
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphaned_memory_jobs(runtime: JobRuntime) -> int:
    """Jobs queued in memory by a process of this host that is gone can never run: mark them
    failed (`job_interrupted`) so nobody waits for them forever. Returns how many."""
    host = socket.gethostname()
    failed = 0
    with runtime.session_factory() as session, session.begin():
        rows = session.execute(
            select(BackgroundJob.id, BackgroundJob.worker).where(
                BackgroundJob.queue == "memory",
                BackgroundJob.status.in_(("queued", "running")),
            )
        ).all()
        for job_id, worker in rows:
            owner_host, _, pid = str(worker or "").rpartition(":")
            if owner_host != host or not pid.isdigit() or _pid_alive(int(pid)):
                continue
            failed += session.execute(
                update(BackgroundJob)
                .where(BackgroundJob.id == job_id, BackgroundJob.status.in_(("queued", "running")))
                .values(
                    status="failed",
                    finished_at=utcnow(),
                    error={
                        "code": "job_interrupted",
                        "message": "The process that queued this job stopped before it "
                        "finished; submit it again.",
                        "details": {},
                    },
                )
            ).rowcount  # type: ignore[attr-defined]
    if failed:
        logger.warning("marked %d in-memory jobs of stopped processes failed", failed)
    return failed


def on_recovered(runtime: JobRuntime) -> queue.StalledHandler:
    from backend.jobs.run import mark_recovered

    def handle(kind: str, job_id: str, retried: bool) -> None:
        mark_recovered(runtime, job_id, retried=retried)

    return handle


def build_app_for(runtime: JobRuntime) -> procrastinate.App:
    from backend.jobs.run import run_job

    return queue.build_queue_app(runtime.settings, run_job)
