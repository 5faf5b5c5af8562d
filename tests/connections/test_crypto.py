"""Key rotation: `nlsql rotate-keys` re-encrypts every stored password under the newest key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections.crypto import decrypt_password, encrypt_password
from backend.connections.errors import ConnectionSecretUnreadable
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.observability.models import AuditLog
from tests.connections.conftest import Caller

REPO_ROOT = Path(__file__).resolve().parents[2]


def _with_keys(settings: Settings, *keys: str) -> Settings:
    return settings.model_copy(update={"fernet_keys": [SecretStr(k) for k in keys]})


def test_rotate_keys_re_encrypts_every_secret_under_the_newest_key(
    session: Session, settings: Settings, caller: Caller, app_db_url: str, tmp_path: Path
) -> None:
    old_key = settings.fernet_keys[0].get_secret_value()
    new_key = Fernet.generate_key().decode()
    for i in range(5):
        session.add(
            DatabaseConnection(
                user_id=caller.user.id,
                connection_name=f"c{i}",
                db_type="postgresql",
                db_host="127.0.0.1",
                db_name="x",
                encrypted_db_password=encrypt_password(settings, f"secret-{i}"),
            )
        )
    session.commit()

    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "NLSQL_DATABASE_URL": app_db_url,
        "NLSQL_DATA_DIR": str(tmp_path),
        "NLSQL_JWT_SECRET": settings.jwt_secret_value,
        "NLSQL_FERNET_KEYS": f"{new_key},{old_key}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "rotate-keys", "--batch-size", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 5 connection secrets in 3 batches" in done.stdout

    session.expire_all()
    only_new = _with_keys(settings, new_key)
    rows = list(session.scalars(select(DatabaseConnection).order_by(DatabaseConnection.id)))
    assert sorted(decrypt_password(only_new, r.encrypted_db_password or "") for r in rows) == [
        f"secret-{i}" for i in range(5)
    ]
    only_old = _with_keys(settings, old_key)
    for row in rows:
        try:
            decrypt_password(only_old, row.encrypted_db_password or "")
        except ConnectionSecretUnreadable:
            continue
        raise AssertionError("a secret is still readable with the retired key")
    audit = session.scalars(
        select(AuditLog).where(AuditLog.action == "connection.rotate_keys")
    ).one()
    assert audit.new_values is not None and audit.new_values["rotated"] == 5
    assert "secret-" not in str(audit.new_values)
