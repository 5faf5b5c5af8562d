"""Bodies of the jobs API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from backend.chat.schemas import AskRequest
from backend.core.schemas import AppSchema
from backend.evaluations.schemas import EvaluationCreate


class AskJobCreate(AskRequest):
    """An ask run in the background; its result is the ask's answer."""

    kind: Literal["ask"]
    chat_session_id: str = Field(min_length=1, max_length=36)


class ExportJobCreate(AppSchema):
    """Every row of a recorded query written to a CSV file, downloaded from the job's result."""

    kind: Literal["export"]
    query_id: str = Field(min_length=1, max_length=36)
    format: Literal["csv"] = "csv"


class SchemaRefreshJobCreate(AppSchema):
    """A connection's schema introspected again (large databases take a while)."""

    kind: Literal["schema_refresh"]
    connection_id: str = Field(min_length=1, max_length=36)


class PruneJobCreate(AppSchema):
    """Retention pruning now (admins; it also runs on the configured schedule)."""

    kind: Literal["prune"]
    batch_size: int = Field(default=5000, ge=1, le=100_000)


class EvaluationJobCreate(EvaluationCreate):
    """A connection's golden set run through a generator (as `POST /connections/{id}/evaluations`
    does); its result is the run's summary."""

    kind: Literal["evaluation"]
    connection_id: str = Field(min_length=1, max_length=36)


JobCreate = Annotated[
    AskJobCreate | ExportJobCreate | SchemaRefreshJobCreate | PruneJobCreate | EvaluationJobCreate,
    Field(
        discriminator="kind",
        examples=[
            {
                "kind": "ask",
                "chat_session_id": "9b2f6d0e-1c3a-4e5f-8a7b-6c5d4e3f2a1b",
                "question": "What is the revenue per category?",
            },
            {"kind": "export", "query_id": "5f1e2d3c-4b5a-4968-8776-655443322110"},
            {"kind": "schema_refresh", "connection_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
        ],
    ),
]


class JobError(AppSchema):
    code: str
    message: str
    details: dict[str, Any] = {}


class JobRead(AppSchema):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3f6c2a9e-52d1-4a7e-9d0b-8c1f2e3a4b5c",
                    "kind": "ask",
                    "status": "succeeded",
                    "progress": {"stage": "done"},
                    "result": {"query_id": "…", "sql": "SELECT …", "rows": [["…"]]},
                    "error": None,
                    "attempts": 1,
                    "result_url": "/api/v1/jobs/3f6c2a9e-52d1-4a7e-9d0b-8c1f2e3a4b5c/result",
                    "created_at": "2026-12-01T12:00:00Z",
                    "started_at": "2026-12-01T12:00:00.1Z",
                    "finished_at": "2026-12-01T12:00:02Z",
                }
            ]
        },
    )

    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    """The answer of an ask, schema refresh or pruning; an export's summary (rows, bytes)."""
    error: JobError | None = None
    """Why it failed, in the API's one error shape."""
    attempts: int
    result_url: str | None = None
    """Where to fetch the result once the job succeeded (an export's CSV file)."""
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
