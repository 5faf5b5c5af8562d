"""Connections: the caller's own database connections."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections.models import DatabaseConnection


def get_connection_by_name_or_none(
    session: Session, *, user_id: str, connection_name: str
) -> DatabaseConnection | None:
    return session.scalar(
        select(DatabaseConnection).where(
            DatabaseConnection.user_id == user_id,
            DatabaseConnection.connection_name == connection_name,
        )
    )


def ensure_sqlite_connection(
    session: Session, *, user_id: str, connection_name: str, path: str
) -> DatabaseConnection:
    """Create or repoint the user's SQLite connection of that name. Flushes, does not commit."""
    connection = get_connection_by_name_or_none(
        session, user_id=user_id, connection_name=connection_name
    )
    if connection is None:
        connection = DatabaseConnection(
            user_id=user_id, connection_name=connection_name, db_type="sqlite", db_name=path
        )
        session.add(connection)
    else:
        connection.db_type = "sqlite"
        connection.db_name = path
        connection.is_active = True
    session.flush()
    return connection
