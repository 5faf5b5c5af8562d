"""Attacks on the guard and the executor, as data: add a line to add an attack.

Each attack is SQL a user could send to `POST /query/sql`, or an LLM could answer with on the
ask path. `refused` attacks must be answered 400 by the guard (nothing reaches the target);
the others (resource bombs the guard cannot tell from analytics) must complete with a
documented status (`BOMB_STATUSES`) within the statement timeout. Dialects are connection
`db_type`s. `SECRET` is planted where an attack would find it (a file next to the target, a
hidden schema on PostgreSQL); no answer may contain it.
"""

from __future__ import annotations

from dataclasses import dataclass

SECRET = "TOPSECRET-4242-guard"
REFUSED_CODES = frozenset({"sql_refused", "sql_not_parseable"})
BOMB_STATUSES = frozenset({200, 400, 502, 504})
"""A bomb is stopped by the row cap (200, truncated), the statement timeout (504), or the
database giving up (502); never a 500."""
DIALECTS = ("sqlite", "duckdb", "postgresql", "mysql")


@dataclass(frozen=True, slots=True)
class Attack:
    sql: str
    kind: str
    refused: bool = True


def _nested(depth: int) -> str:
    return "SELECT " + "(" * depth + "1" + ")" * depth


COMMON = [
    # writes in every disguise
    Attack("DELETE FROM orders", "write"),
    Attack("UPDATE customers SET name = 'x'", "write"),
    Attack("INSERT INTO customers (id, name) VALUES (99, 'x')", "write"),
    Attack("DROP TABLE orders", "write"),
    Attack("CREATE TABLE stolen AS SELECT * FROM customers", "write"),
    Attack("ALTER TABLE customers ADD COLUMN x INT", "write"),
    Attack("SELECT * INTO stolen FROM customers", "write"),
    Attack("SELECT 1; DELETE FROM orders", "write"),
    Attack("SELECT 1 /* ; */; DROP TABLE orders -- x", "write"),
    Attack("/* SELECT */ DELETE FROM orders", "write"),
    Attack("SELECT */ DELETE FROM orders", "write"),
    Attack("-- SELECT\nUPDATE orders SET amount = 0", "write"),
    Attack("SELECT * FROM orders FOR UPDATE", "write"),
    Attack("BEGIN", "write"),
    Attack("COMMIT", "write"),
    Attack("SET autocommit = 1", "write"),
    Attack("CALL some_procedure()", "write"),
    Attack("EXPLAIN DELETE FROM orders", "write"),
    # unparseable, incomplete, too deep
    Attack("SELECT", "parse"),
    Attack("SELECT FROM customers", "parse"),
    Attack("SELECT * FROM", "parse"),
    Attack(_nested(60), "parse"),
    Attack(_nested(3000), "parse"),
    Attack("SELECT " + " + ".join(["1"] * 3000), "parse"),
    Attack("SELECT " + "CASE WHEN 1 = 1 THEN " * 80 + "1" + " END" * 80, "parse"),
    # tables that are not the connection's
    Attack("SELECT * FROM users", "catalog"),
    Attack("SELECT * FROM information_schema.tables", "catalog"),
    Attack("SELECT * FROM customers UNION SELECT * FROM nowhere.secrets", "catalog"),
]

BOMBS = [
    # the guard cannot tell these from analytics: the executor's bounds stop them
    Attack(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "bomb",
        refused=False,
    ),
    Attack(
        "SELECT count(*) FROM customers a, customers b, customers c, customers d, customers e, "
        "customers f, customers g, customers h, customers i, customers j, customers k, "
        "customers l, customers m, customers n, customers o, customers p, customers q, "
        "customers r, customers s, customers t, customers u",
        "bomb",
        refused=False,
    ),
]

