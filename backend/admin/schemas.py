"""Shapes of system config and retention reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict

from backend.core.schemas import AppSchema


class ConfigRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "query.row_cap",
                    "value": 500,
                    "default": 1000,
                    "type": "integer",
                    "description": "Most rows a query returns",
                    "is_sensitive": False,
                    "is_set": True,
                    "updated_by": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "updated_at": "2024-05-01T12:00:00Z",
                }
            ]
        }
    )

    key: str
    value: Any
    """The effective value (stored or default); `"***"` when the key is sensitive and set."""
    default: Any
    type: str
    description: str
    is_sensitive: bool
    is_set: bool
    """Whether a stored value overrides the default."""
    updated_by: str | None = None
    updated_at: datetime | None = None


class ConfigWrite(AppSchema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"value": 500}]})

    value: Any
    """The new value; must match the key's type and limits (see `type` on GET)."""


class PruneReport(AppSchema):
    refresh_tokens: int
    events: int
    performance_metrics: int
    events_before: datetime
    metrics_before: datetime
