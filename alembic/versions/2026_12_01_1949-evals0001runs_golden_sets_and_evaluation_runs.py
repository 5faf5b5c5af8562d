"""golden sets and evaluation runs

A connection's golden set (question/SQL pairs), the runs of an evaluation over it and each
question's outcome per run.

Revision ID: evals0001runs
Revises: feedback0001aaaa
Create Date: 2026-12-01 19:49:43.520802+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

import backend.core.db
from alembic import op

revision: str = "evals0001runs"
down_revision: str | None = "feedback0001aaaa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evaluation_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("generator", sa.String(length=32), nullable=False),
        sa.Column("used_generator", sa.String(length=32), nullable=True),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("semantic_layer_version", sa.Integer(), nullable=True),
        sa.Column("golden_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("done_count", sa.Integer(), nullable=False),
        sa.Column("right_count", sa.Integer(), nullable=False),
        sa.Column("wrong_count", sa.Integer(), nullable=False),
        sa.Column("declined_count", sa.Integer(), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p95_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("started_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_evaluation_runs_connection_id_database_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["background_jobs.id"],
            name=op.f("fk_evaluation_runs_job_id_background_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_evaluation_runs_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_runs")),
    )
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evaluation_runs_connection_id_created_at",
            ["connection_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_evaluation_runs_user_id"), ["user_id"], unique=False)

    op.create_table(
        "golden_questions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("gold_sql", sa.Text(), nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_golden_questions_connection_id_database_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_golden_questions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_golden_questions")),
    )
    with op.batch_alter_table("golden_questions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_golden_questions_connection_id_created_at",
            ["connection_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_golden_questions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "evaluation_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("golden_id", sa.String(length=36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("gold_sql", sa.Text(), nullable=False),
        sa.Column("ordered", sa.Boolean(), nullable=False),
        sa.Column("predicted_sql", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("ms", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["evaluation_runs.id"],
            name=op.f("fk_evaluation_results_run_id_evaluation_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_results")),
        sa.UniqueConstraint(
            "run_id", "position", name=op.f("uq_evaluation_results_run_id_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("evaluation_results")
    with op.batch_alter_table("golden_questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_golden_questions_user_id"))
        batch_op.drop_index("ix_golden_questions_connection_id_created_at")

    op.drop_table("golden_questions")
    with op.batch_alter_table("evaluation_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_runs_user_id"))
        batch_op.drop_index("ix_evaluation_runs_connection_id_created_at")

    op.drop_table("evaluation_runs")
