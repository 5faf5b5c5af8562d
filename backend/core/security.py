"""Security primitives as pure functions: password hashing, JWTs, token digests, Fernet."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from jose import JWTError, jwk, jwt
from jose.backends.base import Key
from passlib.context import CryptContext

from backend.core.lru import LockedLru

JWT_ALGORITHM = "HS256"

# Argon2id at the first of OWASP's recommended settings (Password Storage Cheat Sheet: 19 MiB of
# memory, 2 passes, 1 lane). passlib's own default (64 MiB, 3 passes, 4 lanes) costs about eight
# times as much CPU per sign-in (464 ms against 56 ms measured here on a loaded 2-core machine),
# which made every sign-in during a burst of asks wait behind it. A hash made with other
# settings still verifies, and the sign-in rehashes it with these (`password_needs_rehash`).
ARGON2_MEMORY_KIB = 19_456
ARGON2_PASSES = 2
ARGON2_LANES = 1

_pwd_context = CryptContext(
    schemes=["argon2"],
    deprecated="auto",
    argon2__type="ID",
    argon2__memory_cost=ARGON2_MEMORY_KIB,
    argon2__rounds=ARGON2_PASSES,
    argon2__parallelism=ARGON2_LANES,
)


class TokenError(Exception):
    """A JWT that is malformed, forged, expired, of the wrong type or from another issuer."""


class DecryptionError(Exception):
    """A stored secret that none of the configured Fernet keys can decrypt."""


def hash_password(password: str) -> str:
    return str(_pwd_context.hash(password))


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bool(_pwd_context.verify(password, password_hash))
    except (ValueError, TypeError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return bool(_pwd_context.needs_update(password_hash))


# A real argon2 hash of a random password, so that a login for an unknown email spends the
# same time verifying as one for a known email and the two cannot be told apart by timing.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def create_jwt(
    *,
    subject: str,
    token_type: str,
    secret: str,
    issuer: str,
    ttl: timedelta,
    claims: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> str:
    issued_at = now or datetime.now(UTC)
    payload: dict[str, Any] = {
        **(claims or {}),
        "sub": subject,
        "typ": token_type,
        "iss": issuer,
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int((issued_at + ttl).timestamp()),
        "jti": secrets.token_hex(8),
    }
    return str(jwt.encode(payload, secret, algorithm=JWT_ALGORITHM))


VERIFIED_TOKENS_MAX_ENTRIES = 4096
"""Access tokens whose signature this process verified, remembered until they expire (LRU)."""

_verified: LockedLru[tuple[str, str, str, str], dict[str, Any]] = LockedLru(
    VERIFIED_TOKENS_MAX_ENTRIES
)


@lru_cache(maxsize=8)
def _hmac_key(secret: str) -> Key:
    # A key object: given the secret as a string, python-jose first tries to parse it as a
    # JSON key set (an exception per token) and builds the HMAC key again for every token.
    return jwk.construct(secret, JWT_ALGORITHM)


def decode_jwt(token: str, *, secret: str, issuer: str, token_type: str) -> dict[str, Any]:
    """Verify signature, algorithm, expiry, issuer and type; raise `TokenError` otherwise.

    A token verified once is not verified again while it is valid: its claims are a function
    of the token, the secret, the issuer and the type (all in the cache key), and only its
    expiry is checked again. This says nothing about whether its session still holds; callers
    check that in the database on every request (`auth.deps.principal_from_claims`)."""
    remembered = (token, secret, issuer, token_type)
    payload = _verified.get(remembered)
    if payload is None:
        payload = _verify_jwt(token, secret=secret, issuer=issuer, token_type=token_type)
        _verified.put(remembered, payload)
    if int(payload["exp"]) <= time.time():
        _verified.pop(remembered)
        raise TokenError("Signature has expired.")
    return dict(payload)


def _verify_jwt(token: str, *, secret: str, issuer: str, token_type: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise TokenError("malformed token") from exc
    # Only HS256 is ever accepted: `none` and every other algorithm are refused up front.
    if header.get("alg") != JWT_ALGORITHM:
        raise TokenError("unexpected token algorithm")
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            _hmac_key(secret),
            algorithms=[JWT_ALGORITHM],
            issuer=issuer,
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except JWTError as exc:
        raise TokenError(str(exc) or "invalid token") from exc
    if payload.get("typ") != token_type:
        raise TokenError("wrong token type")
    return payload


def generate_token(n_bytes: int = 32) -> str:
    return secrets.token_urlsafe(n_bytes)


def digest_token(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token (refresh tokens, API keys)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def build_fernet(keys: Sequence[str]) -> MultiFernet:
    """MultiFernet over the configured keys; the first one encrypts, all of them decrypt."""
    if not keys:
        raise ValueError("at least one Fernet key is required")
    return MultiFernet([Fernet(k.encode("utf-8")) for k in keys])


def encrypt_secret(fernet: MultiFernet, plaintext: str) -> str:
    return fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(fernet: MultiFernet, token: str) -> str:
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("stored secret cannot be decrypted with the configured keys") from exc


def rotate_secret(fernet: MultiFernet, token: str) -> str:
    """Re-encrypt a stored secret under the newest key."""
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, ValueError) as exc:
        raise DecryptionError("stored secret cannot be decrypted with the configured keys") from exc
