"""Retention: `prune_expired_data` and `nlsql prune` delete old rows in batches and audit it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from backend.admin import service as admin_service
from backend.admin.models import SystemConfig
from backend.auth.models import RefreshToken
from backend.core.db import utcnow
from backend.observability.models import AuditLog, Event, PerformanceMetric
from backend.observability.service import verify_audit_chain
from tests.observability.conftest import Account

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fill(session: Session, user_id: str) -> None:
    now = utcnow()
    session.execute(
        insert(Event),
        [{"event_type": "asked", "timestamp": now - timedelta(days=100)} for _ in range(7)]
        + [{"event_type": "asked", "timestamp": now - timedelta(days=10)} for _ in range(2)],
    )
    session.execute(
        insert(PerformanceMetric),
        [
            {"metric_name": "m", "metric_value": 1.0, "timestamp": now - timedelta(days=40)}
            for _ in range(5)
        ]
        + [{"metric_name": "m", "metric_value": 1.0, "timestamp": now - timedelta(days=1)}],
    )
    session.execute(
        insert(RefreshToken),
        [
            {
                "user_id": user_id,
                "token_hash": uuid.uuid4().hex,
                "family_id": str(uuid.uuid4()),
                "expires_at": now + timedelta(days=days),
                "created_at": now - timedelta(days=31),
            }
            for days in (-3, -2, -1, 5)
        ],
    )
    session.commit()


def _count(session: Session, model: type) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_prune_deletes_what_retention_allows_in_batches_and_audits(
    session: Session, viewer_account: Account
) -> None:
    signed_in_tokens = _count(session, RefreshToken)  # the viewer's own login
    _fill(session, viewer_account.id)
    batches: list[int] = []
    report = admin_service.prune_expired_data(
        session, batch_size=2, after_batch=lambda: batches.append(1)
    )
    session.commit()
    assert (report.events, report.performance_metrics, report.refresh_tokens) == (7, 5, 3)
    assert len(batches) == 4 + 3 + 2  # ceil(7/2) + ceil(5/2) + ceil(3/2)
    assert (_count(session, Event), _count(session, PerformanceMetric)) == (2, 1)
    assert _count(session, RefreshToken) == signed_in_tokens + 1
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "maintenance.prune")).one()
    assert audit.new_values is not None
    assert audit.new_values["deleted_rows"] == [
        {"table": "refresh_tokens", "rows": 3},
        {"table": "events", "rows": 7},
        {"table": "performance_metrics", "rows": 5},
    ]
    assert verify_audit_chain(session).intact


def test_prune_follows_the_retention_config(session: Session, admin_account: Account) -> None:
    _fill(session, admin_account.id)
    admin_service.set_config(session, "retention.events_days", 5, actor_id=admin_account.id)
    admin_service.set_config(session, "retention.metrics_days", 60, actor_id=admin_account.id)
    session.commit()
    report = admin_service.prune_expired_data(session)
    session.commit()
    assert (report.events, report.performance_metrics) == (9, 0)


def test_nlsql_prune_command(
    app_db_url: str, tmp_path: Path, session: Session, viewer_account: Account
) -> None:
    _fill(session, viewer_account.id)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "NLSQL_DATABASE_URL": app_db_url,
        "NLSQL_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "prune", "--batch-size", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pruned 3 expired refresh tokens, 7 events" in result.stdout
    assert "5 metrics" in result.stdout
    session.expire_all()
    assert _count(session, Event) == 2
    assert session.scalar(select(AuditLog.action)) == "maintenance.prune"


def test_concurrent_first_writes_of_a_key_leave_one_row_and_every_change_audited(
    app: FastAPI, admin_account: Account
) -> None:
    factory = app.state.session_factory
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def write(value: int) -> None:
        try:
            with factory() as s:
                barrier.wait()
                admin_service.set_config(s, "query.row_cap", value, actor_id=admin_account.id)
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(100 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with factory() as s:
        stored = s.scalars(select(SystemConfig.config_value)).all()
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "admin.config_set")).all()
        assert verify_audit_chain(s).intact
    assert len(stored) == 1 and stored[0] in {100, 101, 102, 103}
    assert sorted(a.new_values["value"] for a in audits if a.new_values) == [100, 101, 102, 103]
