"""The user-facing record of a background job: who owns it, what it does, how it ended.

The queue itself (which worker runs what, retries, locks) lives in procrastinate's own tables
(`procrastinate` schema on PostgreSQL, memory on the embedded default); this row is what the
API serves and what survives the queue's housekeeping.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, CreatedAtMixin, new_uuid

JOB_KINDS = ("ask", "export", "schema_refresh", "prune", "evaluation")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class BackgroundJob(CreatedAtMixin, Base):
    __tablename__ = "background_jobs"
    __table_args__ = (Index("ix_background_jobs_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    """The owner; None for scheduled maintenance nobody submitted."""
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    result_file: Mapped[str | None] = mapped_column(String(255), default=None)
    """File name (inside the jobs directory) of a result too large for a row (exports)."""
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """`{code, message, details}`, the API's one error shape, when the job failed."""
    queue: Mapped[str] = mapped_column(String(16), default="postgres")
    """Where the job was queued: `postgres` (procrastinate tables) or `memory` (in-process)."""
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(120), default=None)
    """`host:pid` of the process that queued (memory) or last ran (postgres) the job."""
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
