"""Request and response shapes of chat sessions, their messages and the ask endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from backend.core.schemas import AppSchema
from backend.nl2sql.schemas import QueryResultRead


class ChatSessionCreate(AppSchema):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: str | None = Field(default=None, min_length=1, max_length=36)


class ChatSessionUpdate(AppSchema):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    connection_id: str | None = Field(default=None, min_length=1, max_length=36)


class ChatSessionRead(AppSchema):
    id: str
    title: str
    connection_id: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime | None


class ChatMessageRead(AppSchema):
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


class AskRequest(AppSchema):
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


class AskResponse(QueryResultRead):
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
