"""answer feedback and verified examples

One rating per user and answer (`answer_feedback`), and per connection the question/SQL pairs
that well-rated or corrected answers, templates and owners contribute (`verified_examples`).

Revision ID: feedback0001aaaa
Revises: hops0001jobs
Create Date: 2026-12-01 19:49:54.667486+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

import backend.core.db
from alembic import op

revision: str = "feedback0001aaaa"
down_revision: str | None = "hops0001jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_feedback",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("query_id", sa.String(length=36), nullable=True),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("generator", sa.String(length=50), nullable=True),
        sa.Column("llm_model", sa.String(length=100), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("corrected_sql", sa.Text(), nullable=True),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_answer_feedback_connection_id_database_connections"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["chat_messages.id"],
            name=op.f("fk_answer_feedback_message_id_chat_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_answer_feedback_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_feedback")),
        sa.UniqueConstraint(
            "message_id", "user_id", name=op.f("uq_answer_feedback_message_id_user_id")
        ),
    )
    with op.batch_alter_table("answer_feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_answer_feedback_connection_id_created_at",
            ["connection_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_answer_feedback_query_id"), ["query_id"], unique=False)
        batch_op.create_index(
            "ix_answer_feedback_user_id_created_at", ["user_id", "created_at"], unique=False
        )

    op.create_table(
        "verified_examples",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("approved_by", sa.String(length=36), nullable=True),
        sa.Column("approved_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("feedback_id", sa.String(length=36), nullable=True),
        sa.Column("template_id", sa.String(length=36), nullable=True),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_by"],
            ["users.id"],
            name=op.f("fk_verified_examples_approved_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_verified_examples_connection_id_database_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feedback_id"],
            ["answer_feedback.id"],
            name=op.f("fk_verified_examples_feedback_id_answer_feedback"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_verified_examples_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["query_templates.id"],
            name=op.f("fk_verified_examples_template_id_query_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verified_examples")),
        sa.UniqueConstraint("feedback_id", name=op.f("uq_verified_examples_feedback_id")),
    )
    with op.batch_alter_table("verified_examples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verified_examples_connection_id_created_at",
            ["connection_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("verified_examples", schema=None) as batch_op:
        batch_op.drop_index("ix_verified_examples_connection_id_created_at")

    op.drop_table("verified_examples")
    with op.batch_alter_table("answer_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_answer_feedback_user_id_created_at")
        batch_op.drop_index(batch_op.f("ix_answer_feedback_query_id"))
        batch_op.drop_index("ix_answer_feedback_connection_id_created_at")

    op.drop_table("answer_feedback")
