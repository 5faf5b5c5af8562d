"""Connection passwords at rest: Fernet under the configured keys (MultiFernet, newest first)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections.errors import ConnectionSecretUnreadable
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.core.security import (
    DecryptionError,
    build_fernet,
    decrypt_secret,
    encrypt_secret,
    rotate_secret,
)

ROTATION_BATCH_SIZE = 200


def connection_fernet(settings: Settings) -> MultiFernet:
    return build_fernet([k.get_secret_value() for k in settings.fernet_keys])


def encrypt_password(settings: Settings, password: str) -> str:
    return encrypt_secret(connection_fernet(settings), password)


def decrypt_password(settings: Settings, token: str) -> str:
    """Raises `ConnectionSecretUnreadable` when no configured key opens `token`."""
    try:
        return decrypt_secret(connection_fernet(settings), token)
    except DecryptionError as exc:
        raise ConnectionSecretUnreadable() from exc


@dataclass(slots=True)
class RotationReport:
    rotated: int = 0
    unreadable: int = 0
    batches: int = 0
    unreadable_ids: list[str] = field(default_factory=list)


def rotate_connection_secrets(
    session_factory: Callable[[], Session],
    settings: Settings,
    *,
    batch_size: int = ROTATION_BATCH_SIZE,
) -> RotationReport:
    """Re-encrypt every stored connection password under the newest key.

    Works in short batches, each its own transaction, walking ids in order: the app keeps
    serving meanwhile, because every configured key still decrypts both old and new tokens.
    A row whose secret no key opens is counted and left as it is.
    """
    fernet = connection_fernet(settings)
    report = RotationReport()
    last_id = ""
    while True:
        with session_factory() as session:
            batch = list(
                session.scalars(
                    select(DatabaseConnection)
                    .where(
                        DatabaseConnection.id > last_id,
                        DatabaseConnection.encrypted_db_password.is_not(None),
                    )
                    .order_by(DatabaseConnection.id)
                    .limit(batch_size)
                    .with_for_update()
                )
            )
            if not batch:
                return report
            for connection in batch:
                token = connection.encrypted_db_password
                assert token is not None  # noqa: S101 - filtered above
                try:
                    rotated = rotate_secret(fernet, token)
                except DecryptionError:
                    report.unreadable += 1
                    report.unreadable_ids.append(connection.id)
                    continue
                if rotated != token:
                    connection.encrypted_db_password = rotated
                    report.rotated += 1
            session.commit()
            report.batches += 1
            last_id = batch[-1].id
