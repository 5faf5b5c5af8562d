"""Request and response bodies of golden sets and evaluations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from backend.core.schemas import AppSchema
from backend.core.text import text_problem

MAX_QUESTION_CHARS = 2000
MAX_SQL_CHARS = 20_000
MAX_RUN_QUESTIONS = 1000
"""Most golden questions one run (and one upload) may hold."""


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

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    sql: str = Field(min_length=1, max_length=MAX_SQL_CHARS)
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
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class GoldenQuestionRead(AppSchema):
    id: str
    connection_id: str
    question: str
    sql: str
    ordered: bool
    source: str
    """`manual`, `upload`, `template`, `answer` or `verified`: how it entered the set."""
    source_ref: str | None = None
    created_at: datetime


class GoldenImport(AppSchema):
    model_config = ConfigDict(extra="forbid")

    source: Literal["templates", "answers"]
    """`templates`: the parameterless query templates that apply to the connection;
    `answers`: your earlier successful answers on it (question and SQL)."""
    limit: int = Field(default=100, ge=1, le=MAX_RUN_QUESTIONS)


class GoldenAdded(AppSchema):
    """What an upload or an import added; questions already in the set are skipped."""

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
    """The connection's semantic-layer version to evaluate with (stored with the run)."""
    golden_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_RUN_QUESTIONS)
    """Which golden questions to run; all of the connection's when omitted."""


RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class EvaluationRead(AppSchema):
    """A run and its summary. `ex` = right / total; `precision` = right / answered."""

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
