"""Request and response shapes of chat sessions, their messages and the ask endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from backend.core.schemas import AppSchema
from backend.nl2sql.schemas import QUERY_RESULT_EXAMPLE, QueryResultRead


class ChatSessionCreate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Revenue questions",
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                }
            ]
        }
    )

    title: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: str | None = Field(default=None, min_length=1, max_length=36)


class ChatSessionUpdate(AppSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "Revenue by category"}]})

    title: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: str | None = Field(default=None, min_length=1, max_length=36)


class ChatSessionRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f",
                    "title": "Revenue questions",
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "message_count": 2,
                    "last_message_at": "2024-05-01T12:00:00Z",
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": "2024-05-01T12:00:00Z",
                }
            ]
        }
    )

    id: str
    title: str
    connection_id: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime | None


class ChatMessageRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "session_id": "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f",
                    "sequence_number": 2,
                    "message_type": "assistant",
                    "content": "Revenue per category, highest first.",
                    "query_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "sql_query": "SELECT category, SUM(amount) AS revenue FROM sales GROUP BY 1",
                    "query_result": {
                        "columns": [
                            {"name": "category", "type": "TEXT"},
                            {"name": "revenue", "type": "REAL"},
                        ],
                        "rows": [["Books", 1520.5], ["Toys", 980.0]],
                        "row_count": 2,
                        "truncated": False,
                    },
                    "execution_time": 3.2,
                    "error_message": None,
                    "timestamp": "2024-05-01T12:00:00Z",
                }
            ]
        }
    )

    id: int
    session_id: str
    sequence_number: int
    message_type: str
    """`user`, `assistant`, or `error` for an answer that failed."""
    content: str
    query_id: str | None
    sql_query: str | None
    query_result: dict[str, Any] | None
    execution_time: float | None
    """Milliseconds."""
    error_message: str | None
    timestamp: datetime
    rating: int | None = None
    """Your rating of this answer (1-5), if you rated it (`POST /chat/messages/{id}/feedback`)."""


class AskRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": "What is the revenue per category?"}]}
    )

    question: str = Field(min_length=1, max_length=2000)

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        stripped = value.strip()
        if not stripped:
            raise ValueError("the question is blank")
        return stripped

    connection_id: str | None = Field(default=None, min_length=1, max_length=36)
    """Overrides the session's connection for this question only."""
    generator: str | None = Field(default=None, min_length=1, max_length=50)
    """Defaults to the `nl2sql.default_generator` setting (`builtin`)."""
    execute: bool = True
    """False: answer with the checked SQL and its explanation without running it (recorded with
    `source="draft"`); run it later with `POST /query/sql`."""


class AskResponse(QueryResultRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **QUERY_RESULT_EXAMPLE,
                    "message_id": 42,
                    "user_message_id": 41,
                    "explanation": "Revenue per category, highest first.",
                    "generator": "builtin",
                    "model": None,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "total_tokens": 0,
                }
            ]
        }
    )

    message_id: int
    """The assistant message."""
    user_message_id: int
    explanation: str
    generator: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    requested_generator: str | None = None
    """The generator the request, the user's preference or the system default named."""
    generator_note: str | None = None
    """Why `generator` differs from `requested_generator` (an LLM without an API key)."""
    template_id: str | None = None
    """The query template that answered (`generator` is then `template`)."""
    parameters: dict[str, Any] | None = None
    """The values the template's parameters were bound to."""
    attempts: int = 1
    """Generations it took: more than 1 after the model repaired failing SQL."""
    cost_estimate: float | None = None
    """USD, from the `llm.price_table` setting; null when the model is not priced."""
    summary: str | None = None
    """One or two plain-language sentences about the rows (highest, lowest, trend, count)."""
    executed: bool = True
    """False when the ask was sent with `execute: false`: no rows and no chart."""