BY_DIALECT: dict[str, list[Attack]] = {
    "postgresql": [
        Attack("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "write"),
        Attack("WITH u AS (UPDATE orders SET amount = 0 RETURNING id) SELECT 1", "write"),
        Attack("COPY orders TO '/tmp/orders.csv'", "write"),
        Attack("COPY (SELECT 1) TO PROGRAM 'id'", "write"),
        Attack("DO $$ BEGIN DELETE FROM orders; END $$", "write"),
        Attack("EXPLAIN ANALYZE DELETE FROM orders", "write"),
        Attack("SET transaction_read_only = off", "write"),
        Attack("SELECT set_config('transaction_read_only', 'off', false)", "function"),
        Attack("SELECT * FROM orders FOR NO KEY UPDATE", "write"),
        Attack("SELECT 1; SET TRANSACTION READ WRITE; DELETE FROM orders", "write"),
        Attack("LOCK TABLE orders", "write"),
        # catalog access, the XML functions and relation-name casts of defect 1
        Attack(
            "SELECT xpath('//secret/text()', "
            "schema_to_xml_and_xmlschema('hidden', true, false, ''))",
            "xml",
        ),
        Attack("SELECT database_to_xml_and_xmlschema(true, true, '')", "xml"),
        Attack("SELECT database_to_xml(true, true, '')", "xml"),
        Attack("SELECT query_to_xml('select * from hidden.creds', true, false, '')", "xml"),
        Attack("SELECT query_to_xmlschema('select 1', true, false, '')", "xml"),
        Attack("SELECT schema_to_xmlschema('hidden', true, false, '')", "xml"),
        Attack("SELECT database_to_xmlschema(true, true, '')", "xml"),
        Attack("SELECT table_to_xml('hidden.creds', true, false, '')", "xml"),
        Attack("SELECT table_to_xml('hidden.creds'::regclass, true, false, '')", "xml"),
        Attack("SELECT 'hidden.creds'::regclass::oid", "cast"),
        Attack("SELECT CAST('pg_authid' AS regclass)", "cast"),
        Attack("SELECT 'now'::regproc", "cast"),
        Attack("SELECT * FROM hidden.creds", "catalog"),
        Attack("SELECT * FROM pg_catalog.pg_authid", "catalog"),
        Attack("SELECT rolpassword FROM pg_authid", "catalog"),
        Attack("SELECT * FROM pg_shadow", "catalog"),
        Attack("TABLE pg_settings", "catalog"),
        Attack("SELECT to_json(c) FROM pg_class c", "catalog"),
        Attack("SELECT json_agg(x) FROM (SELECT * FROM hidden.creds) x", "catalog"),
        Attack("SELECT row_to_json(t) FROM hidden.creds t", "catalog"),
        Attack("SELECT json_populate_record(NULL::hidden.creds, '{}')", "json"),
        Attack("SELECT * FROM jsonb_to_record('{}') AS t(secret text)", "json"),
        Attack("SELECT * FROM pg_authid", "catalog"),
        Attack("SELECT * FROM xmltable('/a' PASSING '<a/>' COLUMNS a int)", "xml"),
        Attack("SELECT lo_from_bytea(0, 'x')", "file"),
        Attack("SELECT loread(lo_open(1, 262144), 100)", "file"),
        Attack("SELECT current_setting('data_directory')", "function"),
        Attack("SELECT current_user", "function"),
        Attack("SELECT user", "function"),
        Attack("SELECT version()", "function"),
        # files, large objects, other servers, sleeping
        Attack("SELECT pg_read_file('/etc/passwd')", "file"),
        Attack("SELECT pg_ls_dir('.')", "file"),
        Attack("SELECT lo_import('/etc/passwd')", "file"),
        Attack("SELECT lo_get(1)", "file"),
        Attack("SELECT * FROM dblink('dbname=postgres', 'select 1') AS t(a int)", "file"),
        Attack("SELECT pg_sleep(30)", "function"),
        Attack("SELECT pg_catalog.pg_sleep(30)", "function"),
        Attack("SELECT public.lower('x')", "function"),
        Attack("SELECT repeat('x', 100000000)", "function"),
        Attack("SELECT length(lpad('x', 1000000000, 'y'))", "bomb"),
        Attack("SELECT length(format('%1000000000s', 'x'))", "bomb"),
        Attack("SELECT * FROM generate_series(1, 1000000000000) g", "bomb", refused=False),
        Attack("SELECT count(*) FROM generate_series(1, 1000000000000) g", "bomb", refused=False),
    ],
    "sqlite": [
        Attack("ATTACH DATABASE '/tmp/evil.db' AS evil", "write"),
        Attack("PRAGMA query_only = OFF", "write"),
        Attack("PRAGMA writable_schema = ON", "write"),
        Attack("VACUUM INTO '/tmp/copy.db'", "write"),
        Attack("REPLACE INTO customers (id, name) VALUES (1, 'x')", "write"),
        Attack("SELECT * FROM sqlite_master", "catalog"),
        Attack("SELECT sql FROM sqlite_schema", "catalog"),
        Attack("SELECT * FROM pragma_table_info('customers')", "catalog"),
        Attack("SELECT sqlite_version()", "function"),
        Attack("SELECT sqlite_source_id()", "function"),
        Attack("SELECT load_extension('/tmp/evil.so')", "file"),
        Attack("SELECT readfile('secret.txt')", "file"),
        Attack("SELECT writefile('/tmp/x', 'data')", "file"),
        Attack("SELECT * FROM fsdir('/')", "file"),
        Attack("SELECT randomblob(100000000)", "function"),
        Attack("SELECT zeroblob(100000000)", "function"),
        # A width or precision past the guard's bound: one call that no timeout interrupts.
        Attack("SELECT length(printf('%.*c', 100000000, 'x'))", "bomb"),
        Attack("SELECT printf('%.*c', 2000000000, 'x')", "bomb"),
        Attack("SELECT length(format('%2000000000c', 'x'))", "bomb"),
    ],
    "duckdb": [
        # 2 GB built in one call, inside the platform's own process.
        Attack("SELECT length(lpad('x', 1000000000, 'y'))", "bomb"),
        Attack("SELECT length(format('{:>1000000000}', 'x'))", "bomb"),
        # Built in one call outside DuckDB's memory limit: 7 GB, 40 s past the timeout.
        Attack("SELECT len(range(100000000))", "bomb"),
        Attack(
            "SELECT length(" + "replace(" * 8 + "'aaaaaaaaaa'" + ", 'a', 'aaaaaaaaaa')" * 8 + ")",
            "bomb",
        ),
        Attack("INSTALL httpfs", "write"),
        Attack("LOAD httpfs", "write"),
        Attack("ATTACH 'other.duckdb' AS other", "write"),
        Attack("SET enable_external_access = true", "write"),
        Attack("COPY orders TO 'out.csv'", "write"),
        Attack("EXPORT DATABASE '/tmp/x'", "write"),
        Attack("PRAGMA enable_profiling", "write"),
        Attack("SELECT * FROM read_csv('secret.txt')", "file"),
        Attack("SELECT * FROM read_csv_auto('secret.txt')", "file"),
        Attack("SELECT * FROM read_text('secret.txt')", "file"),
        Attack("SELECT * FROM read_blob('secret.txt')", "file"),
        Attack("SELECT * FROM read_parquet('x.parquet')", "file"),
        Attack("SELECT * FROM read_json('x.json')", "file"),
        Attack("SELECT * FROM read_json_objects('secret.txt')", "file"),
        Attack("SELECT * FROM read_ndjson_auto('secret.txt')", "file"),
        Attack("SELECT * FROM glob('*')", "file"),
        Attack("SELECT * FROM 'secret.txt'", "file"),
        Attack("FROM 'secret.txt'", "file"),
        Attack("SELECT * FROM sqlite_scan('x.db', 't')", "file"),
        Attack("SELECT * FROM query('DELETE FROM orders')", "function"),
        Attack("SELECT * FROM query_table('orders')", "function"),
        Attack("SELECT * FROM duckdb_tables()", "catalog"),
        Attack("SELECT * FROM duckdb_settings()", "catalog"),
        Attack("SELECT current_setting('threads')", "function"),
        Attack("SELECT getenv('HOME')", "function"),
        Attack("SELECT version()", "function"),
        Attack("SELECT user", "function"),
        Attack("SELECT 'abc'.upper()", "function"),
        Attack("SELECT count(*) FROM range(1000000000000)", "bomb", refused=False),
    ],
    "mysql": [
        Attack("SELECT * FROM orders LOCK IN SHARE MODE", "write"),
        Attack("SELECT * FROM customers INTO OUTFILE '/tmp/x'", "write"),
        Attack("LOAD DATA INFILE '/etc/passwd' INTO TABLE customers", "write"),
        Attack("HANDLER orders OPEN", "write"),
        Attack("SET GLOBAL max_execution_time = 0", "write"),
        Attack("SELECT /*+ MAX_EXECUTION_TIME(0) */ * FROM orders", "write"),
        Attack("SELECT 1 /*!50000 , SLEEP(10) */", "write"),
        Attack("SELECT 1 # c\n; DELETE FROM orders", "write"),
        Attack("SELECT user, authentication_string FROM mysql.user", "catalog"),
        Attack("SELECT * FROM information_schema.processlist", "catalog"),
        Attack("SELECT * FROM performance_schema.threads", "catalog"),
        Attack("SELECT @@datadir", "catalog"),
        Attack("SELECT LOAD_FILE('/etc/passwd')", "file"),
        Attack("SELECT SLEEP(30)", "function"),
        Attack("SELECT BENCHMARK(100000000000, MD5('x'))", "function"),
        Attack("SELECT GET_LOCK('x', 10)", "function"),
        Attack("SELECT USER()", "function"),
        Attack("SELECT VERSION()", "function"),
        Attack("SELECT EXTRACTVALUE('<a>1</a>', '/a')", "xml"),
        Attack("SELECT UPDATEXML('<a/>', '/a', '<b/>')", "xml"),
        Attack("SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) AS t", "json"),
    ],
}


def attacks_for(db_type: str) -> list[Attack]:
    return [*COMMON, *BY_DIALECT[db_type], *BOMBS]
