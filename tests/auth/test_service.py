"""Auth services without HTTP: password policy, throttle arithmetic, quota, usage buffer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from backend.auth import quota, throttle
from backend.auth.api_keys import record_api_key_use
from backend.auth.errors import TokenQuotaExceeded, WeakPassword
from backend.auth.models import ApiKey, User
from backend.auth.passwords import ensure_password_policy, password_problems
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.observability import recorder
from backend.observability.event_types import AuditAction
from tests import factories


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("Tulip-orbit-9931", True),
        ("correct horse battery", True),
        ("lowercase-with-dash", True),
        ("MixedCaseLetters", True),
        ("Short1!", False),
        ("onlylowercaseletters", False),
        ("ONLYUPPERCASELETTERS", False),
        ("12345678901234", False),
        ("!!!!!!!!!!!!!!", False),
        ("abababababababab", False),
        ("Password123", False),
        ("QWERTY123456", False),
        ("someone@example.com", False),
    ],
)
def test_password_policy(password: str, ok: bool) -> None:
    assert (password_problems(password, email="someone@example.com") == []) is ok


def test_password_policy_refuses_the_email_local_part_and_lists_every_problem() -> None:
    with pytest.raises(WeakPassword) as caught:
        ensure_password_policy("jane.doe.x", email="Jane.Doe.X@example.com")
    assert any("email" in p for p in caught.value.details["problems"])
    assert len(password_problems("abc", email=None)) == 2


def _fail(session: Session, *, email: str, ip: str) -> None:
    recorder.audit(
        session,
        action=AuditAction.LOGIN_FAILED,
        user_id=None,
        context=ClientContext(ip_address=ip),
        resource_type=throttle.LOGIN_RESOURCE_TYPE,
        resource_id=throttle.email_fingerprint(email),
        success=False,
    )


def test_throttle_lifts_when_the_limiting_failure_leaves_the_window(session: Session) -> None:
    policy = throttle.ThrottlePolicy(max_failures=2, window_seconds=60)
    for _ in range(2):
        _fail(session, email="X@Example.com", ip="10.9.9.9")
    session.commit()
    now = utcnow()
    wait = throttle.seconds_until_allowed(
        session, email="x@example.com", ip_address="10.0.0.1", user_id=None, policy=policy, now=now
    )
    assert wait is not None and 55 <= wait <= 60
    by_ip = throttle.seconds_until_allowed(
        session, email="y@example.com", ip_address="10.9.9.9", user_id=None, policy=policy, now=now
    )
    assert by_ip is not None
    later = now + timedelta(seconds=61)
    for email, ip in (("x@example.com", "10.0.0.1"), ("y@example.com", "10.9.9.9")):
        assert (
            throttle.seconds_until_allowed(
                session, email=email, ip_address=ip, user_id=None, policy=policy, now=later
            )
            is None
        )


def test_throttle_reads_its_policy_from_system_config(session: Session) -> None:
    assert throttle.load_policy(session) == throttle.ThrottlePolicy(5, 900)
    factories.set_system_config(session, "auth.login_max_failures", 2)
    factories.set_system_config(session, "auth.login_window_seconds", 30)
    assert throttle.load_policy(session) == throttle.ThrottlePolicy(2, 30)


def test_token_quota_follows_the_role_quota(session: Session) -> None:
    viewer = factories.create_user(session)
    admin = factories.create_user(session, role="admin")
    factories.set_system_config(session, "quota.tokens_per_role", {"viewer": 100, "admin": None})
    quota.ensure_token_quota(session, viewer)
    quota.add_token_usage(session, viewer.id, 60)
    quota.add_token_usage(session, viewer.id, 40)
    session.commit()
    assert viewer.token_usage == 100
    with pytest.raises(TokenQuotaExceeded) as caught:
        quota.ensure_token_quota(session, viewer)
    assert caught.value.status_code == 429
    assert "100 of your 100" in caught.value.message
    assert caught.value.details["token_quota"] == 100
    quota.add_token_usage(session, admin.id, 10_000_000)
    session.commit()
    quota.ensure_token_quota(session, admin)


def test_token_usage_ignores_non_positive_amounts(session: Session, user: User) -> None:
    quota.add_token_usage(session, user.id, 0)
    quota.add_token_usage(session, user.id, -5)
    session.commit()
    session.refresh(user)
    assert user.token_usage == 0


def test_key_uses_add_up_and_last_used_only_moves_forward(
    app: FastAPI, session: Session, user: User
) -> None:
    key = factories.create_api_key(session, user)
    session.commit()
    early, late = utcnow() - timedelta(minutes=5), utcnow()
    record_api_key_use(app.state.engine, key.id, late)
    record_api_key_use(app.state.engine, key.id, late)
    record_api_key_use(app.state.engine, key.id, early)
    stored = session.get(ApiKey, key.id)
    assert stored is not None
    session.refresh(stored)
    assert stored.usage_count == 3
    assert stored.last_used is not None and abs((stored.last_used - late).total_seconds()) < 1e-3


def test_a_malformed_throttle_config_falls_back_to_the_defaults(session: Session) -> None:
    factories.set_system_config(session, "auth.login_max_failures", "lots")
    factories.set_system_config(session, "auth.login_window_seconds", 0)
    assert throttle.load_policy(session) == throttle.ThrottlePolicy(5, 900)
