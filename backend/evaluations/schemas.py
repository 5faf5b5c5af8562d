"""Request and response bodies of golden sets and evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from backend.core.schemas import AppSchema
from backend.core.text import text_problem

MAX_QUESTION_CHARS = 2000
MAX_SQL_CHARS = 20_000
MAX_RUN_QUESTIONS = 1000
"""Most golden questions one run (and one upload) may hold."""
UPLOAD_MAX_CHARS = 512 * 1024
"""Longest golden-set file accepted."""

_GOLDEN_EXAMPLE: JsonDict = {
    "id": "6f1d2c3b-4a59-4e8f-9a0b-1c2d3e4f5a6b",
    "connection_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "question": "How many customers are there?",
    "sql": "SELECT COUNT(*) FROM customers",
    "ordered": False,
    "source": "upload",
    "source_ref": None,
    "created_at": "2026-12-01T12:00:00Z",
}
_RUN_EXAMPLE: JsonDict = {
    "id": "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f",
    "connection_id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "job_id": "9b2f6d0e-1c3a-4e5f-8a7b-6c5d4e3f2a1b",
    "status": "succeeded",
    "generator": "builtin",
    "used_generator": "builtin",
    "model": None,
    "semantic_layer_version": None,
    "total": 4,
    "done": 4,
    "right": 2,
    "wrong": 1,
    "declined": 1,
    "errors": 0,
    "answered": 3,
    "ex": 0.5,
    "precision": 0.6667,
    "answered_share": 0.75,
    "p50_ms": 9.8,
    "p95_ms": 31.2,
    "error": None,
    "cancel_requested": False,
    "created_at": "2026-12-01T12:00:00Z",
    "started_at": "2026-12-01T12:00:00.2Z",
    "finished_at": "2026-12-01T12:00:01Z",
}


class GoldenQuestionCreate(AppSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "question": "How many orders are there?",
                    "sql": "SELECT COUNT(*) FROM orders",
                    "ordered": False,
                }
            ]
        },
    )

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=r"\S")
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS, pattern=r"\S")
    """The gold query; its result is the right answer. It must pass the guard."""
    ordered: bool | None = None
    """Rows must come in the gold's order; by default, when the gold has a top-level ORDER BY."""

    @field_validator("question", "sql")
    @classmethod
    def _storable(cls, value: str) -> str:
        # Uploaded files bypass the request hygiene; "\u0000" in JSON decodes to a NUL.
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"text with a {problem.replace('_', ' ')} cannot be stored")
        return value


class GoldenQuestionRead(AppSchema):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [_GOLDEN_EXAMPLE]}
    )

    id: str
    connection_id: str
    question: str
    sql: str
    ordered: bool
    source: str
    """`manual`, `upload`, `template`, `answer` or `verified`: how it entered the set."""
    source_ref: str | None = None
    created_at: datetime


class GoldenUpload(AppSchema):
    """A golden-set file's text and its format."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "format": "yaml",
                    "content": "- question: How many customers are there?\n"
                    "  sql: SELECT COUNT(*) FROM customers\n",
                },
                {
                    "format": "csv",
                    "content": "question,sql,ordered\n"
                    "Customers by name,SELECT name FROM customers ORDER BY name,true\n",
                },
            ]
        },
    )

    format: Literal["json", "csv", "yaml"]
    content: str = Field(min_length=1, max_length=UPLOAD_MAX_CHARS)
    """JSON or YAML: a list of `{question, sql, ordered?}` (or `{questions: [...]}`); CSV: a
    header `question,sql[,ordered]` and one row per question."""


class GoldenImport(AppSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"source": "templates"}, {"source": "answers", "limit": 50}]
        },
    )

    source: Literal["templates", "answers", "verified"]
    """`templates`: the parameterless query templates that apply to the connection;
    `answers`: your earlier successful answers on it (question and SQL)."""
    limit: int = Field(default=100, ge=1, le=MAX_RUN_QUESTIONS)


class GoldenAdded(AppSchema):
    """What an upload or an import added; questions already in the set are skipped."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={"examples": [{"added": [_GOLDEN_EXAMPLE], "skipped": 1}]},
    )

    added: list[GoldenQuestionRead]
    skipped: int


class EvaluationCreate(AppSchema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"generator": "builtin"}]},
    )

    generator: str = Field(default="builtin", min_length=1, max_length=32)
    model: str | None = Field(default=None, min_length=1, max_length=120)
    semantic_layer_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    """The connection's semantic-layer version to evaluate with (stored with the run); when
    omitted, the version current at submission (none when the connection has no layer)."""
    golden_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_RUN_QUESTIONS)
    """Which golden questions to run; all of the connection's when omitted."""


RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class EvaluationRead(AppSchema):
    """A run and its summary. `ex` = right / questions run; `precision` = right / answered."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_RUN_EXAMPLE]})

    id: str
    connection_id: str
    job_id: str | None = None
    """Follow the run over `GET /jobs/{job_id}/events` (Server-Sent Events), or poll this."""
    status: RunStatus
    generator: str
    used_generator: str | None = None
    model: str | None = None
    semantic_layer_version: int | None = None
    total: int
    done: int
    right: int
    wrong: int
    declined: int
    errors: int
    answered: int
    ex: float | None = None
    precision: float | None = None
    answered_share: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    error: dict[str, object] | None = None
    cancel_requested: bool = False
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


Outcome = Literal["right", "wrong", "declined", "error"]


class EvaluationResultRead(AppSchema):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "position": 0,
                    "golden_id": _GOLDEN_EXAMPLE["id"],
                    "question": "How many customers are there?",
                    "gold_sql": "SELECT COUNT(*) FROM customers",
                    "ordered": False,
                    "predicted_sql": 'SELECT COUNT(*) AS "count" FROM customers LIMIT 100001',
                    "outcome": "right",
                    "ms": 9.8,
                    "confidence": 0.88,
                    "error_code": None,
                    "error_message": None,
                }
            ]
        },
    )

    position: int
    golden_id: str
    question: str
    gold_sql: str
    ordered: bool
    predicted_sql: str | None = None
    outcome: Outcome
    ms: float
    confidence: float | None = None
    error_code: str | None = None
    error_message: str | None = None


class QuestionChange(AppSchema):
    golden_id: str
    question: str
    base: Outcome
    head: Outcome


class EvaluationComparison(AppSchema):
    """Two runs of one connection: what got better, what got worse, and the deltas."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "base": _RUN_EXAMPLE,
                    "head": {**_RUN_EXAMPLE, "right": 3, "wrong": 0, "ex": 0.75, "precision": 1.0},
                    "better": [
                        {
                            "golden_id": _GOLDEN_EXAMPLE["id"],
                            "question": "How many orders are there?",
                            "base": "wrong",
                            "head": "right",
                        }
                    ],
                    "worse": [],
                    "only_in_base": 0,
                    "only_in_head": 0,
                    "ex_delta": 0.25,
                    "precision_delta": 0.3333,
                    "answered_delta": 0,
                    "p50_ms_delta": 0.4,
                    "p95_ms_delta": -2.0,
                }
            ]
        },
    )

    base: EvaluationRead
    head: EvaluationRead
    better: list[QuestionChange]
    """Right in head, not right in base."""
    worse: list[QuestionChange]
    """Right in base, not right in head."""
    only_in_base: int
    only_in_head: int
    ex_delta: float | None = None
    precision_delta: float | None = None
    answered_delta: int
    p50_ms_delta: float | None = None
    p95_ms_delta: float | None = None
