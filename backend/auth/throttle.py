"""Brute-force protection for sign-in, counted from the audit log.

Failed logins are `auth.login_failed` audit rows (written anyway), so the count is shared by
every worker and survives restarts. An email is throttled after `auth.login_max_failures`
failures within `auth.login_window_seconds` since its last successful login; an IP address
after that many failures within the window, whatever the email (a success does not reset
it, or an attacker could reset it with an account of their own). Throttled attempts are
audited as `auth.login_throttled` and do not extend the lock.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from backend.admin.config_keys import KNOWN_KEYS, get_config_value
from backend.core.db import utcnow
from backend.observability.event_types import AuditAction
from backend.observability.models import AuditLog

LOGIN_RESOURCE_TYPE = "login"


def email_fingerprint(email: str) -> str:
    """The `resource_id` of a login attempt: a digest of the normalized email (fits 100 chars)."""
    return "email:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    window_seconds: int


def _positive_int(session: Session, key: str) -> int:
    value = get_config_value(session, key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    # A stored value of the wrong shape must not switch the protection off or answer 500.
    default = KNOWN_KEYS[key].default
    assert isinstance(default, int)  # noqa: S101 - the registry's defaults are integers
    return default


def load_policy(session: Session) -> ThrottlePolicy:
    return ThrottlePolicy(
        max_failures=_positive_int(session, "auth.login_max_failures"),
        window_seconds=_positive_int(session, "auth.login_window_seconds"),
    )


def _nth_latest_failure(
    session: Session, *, policy: ThrottlePolicy, since: datetime, condition: ColumnElement[bool]
) -> datetime | None:
    """The timestamp of the max_failures-th most recent failure since `since`, if there is one."""
    return session.scalar(
        select(AuditLog.timestamp)
        .where(
            AuditLog.action == AuditAction.LOGIN_FAILED.value,
            AuditLog.timestamp >= since,
            condition,
        )
        .order_by(AuditLog.timestamp.desc())
        .offset(policy.max_failures - 1)
        .limit(1)
    )


def _last_success(session: Session, user_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(AuditLog.timestamp)).where(
            AuditLog.action == AuditAction.LOGIN_SUCCEEDED.value, AuditLog.user_id == user_id
        )
    )


def seconds_until_allowed(
    session: Session,
    *,
    email: str,
    ip_address: str | None,
    user_id: str | None,
    policy: ThrottlePolicy | None = None,
    now: datetime | None = None,
) -> int | None:
    """Seconds until a login for this email from this IP may be tried; None when it may now."""
    policy = policy or load_policy(session)
    now = now or utcnow()
    window_start = now - timedelta(seconds=policy.window_seconds)
    blocked_since: list[datetime] = []

    email_since = window_start
    if user_id is not None:
        success = _last_success(session, user_id)
        if success is not None and success > email_since:
            email_since = success
    by_email = _nth_latest_failure(
        session,
        policy=policy,
        since=email_since,
        condition=(AuditLog.resource_type == LOGIN_RESOURCE_TYPE)
        & (AuditLog.resource_id == email_fingerprint(email)),
    )
    if by_email is not None:
        blocked_since.append(by_email)
    if ip_address:
        by_ip = _nth_latest_failure(
            session, policy=policy, since=window_start, condition=AuditLog.ip_address == ip_address
        )
        if by_ip is not None:
            blocked_since.append(by_ip)
    if not blocked_since:
        return None
    # Allowed again once the limiting failure leaves the window.
    until = max(blocked_since) + timedelta(seconds=policy.window_seconds)
    return max(1, math.ceil((until - now).total_seconds()))
