"""64-bit token counts and key usage, and the start of each user's token quota period

Revision ID: hygiene0001aaaa
Revises: b4187cff43f1
Create Date: 2026-12-01 17:00:00+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

import backend.core.db
from alembic import op

revision: str = "hygiene0001aaaa"
down_revision: str | None = "b4187cff43f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WIDENED = (
    ("users", "token_usage"),
    ("api_keys", "usage_count"),
    ("query_analytics", "prompt_tokens"),
    ("query_analytics", "completion_tokens"),
    ("query_analytics", "total_tokens"),
)


def upgrade() -> None:
    for table, column in _WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False
            )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "token_period_start",
                backend.core.db.UTCDateTime(timezone=True),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_period_start")
    for table, column in _WIDENED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False
            )
