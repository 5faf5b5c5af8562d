"""Admin API: system config, and review of the audit log, events and performance metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from backend.admin import service as admin_service
from backend.admin.schemas import ConfigRead, ConfigWrite
from backend.auth.deps import AdminUser, Principal, require_scopes
from backend.auth.scopes import Scope
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep, utcnow
from backend.core.errors import ErrorResponse
from backend.core.pagination import CursorParam
from backend.core.schemas import Page
from backend.observability import prometheus, summaries
from backend.observability import service as observability_service
from backend.observability.schemas import (
    AuditChainReport,
    AuditLogRead,
    EventRead,
    MetricsReport,
)

router = APIRouter(prefix="/admin", tags=["admin"])

AdminPrincipal = Annotated[Principal, Depends(require_scopes(Scope.ADMIN))]
PageSize = Annotated[int, Query(ge=1, le=observability_service.MAX_PAGE_SIZE)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
KEY_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorResponse}}
ERROR_SCHEMA_REF = "#/components/schemas/ErrorResponse"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV with a header row",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


# --- system config -----------------------------------------------------------------------------


@router.get("/config", responses=ERRORS, summary="Every known config key with its value")
def list_config(session: SessionDep, _admin: AdminUser) -> list[ConfigRead]:
    """Every system config key the platform knows, with its current value, default and description
    (admins only).
    """
    return admin_service.list_config(session)


@router.get("/config/{key}", responses=KEY_ERRORS, summary="One config key")
def get_config(key: str, session: SessionDep, _admin: AdminUser) -> ConfigRead:
    """One system config key with its value (admins only); 404 for an unknown key."""
    return admin_service.get_config(session, key)


@router.put("/config/{key}", responses=KEY_ERRORS, summary="Set a config key (validated, audited)")
def set_config(
    request: Request,
    key: str,
    body: ConfigWrite,
    session: SessionDep,
    admin: AdminUser,
    context: ClientContextDep,
) -> ConfigRead:
    """Validates and stores a config value (admins only); the change is written to the audit log."""
    return admin_service.set_config(
        session,
        key,
        body.value,
        actor_id=admin.id,
        settings=request.app.state.settings,
        context=context,
    )


@router.delete(
    "/config/{key}",
    status_code=204,
    responses=KEY_ERRORS,
    summary="Reset a config key to its default (audited)",
)
def reset_config(
    key: str, session: SessionDep, admin: AdminUser, context: ClientContextDep
) -> Response:
    """Removes the stored value so the default applies again (admins only); audited."""
    admin_service.reset_config(session, key, actor_id=admin.id, context=context)
    return Response(status_code=204)


# --- audit log ---------------------------------------------------------------------------------


@router.get("/audit-logs", responses=ERRORS, summary="Audit log rows, newest first")
def list_audit_logs(
    session: SessionDep,
    _admin: AdminUser,
    user_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: PageSize = 50,
    cursor: CursorParam = None,
) -> Page[AuditLogRead]:
    """Audit rows (sign-ins, key and connection changes, config changes, ...), newest first,
    filtered by user, action and time (admins only). Page with `cursor`.
    """
    conditions = observability_service.audit_conditions(
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        success=success,
        since=since,
        until=until,
        text=q,
    )
    rows, next_cursor = observability_service.list_audit_logs(
        session, conditions=conditions, limit=limit, cursor=cursor
    )
    return Page(items=[AuditLogRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/audit-logs/verify",
    responses=ERRORS,
    summary="Check the audit hash chain: intact, or the first broken row",
)
def verify_audit_logs(
    session: SessionDep,
    _admin: AdminUser,
    anchor: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{64}$",
            description="The `last_hash` of an earlier check; reports truncation if it is gone.",
        ),
    ] = None,
) -> AuditChainReport:
    """Walks the hash chain of the audit log and reports whether it is intact or the first row whose
    hash does not match; with `anchor`, also whether rows after it were deleted (admins only).
    """
    return observability_service.verify_audit_chain(session, anchor=anchor)


@router.get(
    "/audit-logs/export",
    responses={**ERRORS, **CSV_RESPONSE},
    response_class=StreamingResponse,
    summary="Audit log as CSV (same filters as the list)",
)
def export_audit_logs(
    request: Request,
    session: SessionDep,
    principal: AdminPrincipal,
    context: ClientContextDep,
    user_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """Streams the audit rows matching the same filters as the list as CSV (admins only)."""
    filters: dict[str, Any] = {
        "user_id": user_id,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "success": success,
        "since": since,
        "until": until,
    }
    conditions = observability_service.audit_conditions(
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        success=success,
        since=since,
        until=until,
        text=q,
    )
    observability_service.record_export(
        session,
        user_id=principal.user.id,
        user_session_id=principal.user_session_id,
        context=context,
        resource="audit_logs",
        filters={**filters, "q": q},
    )
    return StreamingResponse(
        observability_service.stream_csv(
            request.app.state.session_factory,
            observability_service.audit_export_statement(conditions),
            observability_service.AUDIT_CSV_COLUMNS,
        ),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit_logs.csv"'},
    )


# --- events ------------------------------------------------------------------------------------


@router.get("/events", responses=ERRORS, summary="Product events, newest first")
def list_events(
    session: SessionDep,
    _admin: AdminUser,
    event_type: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in type or data")] = None,
    limit: PageSize = 50,
    cursor: CursorParam = None,
) -> Page[EventRead]:
    """Product events (asked, chart shown, exported, ...), newest first, filtered by type, user and
    time (admins only). Page with `cursor`.
    """
    conditions = observability_service.event_conditions(
        event_type=event_type,
        user_id=user_id,
        session_id=session_id,
        since=since,
        until=until,
        text=q,
    )
    rows, next_cursor = observability_service.list_events(
        session, conditions=conditions, limit=limit, cursor=cursor
    )
    return Page(items=[EventRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/events/export",
    responses={**ERRORS, **CSV_RESPONSE},
    response_class=StreamingResponse,
    summary="Events as CSV (same filters as the list)",
)
def export_events(
    request: Request,
    session: SessionDep,
    principal: AdminPrincipal,
    context: ClientContextDep,
    event_type: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """Streams the events matching the same filters as the list as CSV (admins only)."""
    filters: dict[str, Any] = {
        "event_type": event_type,
        "user_id": user_id,
        "session_id": session_id,
        "since": since,
        "until": until,
        "q": q,
    }
    conditions = observability_service.event_conditions(
        event_type=event_type,
        user_id=user_id,
        session_id=session_id,
        since=since,
        until=until,
        text=q,
    )
    observability_service.record_export(
        session,
        user_id=principal.user.id,
        user_session_id=principal.user_session_id,
        context=context,
        resource="events",
        filters=filters,
    )
    return StreamingResponse(
        observability_service.stream_csv(
            request.app.state.session_factory,
            observability_service.events_export_statement(conditions),
            observability_service.EVENT_CSV_COLUMNS,
        ),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


# --- performance metrics -----------------------------------------------------------------------


@router.get(
    "/metrics",
    responses=ERRORS,
    summary="count, p50, p95, p99 per metric and labels (route, status, stage) over a window",
)
def metrics(
    session: SessionDep,
    _admin: AdminUser,
    window_minutes: Annotated[int, Query(ge=1, le=60 * 24 * 31)] = 60,
    until: datetime | None = None,
    metric_name: str | None = None,
) -> MetricsReport:
    """Latency percentiles per metric name and labels over a time window, from the recorded metrics
    table (admins only).
    """
    until = until or utcnow()
    return summaries.summarize_metrics(
        session,
        since=until - timedelta(minutes=window_minutes),
        until=until,
        metric_name=metric_name,
    )


@router.get(
    "/metrics/prometheus",
    responses={
        # Spelled out: with `model`, FastAPI would document the errors as text/plain.
        **{
            code: {"content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}}
            for code in ERRORS
        },
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
    response_class=PlainTextResponse,
    summary="Latency histograms of this process in Prometheus text format",
)
def prometheus_metrics(request: Request, _admin: AdminUser) -> PlainTextResponse:
    """The in-process latency histograms in the Prometheus text exposition format, for scraping
    (admins only).
    """
    return PlainTextResponse(
        prometheus.prometheus_text(request.app.state.metric_writer),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
