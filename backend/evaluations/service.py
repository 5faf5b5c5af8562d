"""Evaluation runs: planning one (checked like the HTTP call), reading, listing, comparing,
cancelling. The run itself is `backend.evaluations.runner`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.deps import Principal, ensure_scopes
from backend.auth.scopes import Scope
from backend.connections.models import DatabaseConnection
from backend.core.context import ClientContext
from backend.core.db import new_uuid, utcnow
from backend.core.pagination import keyset_page
from backend.evaluations import golden
from backend.evaluations.errors import (
    EvaluationNotCancellable,
    EvaluationRunNotFound,
    GoldenSetEmpty,
)
from backend.evaluations.models import (
    FINISHED_RUN_STATUSES,
    EvaluationResult,
    EvaluationRun,
)
from backend.evaluations.schemas import (
    EvaluationComparison,
    EvaluationCreate,
    EvaluationRead,
    EvaluationResultRead,
    QuestionChange,
)
from backend.jobs.models import FINISHED_STATUSES, BackgroundJob
from backend.nl2sql.engines import registry
from backend.nl2sql.errors import UnknownGenerator
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.semantic import service as semantic_service


def plan_run(
    session: Session, principal: Principal, *, connection_id: str, data: EvaluationCreate
) -> dict[str, Any]:
    """Check an evaluation as its HTTP call would (scopes, the connection, the generator, the
    golden questions); the job's parameters, with the id its run will get."""
    ensure_scopes(principal, Scope.CONNECTIONS_READ, Scope.CHAT_WRITE)
    connection = golden.get_connection(session, principal, connection_id)
    if data.generator not in registry.generator_names():
        raise UnknownGenerator(
            details={"generator": data.generator, "available": registry.generator_names()}
        )
    version = data.semantic_layer_version
    if version is not None:
        # 404 now rather than a run that fails later.
        semantic_service.get_version(session, connection, version)
    else:
        # The definitions in force now, named by their version: runs compared later say which
        # definitions each used, and a layer changed before the job starts does not change it.
        version = semantic_service.current_version_number(session, connection.id)
    rows = golden.golden_questions(session, connection_id=connection.id, ids=data.golden_ids)
    if not rows:
        raise GoldenSetEmpty(details={"connection_id": connection.id})
    return {
        "run_id": new_uuid(),
        "connection_id": connection.id,
        "generator": data.generator,
        "model": data.model,
        "semantic_layer_version": version,
        "golden_ids": [row.id for row in rows],
    }


def create_run(
    session: Session,
    *,
    principal: Principal,
    params: dict[str, Any],
    job_id: str | None,
    context: ClientContext | None,
) -> EvaluationRun:
    """Store a queued run (flushed, not committed) and record that it started."""
    run = EvaluationRun(
        id=params["run_id"],
        connection_id=params["connection_id"],
        user_id=principal.user.id,
        job_id=job_id,
        generator=params["generator"],
        model=params.get("model"),
        semantic_layer_version=params.get("semantic_layer_version"),
        golden_ids=list(params["golden_ids"]),
        total_count=len(params["golden_ids"]),
        status="queued",
    )
    session.add(run)
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.EVALUATION_STARTED,
        user_id=principal.user.id,
        context=context,
        resource_type="evaluation_run",
        resource_id=run.id,
        new_values={
            "connection_id": run.connection_id,
            "generator": run.generator,
            "model": run.model,
            "semantic_layer_version": run.semantic_layer_version,
            "questions": run.total_count,
            "job_id": job_id,
        },
    )
    recorder.event(
        session,
        event_type=EventType.EVALUATION_STARTED,
        user_id=principal.user.id,
        context=context,
        user_session_id=principal.user_session_id,
        data={
            "run_id": run.id,
            "connection_id": run.connection_id,
            "generator": run.generator,
            "questions": run.total_count,
        },
    )
    return run


def get_run(session: Session, *, connection: DatabaseConnection, run_id: str) -> EvaluationRun:
    run = session.get(EvaluationRun, run_id)
    if run is None or run.connection_id != connection.id:
        raise EvaluationRunNotFound(details={"run_id": run_id})
    return run


