"""semantic layers per connection, one row per version

`semantic_layers` points at the current version of a connection's layer;
`semantic_layer_versions` holds every version written, never changed afterwards. Both go with
their connection.

Revision ID: semantic0001layers
Revises: evals0001runs
Create Date: 2026-12-01 19:51:15.519781+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

import backend.core.db
from alembic import op

revision: str = "semantic0001layers"
down_revision: str | None = "evals0001runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "semantic_layer_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reverted_from", sa.Integer(), nullable=True),
        sa.Column("created_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_semantic_layer_versions_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_semantic_layer_versions_connection_id_database_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_semantic_layer_versions")),
        sa.UniqueConstraint(
            "connection_id",
            "version",
            name=op.f("uq_semantic_layer_versions_connection_id_version"),
        ),
    )
    op.create_table(
        "semantic_layers",
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", backend.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["database_connections.id"],
            name=op.f("fk_semantic_layers_connection_id_database_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_semantic_layers")),
    )


def downgrade() -> None:
    op.drop_table("semantic_layers")
    op.drop_table("semantic_layer_versions")
