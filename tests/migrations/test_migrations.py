"""The migrations build the models' schema on SQLite and PostgreSQL, and undo it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from backend.core.migrations import downgrade_to_base, head_revision, upgrade_to_head
from backend.models import Base
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database

PRODUCT_TABLES = {
    "background_jobs",
    "answer_feedback",
    "verified_examples",
    "golden_questions",
    "evaluation_runs",
    "evaluation_results",
    "semantic_layers",
    "semantic_layer_versions",
}
"""Tables the product added to the seed's (procrastinate's live in their own schema)."""
SEED_TABLES = {
    "users",
    "refresh_tokens",
    "api_keys",
    "chat_sessions",
    "chat_messages",
    "query_analytics",
    "user_sessions",
    "database_connections",
    "database_schemas",
    "audit_logs",
    "events",
    "performance_metrics",
    "query_templates",
    "system_config",
    "alembic_version",
}

SEED_COLUMNS = {
    "users": "id email password_hash full_name company role is_active created_at updated_at "
    "last_login token_usage preferences",
    "refresh_tokens": "id user_id token_hash expires_at revoked_at is_active is_revoked "
    "device_info created_at",
    "api_keys": "id user_id key_name key_hash key_prefix permissions is_active created_at "
    "expires_at last_used usage_count",
    "chat_sessions": "id user_id title is_active created_at updated_at last_message_at "
    "message_count",
    "chat_messages": "id session_id message_type content query_id sql_query query_result "
    "execution_time error_message timestamp sequence_number",
    "query_analytics": "id query_id user_id question sql_query execution_time row_count success "
    "error_message chart_type prompt_tokens completion_tokens total_tokens llm_model "
    "llm_cost_estimate timestamp created_at",
    "user_sessions": "id user_id session_start session_end ip_address user_agent queries_count "
    "is_active",
    "database_connections": "id user_id connection_name db_type db_host db_port db_user "
    "encrypted_db_password db_name created_at updated_at",
    "database_schemas": "id database_name table_name schema_info last_updated row_count table_size",
    "audit_logs": "id user_id action resource_type resource_id old_values new_values ip_address "
    "user_agent timestamp success error_message",
    "events": "id event_type user_id event_data timestamp ip_address user_agent session_id",
    "performance_metrics": "id metric_name metric_value metric_unit timestamp additional_data",
    "query_templates": "id user_id name description question_template sql_template category "
    "is_public is_verified usage_count created_at updated_at",
    "system_config": "id config_key config_value description is_sensitive created_at "
    "updated_at updated_by",
    "alembic_version": "version_num",
}


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        admin_url: str = request.getfixturevalue("pg_admin_url")
        url = create_pg_database(admin_url)
        try:
            yield url
        finally:
            drop_pg_database(admin_url, url)


def test_upgrade_head_creates_every_seed_table_and_column(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) == SEED_TABLES | PRODUCT_TABLES
        for table, columns in SEED_COLUMNS.items():
            present = {c["name"] for c in inspector.get_columns(table)}
            missing = set(columns.split()) - present
            assert not missing, f"{table} lacks {missing}"
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == head_revision()
    finally:
        engine.dispose()


def test_models_and_migrations_do_not_drift(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_base_removes_every_table_and_upgrade_again_works(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    downgrade_to_base(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    upgrade_to_head(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        assert set(inspect(engine).get_table_names()) == SEED_TABLES | PRODUCT_TABLES
    finally:
        engine.dispose()


def test_indexes_cover_the_hot_queries(empty_db_url: str) -> None:
    upgrade_to_head(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        inspector = inspect(engine)

        def indexed(table: str) -> set[tuple[str, ...]]:
            found = {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}
            found |= {tuple(uq["column_names"]) for uq in inspector.get_unique_constraints(table)}
            return found

        assert ("user_id", "timestamp") in indexed("query_analytics")
        assert ("timestamp",) in indexed("audit_logs")
        assert ("user_id", "timestamp") in indexed("audit_logs")
        assert ("event_type", "timestamp") in indexed("events")
        assert ("session_id", "sequence_number") in indexed("chat_messages")
        assert ("token_hash",) in indexed("refresh_tokens")
        assert ("key_hash",) in indexed("api_keys")
    finally:
        engine.dispose()


def test_the_queue_schema_lives_apart_and_goes_with_a_downgrade(empty_db_url: str) -> None:
    if not empty_db_url.startswith("postgresql"):
        pytest.skip("procrastinate's queue exists only on PostgreSQL")
    upgrade_to_head(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        queue_tables = set(inspect(engine).get_table_names(schema="procrastinate"))
        assert {"procrastinate_jobs", "procrastinate_workers"} <= queue_tables
        downgrade_to_base(empty_db_url)
        assert "procrastinate" not in inspect(engine).get_schema_names()
    finally:
        engine.dispose()