def list_runs(
    session: Session, *, connection: DatabaseConnection, limit: int, cursor: str | None
) -> tuple[list[EvaluationRun], str | None]:
    return keyset_page(
        session,
        select(EvaluationRun).where(EvaluationRun.connection_id == connection.id),
        keys=[EvaluationRun.created_at, EvaluationRun.id],
        kinds=[datetime, str],
        key_of=lambda r: (r.created_at, r.id),
        limit=limit,
        cursor=cursor,
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def run_read(session: Session, run: EvaluationRun) -> EvaluationRead:
    """The run with its summary. A run whose job ended without it (a worker lost, the job
    cancelled before it started, the queue unreachable) reads as that job ended."""
    status, error = run.status, run.error
    if status not in FINISHED_RUN_STATUSES and run.job_id is not None:
        job = session.get(BackgroundJob, run.job_id)
        if job is not None and job.status in FINISHED_STATUSES:
            status = "failed" if job.status == "succeeded" else job.status
            error = job.error or error
    answered = run.right_count + run.wrong_count
    return EvaluationRead(
        id=run.id,
        connection_id=run.connection_id,
        job_id=run.job_id,
        status=status,
        generator=run.generator,
        used_generator=run.used_generator,
        model=run.model,
        semantic_layer_version=run.semantic_layer_version,
        total=run.total_count,
        done=run.done_count,
        right=run.right_count,
        wrong=run.wrong_count,
        declined=run.declined_count,
        errors=run.error_count,
        answered=answered,
        ex=_share(run.right_count, run.done_count),
        precision=_share(run.right_count, answered),
        answered_share=_share(answered, run.done_count),
        p50_ms=run.p50_ms,
        p95_ms=run.p95_ms,
        error=error,
        cancel_requested=run.cancel_requested,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def list_results(
    session: Session, *, run: EvaluationRun, limit: int, cursor: str | None
) -> tuple[list[EvaluationResult], str | None]:
    return keyset_page(
        session,
        select(EvaluationResult).where(EvaluationResult.run_id == run.id),
        keys=[EvaluationResult.position],
        kinds=[int],
        key_of=lambda r: (r.position,),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


def result_read(row: EvaluationResult) -> EvaluationResultRead:
    return EvaluationResultRead.model_validate(row)


def _delta(head: float | None, base: float | None) -> float | None:
    return None if head is None or base is None else round(head - base, 4)


def compare_runs(
    session: Session, *, connection: DatabaseConnection, base_id: str, head_id: str
) -> EvaluationComparison:
    """Per golden question (by id), what head got right that base did not, and the reverse."""
    base_run = get_run(session, connection=connection, run_id=base_id)
    head_run = get_run(session, connection=connection, run_id=head_id)

    def outcomes(run: EvaluationRun) -> dict[str, EvaluationResult]:
        rows = session.scalars(
            select(EvaluationResult)
            .where(EvaluationResult.run_id == run.id)
            .order_by(EvaluationResult.position)
        )
        return {row.golden_id: row for row in rows}

    base_rows, head_rows = outcomes(base_run), outcomes(head_run)
    better: list[QuestionChange] = []
    worse: list[QuestionChange] = []
    for golden_id, head_row in head_rows.items():
        base_row = base_rows.get(golden_id)
        if base_row is None or (base_row.outcome == "right") == (head_row.outcome == "right"):
            continue
        change = QuestionChange(
            golden_id=golden_id,
            question=head_row.question,
            base=base_row.outcome,
            head=head_row.outcome,
        )
        (better if head_row.outcome == "right" else worse).append(change)
    base, head = run_read(session, base_run), run_read(session, head_run)
    return EvaluationComparison(
        base=base,
        head=head,
        better=better,
        worse=worse,
        only_in_base=len(base_rows.keys() - head_rows.keys()),
        only_in_head=len(head_rows.keys() - base_rows.keys()),
        ex_delta=_delta(head.ex, base.ex),
        precision_delta=_delta(head.precision, base.precision),
        answered_delta=head.answered - base.answered,
        p50_ms_delta=_delta(head.p50_ms, base.p50_ms),
        p95_ms_delta=_delta(head.p95_ms, base.p95_ms),
    )


def cancel_run(
    session: Session,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    run_id: str,
    context: ClientContext,
) -> EvaluationRun:
    """A queued run is cancelled at once (with its job); a running one stops after the
    question it is on. 409 once it finished."""
    run = get_run(session, connection=connection, run_id=run_id)
    if run_read(session, run).status in FINISHED_RUN_STATUSES:
        raise EvaluationNotCancellable(details={"status": run.status})
    was = run.status
    # Each step acts only on the status it expects, so a run that a worker claims meanwhile
    # is asked to stop instead of being marked cancelled under the worker's feet.
    stopped = session.execute(
        update(EvaluationRun)
        .where(EvaluationRun.id == run.id, EvaluationRun.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if stopped and run.job_id is not None:
        session.execute(
            update(BackgroundJob)
            .where(BackgroundJob.id == run.job_id, BackgroundJob.status == "queued")
            .values(status="cancelled", finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    elif not stopped:
        session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == run.id, EvaluationRun.status == "running")
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False)
        )
    recorder.audit(
        session,
        action=AuditAction.EVALUATION_CANCELLED,
        user_id=principal.user.id,
        context=context,
        resource_type="evaluation_run",
        resource_id=run.id,
        old_values={"status": was},
    )
    session.refresh(run)
    return run
