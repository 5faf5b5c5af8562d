"""HTTP endpoints of a connection's golden set and its evaluations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.auth.deps import Principal, require_scopes
from backend.auth.scopes import Scope
from backend.connections.deps import SettingsDep
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import error_responses
from backend.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorParam
from backend.core.schemas import Page
from backend.evaluations import golden, service
from backend.evaluations.errors import GoldenQuestionExists
from backend.evaluations.schemas import (
    EvaluationComparison,
    EvaluationCreate,
    EvaluationRead,
    EvaluationResultRead,
    GoldenAdded,
    GoldenImport,
    GoldenQuestionCreate,
    GoldenQuestionRead,
    GoldenUpload,
)
from backend.jobs import service as jobs_service
from backend.jobs.schemas import EvaluationJobCreate

router = APIRouter(prefix="/connections/{connection_id}", tags=["evaluations"])

Reader = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_READ))]
Writer = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_WRITE))]
Evaluator = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_READ, Scope.CHAT_WRITE))]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]


# ------------------------------------------------------------------ the golden set


@router.get(
    "/golden-questions",
    summary="The connection's golden set",
    responses=error_responses(400, 401, 403, 404),
)
def list_golden_questions(
    connection_id: str,
    session: SessionDep,
    principal: Reader,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[GoldenQuestionRead]:
    """Oldest first; page with `limit` and the `next_cursor` of the previous page."""
    connection = golden.get_connection(session, principal, connection_id)
    rows, next_cursor = golden.list_golden(
        session, connection=connection, limit=limit, cursor=cursor
    )
    return Page(items=[golden.golden_read(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/golden-questions",
    summary="Add one question and its gold SQL to the golden set",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 409, 422, 502, 504),
)
def add_golden_question(
    connection_id: str,
    data: GoldenQuestionCreate,
    request: Request,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    context: ClientContextDep,
) -> GoldenQuestionRead:
    """The gold SQL must pass the guard on this connection (422 `golden_sql_refused`, with the
    guard's `rule`). A question already in the set is a 409."""
    connection = golden.get_connection(session, principal, connection_id)
    snapshot = golden.connection_snapshot(
        session, request.app.state.session_factory, connection, settings=settings
    )
    added, _ = golden.add_golden(
        session,
        principal=principal,
        connection=connection,
        snapshot=snapshot,
        items=[data],
        source="manual",
        context=context,
    )
    if not added:
        raise GoldenQuestionExists(details={"question": data.question[:200]})
    return golden.golden_read(added[0])


@router.post(
    "/golden-set/upload",
    summary="Upload a golden set: a JSON, CSV or YAML list of question/SQL pairs",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 413, 422, 502, 504),
)
def upload_golden_set(
    connection_id: str,
    data: GoldenUpload,
    request: Request,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    context: ClientContextDep,
) -> GoldenAdded:
    """The file's text in `content` and its `format`: a list of `{question, sql, ordered?}`
    (JSON or YAML; a `{questions: [...]}` document too) or a CSV with the header
    `question,sql[,ordered]`; at most 512 KiB and 1000 questions (413 beyond). All or nothing:
    an unreadable file or item is a 422 `golden_upload_invalid` naming the item
    (`details.index`) and the field; a gold SQL the guard refuses on this connection is a 422
    `golden_sql_refused`. Questions already in the set are skipped (`skipped`)."""
    connection = golden.get_connection(session, principal, connection_id)
    items = golden.parse_upload(data.content, kind=data.format)
    snapshot = golden.connection_snapshot(
        session, request.app.state.session_factory, connection, settings=settings
    )
    added, skipped = golden.add_golden(
        session,
        principal=principal,
        connection=connection,
        snapshot=snapshot,
        items=items,
        source="upload",
        context=context,
    )
    return GoldenAdded(added=[golden.golden_read(r) for r in added], skipped=skipped)


@router.post(
    "/golden-set/import",
    summary="Import golden questions from the connection's templates or your earlier answers",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 404, 422, 502, 504),
)
def import_golden_questions(
    connection_id: str,
    data: GoldenImport,
    request: Request,
    session: SessionDep,
    principal: Writer,
    settings: SettingsDep,
    context: ClientContextDep,
) -> GoldenAdded:
    """`templates`: the parameterless query templates that apply to this connection;
    `answers`: your own earlier successful answers on it. Pairs already in the set, or whose SQL
    no longer passes the guard here, are skipped."""
    connection = golden.get_connection(session, principal, connection_id)
    snapshot = golden.connection_snapshot(
        session, request.app.state.session_factory, connection, settings=settings
    )
    added, skipped = golden.import_golden(
        session,
        principal=principal,
        connection=connection,
        snapshot=snapshot,
        source=data.source,
        limit=data.limit,
        context=context,
    )
    return GoldenAdded(added=[golden.golden_read(r) for r in added], skipped=skipped)


