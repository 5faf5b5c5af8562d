"""The admin API: typed system config, audit log review and chain check, events, metrics."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.admin.models import SystemConfig
from backend.admin.secrets import open_secret
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.observability import recorder
from backend.observability.event_types import EventType
from backend.observability.metric_writer import MetricWriter
from backend.observability.models import AuditLog, PerformanceMetric
from tests.observability.conftest import Account

CONFIG = "/api/v1/admin/config"


# --- system config -----------------------------------------------------------------------------


def test_config_lists_every_known_key_with_defaults(
    client: TestClient, admin_account: Account
) -> None:
    response = client.get(CONFIG, headers=admin_account.headers)
    assert response.status_code == 200
    by_key = {item["key"]: item for item in response.json()}
    assert by_key["query.row_cap"]["value"] == 1000
    assert by_key["query.row_cap"]["type"] == "integer"
    assert by_key["query.row_cap"]["is_set"] is False
    assert {"auth.registration_open", "llm.price_table", "retention.events_days"} <= set(by_key)


def test_put_validates_stores_and_audits_a_value(
    client: TestClient, admin_account: Account, session: Session
) -> None:
    response = client.put(
        f"{CONFIG}/query.row_cap", json={"value": 250}, headers=admin_account.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["value"], body["is_set"], body["updated_by"]) == (250, True, admin_account.id)

    assert (
        client.get(f"{CONFIG}/query.row_cap", headers=admin_account.headers).json()["value"] == 250
    )
    # The in-process cache was refreshed by the change: another session reads the new value.
    assert get_config_value(session, "query.row_cap") == 250

    audit = session.scalars(select(AuditLog).where(AuditLog.action == "admin.config_set")).one()
    assert (audit.user_id, audit.resource_id) == (admin_account.id, "query.row_cap")
    assert (audit.old_values, audit.new_values) == ({"value": 1000}, {"value": 250})


def test_the_config_cache_serves_reads_until_a_change(
    client: TestClient, admin_account: Account, app: FastAPI
) -> None:
    client.put(f"{CONFIG}/retention.events_days", json={"value": 60}, headers=admin_account.headers)
    with app.state.session_factory() as s:
        assert get_config_value(s, "retention.events_days") == 60
        # Changed behind the cache's back (as another process would): reads stay cached ...
        s.execute(
            update(SystemConfig)
            .where(SystemConfig.config_key == "retention.events_days")
            .values(config_value=45)
        )
        s.commit()
        assert get_config_value(s, "retention.events_days") == 60
    # ... until this process changes a key, which drops the cache.
    client.put(f"{CONFIG}/retention.metrics_days", json={"value": 7}, headers=admin_account.headers)
    with app.state.session_factory() as s:
        assert get_config_value(s, "retention.metrics_days") == 7
        assert get_config_value(s, "retention.events_days") == 45


def test_an_orm_write_of_a_config_row_refreshes_the_cache(app: FastAPI) -> None:
    with app.state.session_factory() as s:
        assert get_config_value(s, "auth.registration_open") is True
        s.add(SystemConfig(config_key="auth.registration_open", config_value=False))
        s.commit()
        assert get_config_value(s, "auth.registration_open") is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("query.row_cap", 0),
        ("query.row_cap", "100"),
        ("query.row_cap", 1.5),
        ("auth.registration_open", "yes"),
        ("nl2sql.default_generator", "gpt-magic"),
        ("quota.tokens_per_role", {"superuser": 5}),
        ("quota.tokens_per_role", {"viewer": -1}),
        ("llm.price_table", {"gpt": {"prompt": 1}}),
        ("llm.price_table", {"gpt": {"prompt": -1, "completion": 1}}),
        ("retention.events_days", None),
    ],
)
def test_put_refuses_values_that_do_not_fit_the_key(
    client: TestClient, admin_account: Account, key: str, value: Any
) -> None:
    response = client.put(f"{CONFIG}/{key}", json={"value": value}, headers=admin_account.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_config_value"
    assert error["details"]["key"] == key
    assert error["details"]["errors"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_keys_are_refused(client: TestClient, admin_account: Account, method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"value": 1}} if method == "put" else {}
    response = client.request(
        method.upper(), f"{CONFIG}/no.such_key", headers=admin_account.headers, **kwargs
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_config_key"
    assert "query.row_cap" in error["details"]["known_keys"]


def test_sensitive_values_are_masked_on_read_and_in_the_audit_log(
    client: TestClient, admin_account: Account, session: Session, settings: Settings
) -> None:
    secret = "sk-test-very-secret-value"
    response = client.put(
        f"{CONFIG}/llm.openai_api_key", json={"value": secret}, headers=admin_account.headers
    )
    assert response.status_code == 200
    assert response.json()["value"] == "***"
    listed = {i["key"]: i for i in client.get(CONFIG, headers=admin_account.headers).json()}
    assert listed["llm.openai_api_key"]["value"] == "***"
    assert listed["llm.openai_api_key"]["is_sensitive"] is True
    assert (
        secret not in client.get(f"{CONFIG}/llm.openai_api_key", headers=admin_account.headers).text
    )
    # The stored value is sealed, and opens to the real one for the code that needs it.
    assert get_config_value(session, "llm.openai_api_key") != secret
    assert open_secret(session, settings, "llm.openai_api_key") == secret
    audits = client.get("/api/v1/admin/audit-logs", headers=admin_account.headers).text
    assert secret not in audits


def test_delete_resets_to_the_default_and_is_audited(
    client: TestClient, admin_account: Account, session: Session
) -> None:
    client.put(
        f"{CONFIG}/auth.registration_open", json={"value": False}, headers=admin_account.headers
    )
    response = client.delete(f"{CONFIG}/auth.registration_open", headers=admin_account.headers)
    assert response.status_code == 204
    body = client.get(f"{CONFIG}/auth.registration_open", headers=admin_account.headers).json()
    assert (body["value"], body["is_set"]) == (True, False)
    actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["admin.config_set", "admin.config_delete"]


def test_config_is_for_admins_only(client: TestClient, viewer_account: Account) -> None:
    assert client.get(CONFIG, headers=viewer_account.headers).status_code == 403
    response = client.put(
        f"{CONFIG}/query.row_cap", json={"value": 5}, headers=viewer_account.headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert client.get(CONFIG).status_code == 401


# --- audit log ---------------------------------------------------------------------------------


def _audit_some(app: FastAPI, user_id: str, count: int = 5) -> None:
    context = ClientContext(ip_address="198.51.100.1", user_agent="ua", request_id="req-12345678")
    with app.state.session_factory() as s:
        for i in range(count):
            recorder.audit(
                s,
                action="connection.create" if i % 2 == 0 else "auth.login",
                user_id=user_id,
                context=context,
                resource_type="connection" if i % 2 == 0 else None,
                resource_id=f"c{i}" if i % 2 == 0 else None,
                new_values={"n": i, "db_password": "pw"},
                success=i != 3,
            )
        s.commit()


def test_audit_logs_are_listed_filtered_and_paged(
    client: TestClient, admin_account: Account, app: FastAPI
) -> None:
    _audit_some(app, admin_account.id, count=5)
    url = "/api/v1/admin/audit-logs"
    first = client.get(url, params={"limit": 2}, headers=admin_account.headers).json()
    assert [i["new_values"]["n"] for i in first["items"]] == [4, 3]
    assert first["items"][0]["new_values"]["db_password"] == "***"
    second = client.get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin_account.headers
    ).json()
    assert [i["new_values"]["n"] for i in second["items"]] == [2, 1]

    failed = client.get(url, params={"success": False}, headers=admin_account.headers).json()[
        "items"
    ]
    assert [i["new_values"]["n"] for i in failed] == [3]
    created = client.get(url, params={"action": "connection.create"}, headers=admin_account.headers)
    assert [i["resource_id"] for i in created.json()["items"]] == ["c4", "c2", "c0"]
    by_resource = client.get(
        url, params={"resource_id": "c2"}, headers=admin_account.headers
    ).json()
    assert len(by_resource["items"]) == 1


def test_the_audit_chain_verifies_when_untouched(
    client: TestClient, admin_account: Account, app: FastAPI
) -> None:
    empty = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert (empty["intact"], empty["checked_rows"]) == (True, 0)
    _audit_some(app, admin_account.id)
    report = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert report["intact"] is True
    assert report["checked_rows"] == 5
    assert report["first_broken_id"] is None


@pytest.mark.parametrize(
    "tamper",
    [
        {"success": False},
        {"new_values": {"n": 2, "db_password": "***", "extra": 1}},
        {"user_id": None},
        {"action": "auth.logout"},
    ],
)
def test_the_chain_check_finds_an_edited_row(
    client: TestClient,
    admin_account: Account,
    app: FastAPI,
    session: Session,
    tamper: dict[str, Any],
) -> None:
    _audit_some(app, admin_account.id)
    ids = session.scalars(select(AuditLog.id).order_by(AuditLog.id)).all()
    session.execute(update(AuditLog).where(AuditLog.id == ids[2]).values(**tamper))
    session.commit()
    report = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert report == {
        "intact": False,
        "checked_rows": 3,
        "first_broken_id": ids[2],
        "reason": "row_modified",
        "last_hash": None,
    }


def test_the_chain_check_finds_an_edit_whose_hash_was_recomputed(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session
) -> None:
    _audit_some(app, admin_account.id)
    rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    forged = rows[1]
    forged.error_message = "nothing happened"
    forged.row_hash = recorder.compute_row_hash(
        recorder.audit_row_content(forged), forged.prev_hash
    )
    session.commit()
    report = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert (report["first_broken_id"], report["reason"]) == (rows[2].id, "link_broken")


@pytest.mark.parametrize("victim", [0, 2])
def test_the_chain_check_finds_a_deleted_row(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session, victim: int
) -> None:
    _audit_some(app, admin_account.id)
    ids = session.scalars(select(AuditLog.id).order_by(AuditLog.id)).all()
    session.execute(delete(AuditLog).where(AuditLog.id == ids[victim]))
    session.commit()
    report = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert report["intact"] is False
    assert (report["first_broken_id"], report["reason"]) == (ids[victim + 1], "link_broken")


def test_the_chain_check_finds_deleted_newest_rows_through_an_anchor(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session
) -> None:
    url = "/api/v1/admin/audit-logs/verify"
    _audit_some(app, admin_account.id)
    anchor = client.get(url, headers=admin_account.headers).json()["last_hash"]
    _audit_some(app, admin_account.id, count=1)
    assert client.get(url, params={"anchor": anchor}, headers=admin_account.headers).json()[
        "intact"
    ]

    newest = session.scalars(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(2)).all()
    session.execute(delete(AuditLog).where(AuditLog.id.in_(newest)))
    session.commit()
    assert client.get(url, headers=admin_account.headers).json()["intact"] is True  # still links up
    report = client.get(url, params={"anchor": anchor}, headers=admin_account.headers).json()
    assert (report["intact"], report["reason"], report["checked_rows"]) == (
        False,
        "anchor_missing",
        4,
    )
    bad = client.get(url, params={"anchor": "not-a-hash"}, headers=admin_account.headers)
    assert bad.status_code == 422


def test_audit_export_is_csv_and_is_itself_audited(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session
) -> None:
    _audit_some(app, admin_account.id, count=3)
    response = client.get(
        "/api/v1/admin/audit-logs/export",
        params={"action": "auth.login"},
        headers=admin_account.headers,
    )
    assert response.status_code == 200
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in records] == ["auth.login"]
    assert "pw" not in response.text.replace("password", "")
    session.expire_all()
    last = session.scalars(select(AuditLog).order_by(AuditLog.id.desc()).limit(1)).one()
    assert (last.action, last.resource_type) == ("query.export", "audit_logs")
    assert last.new_values == {"format": "csv", "filters": {"action": "auth.login"}}
    report = client.get("/api/v1/admin/audit-logs/verify", headers=admin_account.headers).json()
    assert report["intact"] is True and report["checked_rows"] == 4


def test_audit_review_is_for_admins_only(client: TestClient, viewer_account: Account) -> None:
    for path in ("audit-logs", "audit-logs/verify", "audit-logs/export", "events", "metrics"):
        response = client.get(f"/api/v1/admin/{path}", headers=viewer_account.headers)
        assert response.status_code == 403, path


# --- events ------------------------------------------------------------------------------------


def test_events_are_listed_by_type_and_session_and_exported(
    client: TestClient, admin_account: Account, viewer_account: Account, app: FastAPI
) -> None:
    with app.state.session_factory() as s:
        recorder.event(
            s, event_type=EventType.SIGNED_IN, user_id=viewer_account.id, user_session_id="s1"
        )
        recorder.event(
            s, event_type=EventType.ASKED, user_id=viewer_account.id, user_session_id="s1"
        )
        recorder.event(
            s, event_type=EventType.ASKED, user_id=admin_account.id, user_session_id="s2"
        )
        s.commit()
    url = "/api/v1/admin/events"
    asked = client.get(url, params={"event_type": "asked"}, headers=admin_account.headers).json()
    assert {i["user_id"] for i in asked["items"]} == {viewer_account.id, admin_account.id}
    signed = client.get(url, params={"q": "SIGNED"}, headers=admin_account.headers).json()
    assert [i["event_type"] for i in signed["items"]] == ["signed_in"]
    in_s1 = client.get(url, params={"session_id": "s1"}, headers=admin_account.headers).json()
    assert sorted(i["event_type"] for i in in_s1["items"]) == ["asked", "signed_in"]
    exported = client.get(
        f"{url}/export", params={"user_id": viewer_account.id}, headers=admin_account.headers
    ).text
    assert sorted(r["event_type"] for r in csv.DictReader(io.StringIO(exported))) == [
        "asked",
        "signed_in",
    ]


# --- performance metrics -----------------------------------------------------------------------


def test_requests_are_timed_per_route_template_and_summarised(
    client: TestClient, admin_account: Account, app: FastAPI
) -> None:
    for _ in range(3):
        assert (
            client.get(f"{CONFIG}/query.row_cap", headers=admin_account.headers).status_code == 200
        )
    assert client.get(f"{CONFIG}/nope", headers=admin_account.headers).status_code == 404
    assert client.get("/api/v1/no-such-path").status_code == 404
    writer: MetricWriter = app.state.metric_writer
    writer.flush()

    report = client.get("/api/v1/admin/metrics", headers=admin_account.headers).json()
    stats = {
        (m["labels"].get("route"), m["labels"].get("status")): m
        for m in report["metrics"]
        if m["metric_name"] == "http_request_duration"
    }
    ok = stats[("/api/v1/admin/config/{key}", "200")]
    assert ok["count"] == 3
    assert ok["unit"] == "ms"
    assert 0 < ok["p50"] <= ok["p95"] <= ok["p99"] <= ok["max"]
    assert stats[("/api/v1/admin/config/{key}", "404")]["count"] == 1
    assert stats[("<unmatched>", "404")]["count"] == 1


def test_metrics_window_and_name_filter(
    client: TestClient, admin_account: Account, app: FastAPI
) -> None:
    with app.state.session_factory() as s:
        recorder.record_stage_timings(s, timings_ms={"generate": 10.0, "execute": 2.0})
        recorder.record_stage_timings(s, timings_ms={"generate": 30.0, "execute": 4.0})
        s.commit()
    app.state.metric_writer.flush()
    report = client.get(
        "/api/v1/admin/metrics",
        params={"metric_name": "ask_stage_duration", "window_minutes": 5},
        headers=admin_account.headers,
    ).json()
    stats = {m["labels"]["stage"]: m for m in report["metrics"]}
    assert set(stats) == {"generate", "execute"}
    assert (stats["generate"]["count"], stats["generate"]["p50"]) == (2, 20.0)
    assert stats["generate"]["p99"] == pytest.approx(29.8)

    future = client.get(
        "/api/v1/admin/metrics",
        params={"until": "2000-01-01T00:00:00Z", "window_minutes": 60},
        headers=admin_account.headers,
    ).json()
    assert future["metrics"] == []


def test_the_request_path_writes_nothing_until_the_writer_flushes(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session
) -> None:
    writer: MetricWriter = app.state.metric_writer
    writer.stop()  # no background flushes during this test
    client.get(CONFIG, headers=admin_account.headers)
    assert session.scalars(select(PerformanceMetric)).all() == []
    assert writer.pending >= 1
    writer.flush()
    assert session.scalars(select(PerformanceMetric.metric_name)).all() == ["http_request_duration"]


def test_the_background_writer_flushes_on_its_own(
    client: TestClient, admin_account: Account, app: FastAPI, session: Session
) -> None:
    client.get(CONFIG, headers=admin_account.headers)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if session.scalars(select(PerformanceMetric.id)).first() is not None:
            break
        time.sleep(0.1)
    assert session.scalars(select(PerformanceMetric.metric_name)).first() == "http_request_duration"


def test_prometheus_text_has_latency_histograms(
    client: TestClient, admin_account: Account, viewer_account: Account
) -> None:
    client.get(CONFIG, headers=admin_account.headers)
    client.get(CONFIG, headers=admin_account.headers)
    response = client.get("/api/v1/admin/metrics/prometheus", headers=admin_account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE nlsql_http_request_duration_seconds histogram" in text
    series = {"route": "/api/v1/admin/config", "method": "GET", "status": "200"}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    count = ("nlsql_http_request_duration_seconds_count", tuple(sorted(series.items())))
    assert samples[count] == 2
    inf = tuple(sorted({**series, "le": "+Inf"}.items()))
    assert samples[("nlsql_http_request_duration_seconds_bucket", inf)] == 2
    assert (
        client.get("/api/v1/admin/metrics/prometheus", headers=viewer_account.headers).status_code
        == 403
    )
