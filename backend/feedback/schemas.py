"""Request and response shapes of answer feedback and verified examples."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from backend.core.schemas import AppSchema

MAX_COMMENT_LENGTH = 2000
MAX_SQL_LENGTH = 100_000
NOT_BLANK = r"\S"
"""A pattern that refuses text of spaces only (JSON Schema patterns match anywhere)."""
ExampleSource = Literal["feedback", "correction", "template", "manual"]
FeedbackGroupBy = Literal["connection", "generator", "model"]


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


class FeedbackWrite(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rating": 2,
                    "comment": "Revenue should count paid invoices only.",
                    "corrected_sql": (
                        "SELECT SUM(amount) AS revenue FROM invoices WHERE paid_at IS NOT NULL"
                    ),
                }
            ]
        }
    )

    rating: int = Field(ge=1, le=5)
    """1 (wrong) to 5 (right). 4 or more makes the answer a verified example."""
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_LENGTH)
    corrected_sql: str | None = Field(default=None, max_length=MAX_SQL_LENGTH)
    """SQL that answers the question; it must pass the guard on the answer's connection, and
    becomes a verified example of that connection."""

    _blank = field_validator("comment", "corrected_sql")(_blank_to_none)


class ExampleRef(AppSchema):
    id: str
    approved: bool


class FeedbackRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a",
                    "message_id": 42,
                    "query_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "generator": "openai",
                    "llm_model": "gpt-4o-mini",
                    "rating": 5,
                    "comment": None,
                    "corrected_sql": None,
                    "example": {"id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b", "approved": True},
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": None,
                }
            ]
        }
    )

    id: str
    message_id: int
    query_id: str | None
    connection_id: str | None
    generator: str | None
    llm_model: str | None
    rating: int
    comment: str | None
    corrected_sql: str | None
    example: ExampleRef | None = None
    """The verified example this feedback made (null when it made none)."""
    created_at: datetime
    updated_at: datetime | None


class FeedbackReviewRead(FeedbackRead):
    user_id: str


class ExampleCreate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "Revenue per month",
                    "sql": (
                        "SELECT strftime('%Y-%m', paid_at) AS month, SUM(amount) AS revenue "
                        "FROM invoices WHERE paid_at IS NOT NULL GROUP BY month ORDER BY month"
                    ),
                }
            ]
        }
    )

    question: str = Field(min_length=1, max_length=2000, pattern=NOT_BLANK)
    sql: str = Field(min_length=1, max_length=MAX_SQL_LENGTH, pattern=NOT_BLANK)

    @field_validator("question", "sql")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class ExampleRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b",
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "question": "Revenue per month",
                    "sql": "SELECT month, SUM(amount) AS revenue FROM invoices GROUP BY month",
                    "source": "manual",
                    "owner_id": "3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9",
                    "approved": True,
                    "approved_by": "3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9",
                    "approved_at": "2024-05-01T12:00:00Z",
                    "feedback_id": None,
                    "template_id": None,
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": None,
                }
            ]
        }
    )

    id: str
    connection_id: str
    question: str
    sql: str
    source: ExampleSource
    owner_id: str
    """Who contributed it."""
    approved: bool
    """Only approved examples (and their contributor's own) reach prompts."""
    approved_by: str | None
    approved_at: datetime | None
    feedback_id: str | None
    template_id: str | None
    created_at: datetime
    updated_at: datetime | None


class FeedbackGroup(AppSchema):
    key: str | None
    """The connection id, generator or model (null: unknown or not applicable)."""
    count: int
    average_rating: float | None
    ratings: dict[str, int]
    """How many ratings of each value, `"1"` to `"5"`."""
    corrected: int
    """How many carried a corrected SQL."""


class FeedbackSummary(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_by": "generator",
                    "since": "2024-04-01T00:00:00Z",
                    "until": "2024-05-01T00:00:00Z",
                    "total": {
                        "key": None,
                        "count": 3,
                        "average_rating": 3.667,
                        "ratings": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
                        "corrected": 1,
                    },
                    "groups": [
                        {
                            "key": "openai",
                            "count": 3,
                            "average_rating": 3.667,
                            "ratings": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1},
                            "corrected": 1,
                        }
                    ],
                }
            ]
        }
    )

    group_by: FeedbackGroupBy
    since: datetime | None
    until: datetime | None
    total: FeedbackGroup
    groups: list[FeedbackGroup]
