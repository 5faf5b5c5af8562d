"""Background jobs: submit (202 with a job id), poll, fetch the result, cancel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.deps import CurrentPrincipal, Principal
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import error_responses
from backend.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorParam
from backend.core.schemas import SSE_EVENT_SCHEMA, Page
from backend.jobs import service
from backend.jobs.models import FINISHED_STATUSES, BackgroundJob
from backend.jobs.run import result_path
from backend.jobs.schemas import JobCreate, JobRead

logger = logging.getLogger("nlsql.jobs")

router = APIRouter(prefix="/jobs", tags=["jobs"])

FOLLOW_POLL_SECONDS = 0.25


@router.post(
    "",
    status_code=202,
    summary="Submit a job: an ask, an export, a schema refresh or a pruning",
    responses=error_responses(401, 403, 404, 422, 503),
)
def submit_job(
    data: Annotated[JobCreate, Body()],
    request: Request,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    context: ClientContextDep,
) -> JobRead:
    """Checks the request as the direct call would (scope, ownership of the session, connection or
    query), stores the job and queues it; answers 202 at once with the job (`status: queued`) and
    its URL in `Location`. Poll `GET /jobs/{id}` until `status` is `succeeded` or `failed`. The job
    runs in a worker process (`nlsql worker`) in production, inside the API process on the
    embedded default, and is recorded like the direct call (analytics, audit, events).
    """
    job = service.submit_job(
        session, request.app.state.queue, principal=principal, data=data, context=context
    )
    response.headers["Location"] = f"{service.JOBS_PATH}/{job.id}"
    return service.job_read(session, principal, job)


@router.get("", summary="Your jobs, newest first", responses=error_responses(400, 401))
def list_jobs(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[JobRead]:
    """Page with `limit` and the `next_cursor` of the previous page."""
    jobs, next_cursor = service.list_jobs(session, principal=principal, limit=limit, cursor=cursor)
    return Page(
        items=[service.job_read(session, principal, j) for j in jobs], next_cursor=next_cursor
    )


@router.get(
    "/{job_id}", summary="A job's status, progress and result", responses=error_responses(401, 404)
)
def get_job(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> JobRead:
    """The job's `status` (queued, running, succeeded, failed, cancelled), its `progress`, and once
    it ended its `result` (an ask's answer, a schema, a pruning report, an export's summary) or its
    `error` in the API's one error shape. Another user's job is 404.
    """
    return service.job_read(
        session, principal, service.get_job(session, principal=principal, job_id=job_id)
    )


@router.get(
    "/{job_id}/result",
    summary="A finished job's result (an export's CSV file)",
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": True,
                        "examples": [{"query_id": "…", "sql": "SELECT …", "rows": [["…"]]}],
                    }
                },
            },
            "description": "The CSV file of an export; the result object of other jobs.",
        },
        **error_responses(401, 404, 409),
    },
)
def get_job_result(
    job_id: str, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """An export's CSV file as a download; for other kinds the same `result` object as the job.
    409 while the job has not succeeded.
    """
    job = service.get_job(session, principal=principal, job_id=job_id)
    service.ensure_finished(job)
    if job.result_file is not None:
        path = result_path(request.app.state.settings.jobs_dir, job)
        if path is None:
            raise service.JobNotFound(
                "The result file of this job is gone.", details={"job_id": job_id}
            )
        filename = (job.result or {}).get("filename") or f"job-{job.id}.csv"
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=filename)
    return JSONResponse(service.job_read(session, principal, job).result or {})


def _read_job(session_factory: sessionmaker[Session], principal: Principal, job_id: str) -> JobRead:
    with session_factory() as db:
        job = db.get(BackgroundJob, job_id)
        assert job is not None  # noqa: S101 - rows are deleted only with their owner
        return service.job_read(db, principal, job)


@router.get(
    "/{job_id}/events",
    summary="Follow a job over Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            "description": "`event: job` with the job (as `GET /jobs/{id}`) whenever its status or "
            "progress changes, then `event: done` once it finished.",
        },
        **error_responses(401, 404),
    },
)
def follow_job(
    job_id: str, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> StreamingResponse:
    """Server-Sent Events instead of polling: an `event: job` (data: the job, as `GET /jobs/{id}`
    answers it) at once and on every change of status or progress, then `event: done` when the job
    succeeded, failed or was cancelled. Closing the stream does not cancel the job.
    """
    service.get_job(session, principal=principal, job_id=job_id)
    factory: sessionmaker[Session] = request.app.state.session_factory

    async def events() -> AsyncIterator[str]:
        last = ""
        while True:
            read = await anyio.to_thread.run_sync(_read_job, factory, principal, job_id)
            payload = read.model_dump_json()
            if payload != last:
                last = payload
                yield f"event: job\ndata: {payload}\n\n"
            if read.status in FINISHED_STATUSES:
                yield "event: done\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await anyio.sleep(FOLLOW_POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete(
    "/{job_id}",
    summary="Cancel a job that has not started",
    responses=error_responses(401, 404, 409),
)
def cancel_job(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> JobRead:
    """A queued job becomes `cancelled` and never runs; a running or finished one answers 409."""
    return service.job_read(
        session, principal, service.cancel_job(session, principal=principal, job_id=job_id)
    )
