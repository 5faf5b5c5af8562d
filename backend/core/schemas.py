"""The project-wide pydantic base and the page shape of every list."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema

T = TypeVar("T")


class AppSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)


class Page(AppSchema, Generic[T]):
    """A page of a list: `items` and the opaque cursor of the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = None


Omitted = SkipJsonSchema[None]
"""For update fields that may be left out but not cleared: `name: str | Omitted = None`.

The schema then lists only the real type (a client cannot send null), while the model's default
still tells "not given" apart; the service refuses an explicit null.
"""


SSE_EVENT_SCHEMA: dict[str, object] = {
    "type": "object",
    "description": "One Server-Sent Event: its name and one line of JSON as its data.",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
    },
    "required": ["data"],
}
"""How a `text/event-stream` answer is documented: each event, not the whole stream."""
