"""background jobs and the procrastinate queue schema

The `background_jobs` table on every backend; on PostgreSQL also procrastinate's own tables,
functions and types, in a schema of their own (`procrastinate`) so they never mix with the
platform's models. The queue schema is the one shipped by the pinned procrastinate release;
a later procrastinate upgrade brings its migration files in a later revision.

Revision ID: hops0001jobs
Revises: hygiene0001aaaa
Create Date: 2026-12-01 16:30:54.581283+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

import backend.core.db
from alembic import op
from backend.jobs.queue import QUEUE_SCHEMA, queue_schema_sql

revision: str = "hops0001jobs"
down_revision: str | None = "hygiene0001aaaa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "background_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("result_file", sa.String(length=255), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("queue", sa.String(length=16), nullable=False),
        sa.Column("queue_job_id", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_background_jobs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_jobs")),
    )
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_background_jobs_status"), ["status"], unique=False)
        batch_op.create_index(
            "ix_background_jobs_user_id_created_at", ["user_id", "created_at"], unique=False
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}")
        bind.exec_driver_sql(f"SET LOCAL search_path TO {QUEUE_SCHEMA}")
        # Straight to psycopg with no parameters: the schema's `%` signs are not placeholders.
        with bind.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(queue_schema_sql())
        bind.exec_driver_sql("SET LOCAL search_path TO DEFAULT")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(f"DROP SCHEMA IF EXISTS {QUEUE_SCHEMA} CASCADE")
    with op.batch_alter_table("background_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_background_jobs_user_id_created_at")
        batch_op.drop_index(batch_op.f("ix_background_jobs_status"))

    op.drop_table("background_jobs")
