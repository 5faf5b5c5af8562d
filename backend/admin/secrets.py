"""Sensitive system config at rest: sealed with Fernet under the connection-password keys.

A sensitive key's value is stored as `{"fernet": "<token>"}`; reading it needs the settings
(`open_secret`). Values written before sealing existed are plain strings: they still read,
and `seal_sensitive_config` (run when the server starts and by `nlsql rotate-keys`) seals them
and re-encrypts sealed ones under the newest key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.admin.config_keys import (
    KNOWN_KEYS,
    SEALED_FIELD,
    get_config_value,
    invalidate_config_cache,
    is_sealed,
)
from backend.admin.models import SystemConfig
from backend.core.config import Settings
from backend.core.security import DecryptionError, build_fernet, decrypt_secret, encrypt_secret
from backend.core.security import rotate_secret as rotate_token

logger = logging.getLogger("nlsql.config")


def _fernet(settings: Settings) -> MultiFernet:
    return build_fernet([k.get_secret_value() for k in settings.fernet_keys])


def seal(settings: Settings, plaintext: str) -> dict[str, str]:
    return {SEALED_FIELD: encrypt_secret(_fernet(settings), plaintext)}


def open_secret(session: Session, settings: Settings, key: str) -> str | None:
    """The plaintext of a sensitive key (None when unset, or when no configured key opens it:
    that is logged, and the caller acts as if no secret were configured)."""
    value = get_config_value(session, key)
    if value is None:
        return None
    if not is_sealed(value):
        return str(value)  # written before sealing; sealed at the next start
    try:
        return decrypt_secret(_fernet(settings), value[SEALED_FIELD])
    except DecryptionError:
        logger.error("system_config %s cannot be decrypted with the configured keys", key)
        return None


@dataclass(slots=True)
class SealReport:
    sealed: int = 0
    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)


def seal_sensitive_config(session: Session, settings: Settings) -> SealReport:
    """Seal plain sensitive values and re-encrypt sealed ones under the newest key (flushes,
    does not commit)."""
    sensitive = [k for k, known in KNOWN_KEYS.items() if known.is_sensitive]
    report = SealReport()
    fernet = _fernet(settings)
    rows = session.scalars(select(SystemConfig).where(SystemConfig.config_key.in_(sensitive)))
    for row in rows:
        value = row.config_value
        if value is None:
            continue
        if is_sealed(value):
            try:
                token = rotate_token(fernet, value[SEALED_FIELD])
            except DecryptionError:
                report.unreadable.append(row.config_key)
                continue
            if token != value[SEALED_FIELD]:
                row.config_value = {SEALED_FIELD: token}
                report.rotated += 1
        elif isinstance(value, str):
            row.config_value = seal(settings, value)
            report.sealed += 1
        row.is_sensitive = True
    if report.sealed or report.rotated:
        session.flush()
        invalidate_config_cache(session)
    return report
