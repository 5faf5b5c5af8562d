"""Regenerate app_data.db.example: a platform database at head with example rows in every table.

Rows are written through the same services and recorder the app uses, so the example shows what
the platform really stores (hashed secrets, encrypted passwords, redacted audit values).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from sqlalchemy import select  # noqa: E402

from backend.admin.models import SystemConfig  # noqa: E402
from backend.auth import service as auth_service  # noqa: E402
from backend.auth.deps import Principal  # noqa: E402
from backend.auth.models import ApiKey, RefreshToken, UserSession  # noqa: E402
from backend.auth.scopes import Scope  # noqa: E402
from backend.chat.models import ChatMessage, ChatSession  # noqa: E402
from backend.connections import service as connections_service  # noqa: E402
from backend.connections.executor import execute_query, open_sqlite_read_only  # noqa: E402
from backend.connections.introspection import introspect  # noqa: E402
from backend.connections.models import DatabaseSchema  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.context import ClientContext  # noqa: E402
from backend.core.db import create_app_engine, create_session_factory, new_uuid  # noqa: E402
from backend.core.migrations import upgrade_to_head  # noqa: E402
from backend.core.security import build_fernet, digest_token, encrypt_secret  # noqa: E402
from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.evaluations.models import (  # noqa: E402
    EvaluationResult,
    EvaluationRun,
    GoldenQuestion,
)
from backend.feedback.models import AnswerFeedback, VerifiedExample  # noqa: E402
from backend.jobs.models import BackgroundJob  # noqa: E402
from backend.observability import recorder  # noqa: E402
from backend.observability.event_types import AuditAction, EventType  # noqa: E402
from backend.semantic import service as semantic_service  # noqa: E402
from backend.semantic.draft import propose_layer  # noqa: E402
from backend.templates.models import QueryTemplate  # noqa: E402

TARGET = ROOT / "app_data.db.example"
CONTEXT = ClientContext(ip_address="127.0.0.1", user_agent="example-builder/1.0")


def build(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "app_data.db"
        url = f"sqlite:///{db}"
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            jwt_secret=SecretStr("example-only-" + "x" * 40),
            fernet_keys=[SecretStr(Fernet.generate_key().decode())],
            _env_file=None,  # type: ignore[call-arg]
        )
        upgrade_to_head(url)
        engine = create_app_engine(url)
        session = create_session_factory(engine)()
        _fill(session, settings)
        session.commit()
        session.close()
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
        engine.dispose()
        target.write_bytes(db.read_bytes())


def _fill(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0)
    admin = auth_service.create_user(
        session,
        email="admin@example.com",
        password="example-admin-pw",
        full_name="Ada Admin",
        role="admin",
    )
    demo = auth_service.create_user(
        session,
        email="demo@example.com",
        password="demo-password-2024",
        full_name="Demo User",
        company="Example Shop",
    )
    demo.preferences = {"theme": "light", "generator": "builtin"}
    demo.last_login = now
    user_session = UserSession(
        user_id=demo.id,
        ip_address=CONTEXT.ip_address,
        user_agent=CONTEXT.user_agent,
        queries_count=2,
    )
    session.add(user_session)
    session.flush()
    session.add(
        RefreshToken(
            user_id=demo.id,
            token_hash=digest_token("example-refresh-token"),
            expires_at=now + timedelta(days=30),
            family_id=new_uuid(),
            user_session_id=user_session.id,
            device_info={"ip_address": CONTEXT.ip_address, "user_agent": CONTEXT.user_agent},
        )
    )
    session.add(
        ApiKey(
            user_id=demo.id,
            key_name="reporting script",
            key_hash=digest_token("nlsql_example"),
            key_prefix="nlsql_example",
            permissions={"scopes": ["chat:write", "chat:read"], "connection_ids": None},
        )
    )
    connection = connections_service.ensure_sqlite_connection(
        session, user_id=demo.id, connection_name="demo", path=str(DEMO_DB_PATH)
    )
    warehouse = connections_service.get_connection_by_name_or_none(
        session, user_id=demo.id, connection_name="warehouse"
    )
    if warehouse is None:
        from backend.connections.models import DatabaseConnection

        warehouse = DatabaseConnection(
            user_id=demo.id,
            connection_name="warehouse",
            db_type="postgresql",
            db_host="db.internal",
            db_port=5432,
            db_user="analyst",
            db_name="warehouse",
            encrypted_db_password=encrypt_secret(
                build_fernet([k.get_secret_value() for k in settings.fernet_keys]),
                "example-password",
            ),
            options={"sslmode": "require"},
        )
        session.add(warehouse)
        session.flush()
    target = open_sqlite_read_only(DEMO_DB_PATH)
    snapshot = introspect(target, db_type="sqlite", database_name="shop.sqlite")
    for table in snapshot.tables:
        session.add(
            DatabaseSchema(
                connection_id=connection.id,
                database_name="shop.sqlite",
                table_name=table.name,
                schema_info=table.model_dump(mode="json"),
                row_count=table.row_count,
            )
        )
    session.flush()
    draft = propose_layer(snapshot)
    layer = draft.model_copy(
        update={
            "tables": [
                t.model_copy(update={"synonyms": ["clients", "buyers"]})
                if t.name == "customers"
                else t
                for t in draft.tables
            ],
            "instructions": ["Amounts are in USD."],
        }
    )
    semantic_service.write_layer(
        session,
        principal=Principal(user=demo, scopes=frozenset(Scope)),
        connection=connection,
        layer=layer,
        source="put",
        note="Accepted the draft, with synonyms of customers.",
        settings=settings,
        context=CONTEXT,
    )
    chat = ChatSession(user_id=demo.id, title="Sales questions", connection_id=connection.id)
    session.add(chat)
    session.flush()
    question = "How many customers are there per country?"
    sql = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country ORDER BY 2 DESC"
    result = execute_query(target, sql, row_cap=100)
    target.dispose()
    query_id = new_uuid()
    session.add_all(
        [
            ChatMessage(
                session_id=chat.id, message_type="user", content=question, sequence_number=1
            ),
            ChatMessage(
                session_id=chat.id,
                message_type="assistant",
                sequence_number=2,
                content="Customers counted per country, largest first.",
                query_id=query_id,
                sql_query=sql,
                execution_time=result.execution_time_ms,
                query_result={
                    "columns": [c.name for c in result.columns],
                    "rows": result.rows,
                    "row_count": result.row_count,
                    "truncated": result.truncated,
                },
            ),
        ]
    )
    chat.message_count = 2
    chat.last_message_at = now
    recorder.query(
        session,
        query_id=query_id,
        user_id=demo.id,
        source="ask",
        success=True,
        question=question,
        sql_query=sql,
        execution_time_ms=result.execution_time_ms,
        row_count=result.row_count,
        chart_type="bar",
        generator="builtin",
        connection_id=connection.id,
        chat_session_id=chat.id,
    )
    recorder.query(
        session,
        query_id=new_uuid(),
        user_id=demo.id,
        source="sql",
        success=False,
        sql_query="DELETE FROM customers",
        error_message="only SELECT statements may run",
        error_code="sql_refused",
        connection_id=connection.id,
    )
    recorder.audit(
        session,
        action=AuditAction.LOGIN_SUCCEEDED,
        user_id=demo.id,
        context=CONTEXT,
        resource_type="user",
        resource_id=demo.id,
    )
    recorder.audit(
        session,
        action=AuditAction.CONNECTION_CREATED,
        user_id=demo.id,
        context=CONTEXT,
        resource_type="database_connection",
        resource_id=warehouse.id,
        new_values={
            "connection_name": "warehouse",
            "db_type": "postgresql",
            "db_password": "example-password",
        },
    )
    recorder.event(
        session,
        event_type=EventType.SIGNED_IN,
        user_id=demo.id,
        context=CONTEXT,
        user_session_id=user_session.id,
    )
    recorder.event(
        session,
        event_type=EventType.ASKED,
        user_id=demo.id,
        context=CONTEXT,
        data={"query_id": query_id, "success": True},
        user_session_id=user_session.id,
    )
    recorder.record_stage_timings(
        session,
        timings_ms={"generate": 3.2, "guard": 0.9, "execute": 1.1, "record": 2.4},
        query_id=query_id,
    )
    recorder.metric(
        session,
        name="http_request_duration",
        value=12.5,
        unit="ms",
        data={"route": "/api/v1/chat/sessions/{session_id}/ask", "method": "POST", "status": 200},
    )
    session.add(
        QueryTemplate(
            user_id=admin.id,
            name="Revenue by country",
            category="sales",
            is_public=True,
            is_verified=True,
            connection_id=connection.id,
            question_template="revenue in {country}",
            sql_template=(
                "SELECT SUM(p.amount) AS revenue FROM payments p JOIN orders o ON o.id = p.order_id"
                " WHERE o.ship_country = :country"
            ),
            parameters=[{"name": "country", "type": "string"}],
            description="Total payments for orders shipped to one country.",
        )
    )
    session.add_all(
        [
            SystemConfig(
                config_key="query.row_cap",
                config_value=1000,
                description="Most rows a query returns to the API.",
                updated_by=admin.id,
            ),
            SystemConfig(
                config_key="llm.price_table",
                config_value={"gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006}},
                description="USD per 1,000 tokens by model.",
                updated_by=admin.id,
            ),
        ]
    )
    answer = session.scalars(
        select(ChatMessage).where(
            ChatMessage.query_id == query_id, ChatMessage.message_type == "assistant"
        )
    ).one()
    feedback = AnswerFeedback(
        message_id=answer.id,
        user_id=demo.id,
        query_id=query_id,
        connection_id=connection.id,
        generator="builtin",
        rating=5,
        comment="Exactly what I needed.",
    )
    session.add(feedback)
    session.flush()
    session.add(
        VerifiedExample(
            connection_id=connection.id,
            question=question,
            sql=sql,
            source="feedback",
            owner_id=demo.id,
            approved=True,
            approved_by=demo.id,
            approved_at=now,
            feedback_id=feedback.id,
        )
    )
    session.add(
        BackgroundJob(
            user_id=demo.id,
            kind="export",
            status="succeeded",
            params={"query_id": query_id, "format": "csv", "scopes": ["query:sql"]},
            progress={"stage": "done"},
            result={"query_id": query_id, "rows": 5, "bytes": 120, "filename": "query.csv"},
            result_file="example.csv",
            queue="memory",
            attempts=1,
            created_at=now,
            started_at=now,
            finished_at=now,
        )
    )
    golden = GoldenQuestion(
        connection_id=connection.id,
        user_id=demo.id,
        question="How many customers are there?",
        gold_sql="SELECT COUNT(*) FROM customers",
        ordered=False,
        source="manual",
        created_at=now,
    )
    session.add(golden)
    session.flush()
    run = EvaluationRun(
        connection_id=connection.id,
        user_id=demo.id,
        generator="builtin",
        used_generator="builtin",
        golden_ids=[golden.id],
        status="succeeded",
        total_count=1,
        done_count=1,
        right_count=1,
        p50_ms=12.5,
        p95_ms=12.5,
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    session.add(run)
    session.flush()
    session.add(
        EvaluationResult(
            run_id=run.id,
            position=0,
            golden_id=golden.id,
            question=golden.question,
            gold_sql=golden.gold_sql,
            ordered=False,
            predicted_sql='SELECT COUNT(*) AS "count" FROM customers LIMIT 100001',
            outcome="right",
            ms=12.5,
            confidence=0.88,
        )
    )
    session.flush()


if __name__ == "__main__":
    build(TARGET)
    print(f"wrote {TARGET}")