@router.delete(
    "/golden-questions/{golden_id}",
    summary="Remove a question from the golden set",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404),
)
def delete_golden_question(
    connection_id: str,
    golden_id: str,
    session: SessionDep,
    principal: Writer,
    context: ClientContextDep,
) -> Response:
    """Earlier runs keep their outcome for it (and still compare by its id)."""
    connection = golden.get_connection(session, principal, connection_id)
    golden.delete_golden(
        session, principal=principal, connection=connection, golden_id=golden_id, context=context
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------ evaluations


@router.post(
    "/evaluations",
    summary="Evaluate the connection: run its golden set through a generator (background job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, 503),
)
def start_evaluation(
    connection_id: str,
    data: EvaluationCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: Evaluator,
    context: ClientContextDep,
) -> EvaluationRead:
    """Answers 202 with the run (`status: queued`) and its URL in `Location`. Each golden
    question goes through the generator (default `builtin`), the guard and this connection; its
    rows are compared with the gold's as multisets (in order only when the question is
    `ordered`), values normalised. Follow `done`/`total` by polling the run or over
    `GET /jobs/{job_id}/events`. Needs `connections:read` and `chat:write`."""
    job = jobs_service.submit_job(
        session,
        request.app.state.queue,
        principal=principal,
        data=EvaluationJobCreate(
            kind="evaluation", connection_id=connection_id, **data.model_dump()
        ),
        context=context,
    )
    run_id = str(job.params["run_id"])
    run = service.get_run(
        session,
        connection=golden.get_connection(session, principal, connection_id),
        run_id=run_id,
    )
    response.headers["Location"] = f"/api/v1/connections/{connection_id}/evaluations/{run_id}"
    return service.run_read(session, run)


@router.get(
    "/evaluations",
    summary="The connection's evaluations, newest first",
    responses=error_responses(400, 401, 403, 404),
)
def list_evaluations(
    connection_id: str,
    session: SessionDep,
    principal: Reader,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[EvaluationRead]:
    """Page with `limit` and the `next_cursor` of the previous page."""
    connection = golden.get_connection(session, principal, connection_id)
    runs, next_cursor = service.list_runs(
        session, connection=connection, limit=limit, cursor=cursor
    )
    return Page(items=[service.run_read(session, r) for r in runs], next_cursor=next_cursor)


@router.get(
    "/evaluations/compare",
    summary="Compare two evaluations: questions that got better or worse, and the deltas",
    responses=error_responses(401, 403, 404, 422),
)
def compare_evaluations(
    connection_id: str,
    session: SessionDep,
    principal: Reader,
    base: Annotated[str, Query(min_length=1, max_length=36)],
    head: Annotated[str, Query(min_length=1, max_length=36)],
) -> EvaluationComparison:
    """Questions are matched by golden id: `better` were right in head and not in base,
    `worse` the reverse; deltas are head minus base."""
    connection = golden.get_connection(session, principal, connection_id)
    return service.compare_runs(session, connection=connection, base_id=base, head_id=head)


@router.get(
    "/evaluations/{run_id}",
    summary="An evaluation's progress and summary",
    responses=error_responses(401, 403, 404),
)
def get_evaluation(
    connection_id: str, run_id: str, session: SessionDep, principal: Reader
) -> EvaluationRead:
    """`done`/`total` while it runs; `ex` (right / questions run), `answered`, `precision`
    (right / answered), `p50_ms`/`p95_ms` (of answered questions)."""
    connection = golden.get_connection(session, principal, connection_id)
    return service.run_read(session, service.get_run(session, connection=connection, run_id=run_id))


@router.get(
    "/evaluations/{run_id}/results",
    summary="Each question's outcome in an evaluation",
    responses=error_responses(400, 401, 403, 404),
)
def list_evaluation_results(
    connection_id: str,
    run_id: str,
    session: SessionDep,
    principal: Reader,
    limit: PageSize = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[EvaluationResultRead]:
    """In the order the questions ran: the predicted SQL, the outcome (`right`, `wrong`,
    `declined`, `error`), milliseconds and the generator's confidence."""
    connection = golden.get_connection(session, principal, connection_id)
    run = service.get_run(session, connection=connection, run_id=run_id)
    rows, next_cursor = service.list_results(session, run=run, limit=limit, cursor=cursor)
    return Page(items=[service.result_read(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/evaluations/{run_id}/cancel",
    summary="Cancel an evaluation",
    responses=error_responses(401, 403, 404, 409),
)
def cancel_evaluation(
    connection_id: str,
    run_id: str,
    session: SessionDep,
    principal: Evaluator,
    context: ClientContextDep,
) -> EvaluationRead:
    """A queued run is cancelled at once; a running one stops after its current question
    (`cancel_requested: true` until then) and keeps the outcomes so far. 409 once finished."""
    connection = golden.get_connection(session, principal, connection_id)
    run = service.cancel_run(
        session, principal=principal, connection=connection, run_id=run_id, context=context
    )
    return service.run_read(session, run)
