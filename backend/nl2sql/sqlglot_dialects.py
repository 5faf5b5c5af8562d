"""sqlglot's dialects with the renderings they get wrong for the databases we run on.

Registered under sqlglot's own names (a dialect class of the same name replaces sqlglot's in
its registry), so every parse and render of the platform — the guard, parameter binding,
templates, the semantic layer, the builtin engine — uses them through the usual
`dialect="postgres"`. `backend/__init__.py` imports this module, so the fixes are in place
before any SQL is rendered.

* PostgreSQL: `current_time` came back as `CURRENT_TIME()`, a syntax error on PostgreSQL (it
  takes no parentheses, or a precision: `CURRENT_TIME(3)`).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres as SqlglotPostgres
from sqlglot.generators.postgres import PostgresGenerator


def _current_time(generator: PostgresGenerator, expression: exp.CurrentTime) -> str:
    precision = expression.args.get("this")
    return f"CURRENT_TIME({generator.sql(precision)})" if precision else "CURRENT_TIME"


class Postgres(SqlglotPostgres):
    class Generator(PostgresGenerator):
        TRANSFORMS = {**PostgresGenerator.TRANSFORMS, exp.CurrentTime: _current_time}
