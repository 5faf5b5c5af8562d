"""Shapes of system config and retention reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.core.schemas import AppSchema


class ConfigRead(AppSchema):
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
    value: Any
    """The new value; must match the key's type and limits (see `type` on GET)."""


class PruneReport(AppSchema):
    refresh_tokens: int
    events: int
    performance_metrics: int
    events_before: datetime
    metrics_before: datetime
