"""Housekeeping on the retention schedule: job result files (exports) are deleted once they
are older than `retention.job_results_days`, and the queue's own finished jobs are removed by
a scheduled procrastinate `remove_old_jobs` (neither happened before)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import procrastinate
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.db import utcnow
from backend.jobs import queue
from backend.jobs.models import BackgroundJob
from tests.chat.conftest import Caller, make_caller
from tests.jobs.conftest import JOBS, wait_for_job


def _export_job(client: TestClient, caller: Caller) -> dict[str, object]:
    ran = client.post(
        "/api/v1/query/sql",
        json={"connection_id": caller.connection_id, "sql": "SELECT id FROM customers"},
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    job = client.post(
        JOBS, json={"kind": "export", "query_id": ran.json()["query_id"]}, headers=caller.headers
    ).json()
    done = wait_for_job(client, caller.headers, job["id"])
    assert done["status"] == "succeeded", done
    return done


def test_the_prune_job_deletes_expired_export_files_and_leaves_recent_ones(
    client: TestClient, session: Session, settings: Settings, caller: Caller
) -> None:
    jobs_dir = settings.jobs_dir
    assert jobs_dir is not None
    old, recent = _export_job(client, caller), _export_job(client, caller)
    session.execute(
        update(BackgroundJob)
        .where(BackgroundJob.id == old["id"])
        .values(finished_at=utcnow() - timedelta(days=8))
    )
    session.commit()
    stale_partial = jobs_dir / "gone-worker.csv.partial"
    fresh_partial = jobs_dir / "running.csv.partial"
    stale_partial.write_bytes(b"id\n1\n")
    fresh_partial.write_bytes(b"id\n1\n")
    eight_days_ago = time.time() - 8 * 86400
    os.utime(stale_partial, (eight_days_ago, eight_days_ago))
    assert (jobs_dir / f"{old['id']}.csv").is_file()

    admin = make_caller(session, settings, role="admin")
    prune = client.post(JOBS, json={"kind": "prune"}, headers=admin.headers)
    assert prune.status_code == 202, prune.text
    pruned = wait_for_job(client, admin.headers, prune.json()["id"])
    assert pruned["status"] == "succeeded", pruned
    assert pruned["result"]["job_result_files"] == 2

    assert not (jobs_dir / f"{old['id']}.csv").exists()
    assert not stale_partial.exists()
    assert (jobs_dir / f"{recent['id']}.csv").is_file()
    assert fresh_partial.is_file()
    gone = client.get(f"{JOBS}/{old['id']}/result", headers=caller.headers)
    assert gone.status_code == 404, gone.text
    assert gone.json()["error"]["message"] == "The result file of this job is gone."
    assert client.get(f"{JOBS}/{recent['id']}/result", headers=caller.headers).status_code == 200


def test_the_queue_schedules_removing_its_old_finished_jobs(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, jobs_queue_keep_hours=24, prune_cron="17 3 * * *", _env_file=None
    )
    app = queue.build_queue_app(settings, lambda _runtime, _kind, _job_id: None)
    scheduled = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert scheduled["nlsql.remove_old_jobs"] == settings.prune_cron

    async def arrange_and_remove() -> list[int]:
        async with app.open_async():
            task = app.tasks["nlsql.export"]
            old_id = await task.defer_async(job_id="old")
            new_id = await task.defer_async(job_id="new")
            connector = app.connector
            for job_id in (old_id, new_id):
                await app.job_manager.finish_job_by_id_async(
                    job_id, status=procrastinate.jobs.Status.FAILED, delete_job=False
                )
            for event in connector.events[old_id]:  # type: ignore[attr-defined]
                event["at"] = event["at"] - timedelta(hours=25)
            await queue.remove_old_jobs(app, settings)
            return sorted(connector.jobs)  # type: ignore[attr-defined]

    assert asyncio.run(arrange_and_remove()) == [2]
