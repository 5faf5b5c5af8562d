"""The SQL guard, the security boundary: one read-only query over known tables, with a row cap.

It parses with sqlglot in the target dialect and walks the whole tree; it never looks at the SQL
text with regular expressions. What it returns is re-rendered from the parsed tree without
comments, so the database runs exactly what the guard inspected (a comment the parser skipped
cannot smuggle anything in).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.tokenizer_core import Token, TokenType

from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.nl2sql.allowed_functions import (
    function_label,
    is_allowed_function,
    is_allowed_type,
    is_table_function,
)
from backend.nl2sql.errors import GuardRefused, SqlNotParseable, SqlReadsHidden
from backend.semantic.visibility import NOTHING_HIDDEN, HiddenItems

SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "duckdb": "duckdb",
}
"""Connection `db_type` (or a sqlglot name) to the sqlglot dialect the guard parses with."""

MAX_SQL_LENGTH = 100_000
MAX_NESTING = 24
"""Deepest nesting of brackets and CASE expressions the guard parses."""
MAX_TREE_DEPTH = 400
"""Deepest parsed tree the guard accepts (long chains of operators nest without brackets)."""


class Rule:
    """Names of the rules; a refusal's `details["rule"]` is one of these."""

    EMPTY = "empty_sql"
    TOO_LONG = "sql_too_long"
    SINGLE_STATEMENT = "single_statement"
    READ_ONLY_STATEMENT = "read_only_statement"
    WRITE_IN_QUERY = "write_in_query"
    SELECT_INTO = "select_into"
    LOCKING_CLAUSE = "locking_clause"
    FUNCTION_NOT_ALLOWED = "function_not_allowed"
    TYPE_NOT_ALLOWED = "type_not_allowed"
    TOO_DEEP = "sql_too_deep"
    TABLE_FUNCTION = "table_function"
    CATALOG_ACCESS = "catalog_access"
    UNKNOWN_TABLE = "unknown_table"
    PARAMETERS = "parameters"
    SERVER_VARIABLE = "server_variable"
    EXECUTABLE_COMMENT = "executable_comment"
    OPTIMIZER_HINT = "optimizer_hint"
    PARSEABLE = "parseable_sql"
    HIDDEN_TABLE = "hidden_table"
    HIDDEN_COLUMN = "hidden_column"
    TEXT_SIZE = "text_size"
    LIST_SIZE = "list_size"


_STATEMENT_NAMES = [
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "TruncateTable",
    "Command",
    "Copy",
    "Set",
    "Pragma",
    "Attach",
    "Detach",
    "Transaction",
    "Commit",
    "Rollback",
    "Use",
    "Describe",
    "Cache",
    "Uncache",
    "Refresh",
    "LoadData",
    "Grant",
    "Revoke",
    "Analyze",
    "Kill",
    "Install",
    "Summarize",
    "Show",
    "Declare",
    "Execute",
    "Into",
]
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name) for name in _STATEMENT_NAMES if hasattr(exp, name)
)
"""Statements that change data, schema, session or server state, wherever they appear."""

_TOP_LEVEL_QUERIES = (exp.Select, exp.SetOperation)


_CATALOG_SCHEMAS = frozenset(
    {"pg_catalog", "information_schema", "mysql", "sys", "performance_schema", "pg_toast"}
)
_CATALOG_TABLE_PREFIXES = ("sqlite_", "pg_", "duckdb_", "information_schema")
_DEFAULT_SCHEMAS = {"sqlite": {"main"}, "duckdb": {"main"}, "postgres": {"public"}, "mysql": set()}


@dataclass(frozen=True, slots=True)
class GuardedSql:
    sql: str
    """The accepted query, rendered in the target dialect, with the row cap applied."""
    dialect: str
    tables: list[str] = field(default_factory=list)
    """Snapshot tables the query reads, sorted."""
    limit: int = 0
    """The LIMIT of the outermost query after the guard: the caller's, or the cap."""
    limit_applied: bool = False
    """Whether the guard added or lowered the outermost LIMIT."""
    parameters: list[str] = field(default_factory=list)
    """Named bind parameters (`:name`) the SQL uses, when the caller allowed them."""
    written_limit: int | None = None
    """The outermost literal LIMIT the SQL had before the guard capped it, if any."""
    limit_parameter: str | None = None
    """The parameter of the outermost LIMIT (`LIMIT :top`): the guard cannot lower it, so the
    caller binds at most the row cap to it."""
    shown_sql: str | None = None
    """With `shown_row_cap`: the same query with that cap as its LIMIT where the guard applied
    `row_cap` (what a user is shown when `row_cap` carries a probe row); else `sql`."""


def sqlglot_dialect(db_type: str) -> str:
    try:
        return SQLGLOT_DIALECTS[db_type.lower()]
    except KeyError:
        raise GuardRefused(
            "The guard does not know this database dialect.",
            details={"rule": "unknown_dialect", "dialect": db_type},
        ) from None


def _refuse(rule: str, message: str, **details: object) -> GuardRefused:
    return GuardRefused(message, details={"rule": rule, **details})


def _is_relation_position(node: exp.Expr) -> bool:
    parent = node.parent
    return isinstance(parent, exp.Table | exp.From | exp.Join | exp.Lateral) and (
        parent.this is node
    )


def _visible_ctes(table: exp.Table) -> set[str]:
    """CTE names a table reference can resolve to, following SQL's scoping.

    Inside the i-th CTE of a WITH only the earlier ones are visible (and itself when
    RECURSIVE), so a later CTE cannot shadow a catalog table referenced in an earlier one.
    """
    visible: set[str] = set()
    child: exp.Expr = table
    parent = table.parent
    skip_with: exp.With | None = None
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            ctes = list(parent.expressions)
            position = ctes.index(child)
            upto = position + 1 if parent.args.get("recursive") else position
            visible.update(c.alias_or_name.lower() for c in ctes[:upto])
            skip_with = parent
        elif isinstance(parent, exp.Query):
            with_clause = parent.args.get("with_") or parent.args.get("with")
            if isinstance(with_clause, exp.With) and with_clause is not skip_with:
                visible.update(c.alias_or_name.lower() for c in with_clause.expressions)
        child, parent = parent, parent.parent
    return visible


_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END})


def _check_tokens(tokens: list[Token], dialect: str | None) -> None:
    """Refuse MySQL executable comments and nesting deeper than `MAX_NESTING`.

    The parser recurses once per level of nesting, so depth is bounded before it runs.
    """
    depth = 0
    for token in tokens:
        if token.token_type in _OPENERS:
            depth += 1
            if depth > MAX_NESTING:
                raise _too_deep()
        elif token.token_type in _CLOSERS:
            depth -= 1
        # MySQL runs the body of /*! ... */ and optimizer hints /*+ ... */; other engines
        # ignore them. The rendered SQL drops comments anyway, but such a comment is an attack
        # signature.
        if dialect == "mysql":
            for comment in token.comments or ():
                if comment.lstrip().startswith(("!", "+")):
                    raise _refuse(
                        Rule.EXECUTABLE_COMMENT, "MySQL executable comments are not allowed."
                    )


def _too_deep() -> SqlNotParseable:
    return SqlNotParseable(
        "The SQL is nested too deeply.",
        details={
            "rule": Rule.TOO_DEEP,
            "max_nesting": MAX_NESTING,
            "max_tree_depth": MAX_TREE_DEPTH,
        },
    )


def _tree_depth_within(tree: exp.Expr, limit: int) -> bool:
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return True


def parse_statements(sql: str, dialect: str | None) -> list[exp.Expr]:
    """The statements of `sql` in the sqlglot `dialect`, bounded in length and depth.

    Raises `SqlNotParseable` (400) for text that does not parse, that nests deeper than
    `MAX_NESTING` brackets or CASEs, or whose tree is deeper than `MAX_TREE_DEPTH` (a long
    chain of operators): sqlglot and the databases recurse once per level.
    """
    if len(sql) > MAX_SQL_LENGTH:
        raise _refuse(Rule.TOO_LONG, "The SQL is too long.", max_length=MAX_SQL_LENGTH)
    try:
        reader = Dialect.get_or_raise(dialect)
        tokens = reader.tokenize(sql)
        _check_tokens(tokens, dialect)
        statements = [s for s in reader.parser().parse(tokens, sql) if s is not None]
    except (ParseError, TokenError) as exc:
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise SqlNotParseable(
            details={"rule": Rule.PARSEABLE, "reason": reason, "dialect": dialect}
        ) from exc
    except RecursionError:
        raise _too_deep() from None
    if not all(_tree_depth_within(statement, MAX_TREE_DEPTH) for statement in statements):
        raise _too_deep()
    return statements


class ParsedSql:
    """SQL text and the statements the guard's parser read from it (`parse_sql`).

    A generator that parses its own SQL to judge it hands this on with its generation, and the
    guard then checks and renders these statements instead of parsing the same text again.
    The guard takes them once and only for exactly this text and dialect (it lowers the LIMIT
    of the tree it renders): a second guard of the same text, or of other text, parses afresh.
    Readers before the guard must not modify the statements; whatever they hold, the guard
    checks the tree it is handed and runs nothing but that tree's rendering.
    """

    __slots__ = ("_lock", "_statements", "dialect", "text")

    def __init__(self, text: str, dialect: str, statements: list[exp.Expr]) -> None:
        self.text = text
        self.dialect = dialect
        self._statements: list[exp.Expr] | None = statements
        self._lock = threading.Lock()

    @property
    def statement(self) -> exp.Expr | None:
        """The one statement, to read (None when the text held several, or once taken)."""
        statements = self._statements
        return statements[0] if statements is not None and len(statements) == 1 else None

    def take(self, text: str, dialect: str) -> list[exp.Expr] | None:
        """The statements, if they were read from `text` in `dialect` and not taken yet."""
        with self._lock:
            statements = self._statements
            if statements is None or text != self.text or dialect != self.dialect:
                return None
            self._statements = None
            return statements


def parse_sql(sql: str, dialect: str) -> ParsedSql:
    """`sql` (stripped, as the guard reads it) parsed as `parse_statements` does, to hand to
    `guard_sql` as `parsed`; raises what `parse_statements` raises."""
    text = sql.strip()
    return ParsedSql(text, dialect, parse_statements(text, dialect))


def _parse_single(sql: str, dialect: str, parsed: ParsedSql | None = None) -> exp.Expr:
    statements = parsed.take(sql, dialect) if parsed is not None else None
    if statements is None:
        statements = parse_statements(sql, dialect)
    elif not all(_tree_depth_within(statement, MAX_TREE_DEPTH) for statement in statements):
        raise _too_deep()  # checked when parsed; again in case a reader grew the tree since
    if len(statements) != 1:
        raise _refuse(
            Rule.SINGLE_STATEMENT,
            "Exactly one statement is allowed.",
            statement_count=len(statements),
        )
    return statements[0]


def _unwrap(statement: exp.Expr) -> exp.Expr:
    while isinstance(statement, exp.Subquery | exp.Paren) and not statement.args.get("alias"):
        inner = statement.this
        if not isinstance(inner, exp.Expr):
            break
        statement = inner
    return statement


def _check_tree(tree: exp.Expr, *, dialect: str, parameters: Collection[str] | None = None) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            kind = type(node).__name__.upper()
            if isinstance(node, exp.Into):
                raise _refuse(Rule.SELECT_INTO, "SELECT ... INTO writes; it is not allowed.")
            raise _refuse(
                Rule.WRITE_IN_QUERY,
                f"{kind} is not allowed anywhere in a query.",
                statement=kind,
            )
        if isinstance(node, exp.Select):
            if not node.expressions:
                raise SqlNotParseable(
                    "The SQL is incomplete: a SELECT without anything to select.",
                    details={"rule": Rule.PARSEABLE, "reason": "incomplete SELECT"},
                )
            if node.args.get("into"):
                raise _refuse(Rule.SELECT_INTO, "SELECT ... INTO writes; it is not allowed.")
            if node.args.get("locks"):
                raise _refuse(Rule.LOCKING_CLAUSE, "Locking clauses (FOR UPDATE/SHARE) lock rows.")
        elif isinstance(node, exp.Lock):
            raise _refuse(Rule.LOCKING_CLAUSE, "Locking clauses (FOR UPDATE/SHARE) lock rows.")
        elif isinstance(node, exp.Placeholder) and parameters is not None:
            if node.name not in parameters:
                raise _refuse(
                    Rule.PARAMETERS,
                    "Only the declared named parameters (:name) are allowed.",
                    parameter=node.name or "?",
                )
        elif isinstance(node, exp.Placeholder | exp.Parameter):
            raise _refuse(Rule.PARAMETERS, "Parameters and variables are not allowed.")
        elif isinstance(node, exp.Hint):
            # MySQL hints such as MAX_EXECUTION_TIME(0) would lift the statement timeout.
            raise _refuse(Rule.OPTIMIZER_HINT, "Optimizer hints are not allowed.")
        elif isinstance(node, exp.SessionParameter):
            raise _refuse(Rule.SERVER_VARIABLE, "Server and session variables are not readable.")
        elif isinstance(node, exp.Column) and _is_session_keyword(node, dialect):
            raise _refuse(
                Rule.FUNCTION_NOT_ALLOWED,
                f"{node.name} names the session here, not a column; quote it to read a column.",
                function=node.name.lower(),
            )
        elif isinstance(node, exp.Star) and isinstance(node.parent, exp.Binary | exp.Unary):
            # `SELECT */ DELETE FROM t` parses as `* / "DELETE"`: no database reads it so.
            raise SqlNotParseable(
                "A * cannot be an operand.",
                details={"rule": Rule.PARSEABLE, "reason": "* used as an operand"},
            )
        elif isinstance(node, exp.DataType):
            if not is_allowed_type(node):
                raise _refuse(
                    Rule.TYPE_NOT_ALLOWED,
                    f"Casts to the type {node.sql(dialect=dialect)} are not allowed.",
                    type=node.sql(dialect=dialect),
                )
        elif isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise _refuse(
                Rule.FUNCTION_NOT_ALLOWED,
                "Functions may not be called through a schema or a value (name.function()).",
                function=function_label(node.expression),
            )
        elif isinstance(node, exp.Func):
            _check_function(node, dialect)
    _check_text_growth(tree)


_SESSION_KEYWORDS = {
    # Bare words these engines read as functions of the session (`SELECT user` is the role).
    "postgres": frozenset({"user", "current_role", "system_user"}),
    "duckdb": frozenset({"user", "current_role", "current_user", "session_user"}),
}


def _is_session_keyword(column: exp.Column, dialect: str) -> bool:
    identifier = column.this
    return (
        not column.table
        and isinstance(identifier, exp.Identifier)
        and not identifier.quoted
        and identifier.name.lower() in _SESSION_KEYWORDS.get(dialect, frozenset())
    )


MAX_BUILT_TEXT = 10_000
"""Longest text a padding or formatting function may be asked to build (`lpad(x, n)`, a width
or precision in `printf`/`format`). One such call builds its whole result at once, where no
statement timeout reaches: `lpad('x', 1000000000)` holds 2 GB in DuckDB, inside this process,
for most of a minute, and SQLite 3.40's `printf('%.*c', 2000000000, 'x')` runs half a minute
past any timeout. Sizes must be literal numbers no larger than this."""
_PRINTF_SIZES = re.compile(r"%[-+ #0,!']*(\*|\d+)?(?:\.(\*|\d+))?")
_FMT_SPEC = re.compile(r"{[^{}]*:([^{}]*)}|{[^{}]*{")
_FORMATTERS = frozenset({"printf", "format"})


def _size_too_large(message: str, label: str) -> GuardRefused:
    return _refuse(Rule.TEXT_SIZE, message, function=label, max_size=MAX_BUILT_TEXT)


def _literal_size(node: exp.Expr | None) -> int | None:
    """The integer a size argument is written as, or None when it is not a plain number."""
    if isinstance(node, exp.Neg):
        return None
    if isinstance(node, exp.Literal) and not node.is_string and node.name.isdigit():
        return int(node.name)
    return None


def _check_built_size(node: exp.Func, label: str) -> None:
    """Refuse a padding or formatting call that could build a huge text in one step."""
    if isinstance(node, exp.Pad):
        size = _literal_size(node.args.get("expression"))
        if size is None or size > MAX_BUILT_TEXT:
            raise _size_too_large(
                f"The length given to {label} must be a number no larger than {MAX_BUILT_TEXT:,}.",
                label,
            )
        return
    name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
    if not (isinstance(node, exp.Format) or name in _FORMATTERS):
        return
    pattern = node.this if isinstance(node, exp.Format) else next(iter(node.expressions), None)
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise _size_too_large(f"The format given to {label} must be a text literal.", label)
    text = pattern.name
    sizes = [size for match in _PRINTF_SIZES.finditer(text) for size in match.groups() if size]
    for match in _FMT_SPEC.finditer(text):
        spec = match.group(1)
        if spec is None:  # a width or precision taken from an argument: {:{}}
            sizes.append("*")
        else:
            sizes.extend(re.findall(r"\d+", spec))
    if any(size == "*" or int(size) > MAX_BUILT_TEXT for size in sizes):
        raise _size_too_large(
            f"Widths and precisions in the format given to {label} must be written as numbers "
            f"no larger than {MAX_BUILT_TEXT:,}.",
            label,
        )


MAX_TEXT_GROWTH = 64
"""How many times longer text replacing may make a value along one chain of nested calls
(`replace(x, 'a', 'aaaa')` can make it 4 times longer; a call inside it multiplies). DuckDB
builds a scalar function's result outside its memory limit and its interrupt checks: eight
nested tenfold `replace` calls held a 1 GB value in the platform's process for 12 s past the
timeout. The whole statement's growth, chained through CTEs, is held to its square."""
_GROWERS = (exp.Replace, exp.RegexpReplace)


def _growth(node: exp.Replace | exp.RegexpReplace, label: str) -> int:
    """How many times longer the call can make its text: its replacement must be written in the
    SQL (a column's value as the replacement grows the text by the square of its size)."""
    replacement = node.args.get("replacement")
    if replacement is None:
        return 1
    if not (isinstance(replacement, exp.Literal) and replacement.is_string):
        raise _size_too_large(f"The replacement given to {label} must be a text literal.", label)
    size = len(replacement.name)
    if isinstance(node, exp.RegexpReplace):
        # A pattern may match between every two characters, and each `\N` repeats a match.
        return size + 1 if size else 1
    pattern = node.args.get("expression")
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        found = len(pattern.name)
        return 1 if found == 0 else max(1, -(-size // found))
    return max(1, size)


def _check_text_growth(tree: exp.Expr) -> None:
    """Refuse text replacing that could grow a value more than `MAX_TEXT_GROWTH` times along a
    chain of nested calls, or its square over the statement."""
    total = 1
    for node in tree.find_all(*_GROWERS):
        assert isinstance(node, _GROWERS)  # noqa: S101 - what find_all was asked for
        label = function_label(node)
        factor = _growth(node, label)
        total *= factor
        chain = factor
        ancestor = node.parent
        while ancestor is not None:
            if isinstance(ancestor, _GROWERS):
                chain *= _growth(ancestor, function_label(ancestor))
            ancestor = ancestor.parent
        if chain > MAX_TEXT_GROWTH or total > MAX_TEXT_GROWTH**2:
            raise _refuse(
                Rule.TEXT_SIZE,
                f"Replacing text in {label} could make it more than {MAX_TEXT_GROWTH} times "
                "longer (nested replacements multiply).",
                function=label,
                max_growth=MAX_TEXT_GROWTH,
            )


MAX_BUILT_LIST = 10_000
"""Most elements a list-building series (DuckDB's scalar `range` / `generate_series`) may have.
DuckDB builds the whole list in one call, outside its memory limit and its interrupt checks:
`range(100000000)` held 7 GB in the platform's process for 40 s past the timeout. In FROM the
same functions are tables read row by row, which the timeout and the row cap reach."""


def _check_built_list(node: exp.GenerateSeries, label: str, dialect: str) -> None:
    if (
        dialect != "duckdb"
        or isinstance(node, exp.ExplodingGenerateSeries)  # rows, not a list
        or _is_relation_position(node)
    ):
        return
    bounds = [node.args.get(k) for k in ("start", "end", "step")]
    numbers: list[int] = []
    for bound in bounds:
        if bound is None:
            continue
        negative = isinstance(bound, exp.Neg)
        literal = bound.this if negative else bound
        if not (
            isinstance(literal, exp.Literal) and not literal.is_string and literal.name.isdigit()
        ):
            numbers = []
            break
        numbers.append(-int(literal.name) if negative else int(literal.name))
    else:
        start, end = numbers[0], numbers[1]
        step = numbers[2] if len(numbers) > 2 else 1
        if step != 0 and (end - start) // step + 1 <= MAX_BUILT_LIST:
            return
    raise _refuse(
        Rule.LIST_SIZE,
        f"{label} builds a whole list at once here: its bounds must be numbers written in the "
        f"SQL, for at most {MAX_BUILT_LIST:,} elements (read it in FROM for more rows).",
        function=label,
        max_size=MAX_BUILT_LIST,
    )


def _check_function(node: exp.Func, dialect: str) -> None:
    label = function_label(node)
    if not is_allowed_function(node, dialect):
        raise _refuse(
            Rule.FUNCTION_NOT_ALLOWED,
            f"The function {label} is not allowed.",
            function=label,
        )
    _check_built_size(node, label)
    if isinstance(node, exp.GenerateSeries):
        _check_built_list(node, label, dialect)
    if _is_relation_position(node) and not is_table_function(node):
        raise _refuse(
            Rule.TABLE_FUNCTION,
            f"The function {label} cannot be read as a table.",
            function=label,
        )


def _schema_matches(
    table: TableInfo, schema: str | None, *, dialect: str, snapshot: SchemaSnapshot
) -> bool:
    if schema is None:
        return True
    if dialect == "mysql":
        return schema == snapshot.database_name.lower()
    if table.schema_name:
        return schema == table.schema_name.lower()
    return schema in _DEFAULT_SCHEMAS.get(dialect, set())


def _check_tables(
    tree: exp.Expr, *, snapshot: SchemaSnapshot, dialect: str
) -> tuple[list[str], dict[int, TableInfo]]:
    """The snapshot tables the query reads (sorted), and each table reference's table by the
    reference's `id()`; refuses anything else."""
    known: dict[str, list[TableInfo]] = {}
    for info in snapshot.tables:
        known.setdefault(info.name.lower(), []).append(info)
    read: set[str] = set()
    resolved: dict[int, TableInfo] = {}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            continue  # a table function, checked with the functions
        if not isinstance(table.this, exp.Identifier):
            raise _refuse(
                Rule.UNKNOWN_TABLE,
                "Only tables of this connection's schema may be read.",
                table=table.sql(),
            )
        name = table.name.lower()
        schema = table.db.lower() if table.db else None
        catalog = table.catalog.lower() if table.catalog else None
        if schema is None and catalog is None and name in _visible_ctes(table):
            continue
        match = next(
            (
                info
                for info in known.get(name, ())
                if _schema_matches(info, schema, dialect=dialect, snapshot=snapshot)
            ),
            None,
        )
        # PostgreSQL searches pg_catalog before any schema: an unqualified pg_* name reads the
        # catalog's relation even when the connection has a table of that name.
        shadowed = dialect == "postgres" and schema is None and name.startswith("pg_")
        if match is not None and catalog is None and not shadowed:
            read.add(match.name)
            resolved[id(table)] = match
            continue
        qualified = ".".join(p for p in (catalog, schema, name) if p)
        if (schema in _CATALOG_SCHEMAS or catalog in _CATALOG_SCHEMAS) or name.startswith(
            _CATALOG_TABLE_PREFIXES
        ):
            raise _refuse(
                Rule.CATALOG_ACCESS,
                f"System catalog access is not allowed: {qualified}.",
                table=qualified,
            )
        raise _refuse(
            Rule.UNKNOWN_TABLE,
            f"The table {qualified} is not in this connection's schema.",
            table=qualified,
        )
    return sorted(read), resolved


# --- hidden tables and columns (the connection's semantic layer) ------------------------------


def _hidden(rule: str, message: str, **details: object) -> SqlReadsHidden:
    return SqlReadsHidden(message, details={"rule": rule, **details})


def _source_alias(source: exp.Expr) -> str:
    return str(source.alias_or_name).lower() if source.alias_or_name else ""


def _qualifier(source: exp.Expr) -> exp.Identifier | None:
    """The identifier a source is referred to by (its alias, else its name), as written."""
    alias = source.args.get("alias")
    if isinstance(alias, exp.TableAlias) and isinstance(alias.this, exp.Identifier):
        return alias.this.copy()
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        return source.this.copy()
    return None


_STAR_EXCEPT_KEYS = ("except_", "except")


def _star_modifiers(star: exp.Star) -> tuple[list[exp.Expr], list[exp.Expr], list[exp.Expr]]:
    """A star's `EXCLUDE`/`EXCEPT` columns, `REPLACE` aliases and `RENAME` aliases (DuckDB)."""
    excluded = next((star.args[k] for k in _STAR_EXCEPT_KEYS if star.args.get(k)), None) or []
    return list(excluded), list(star.args.get("replace") or []), list(star.args.get("rename") or [])


def _named(node: exp.Expr, qualifier: exp.Identifier, column: str) -> bool:
    """Whether a modifier's column (`ssn` or `a.ssn`) names `column` of the source `qualifier`."""
    if not isinstance(node, exp.Column) or node.name.lower() != column:
        return False
    return not node.table or node.table.lower() == str(qualifier.name).lower()


class _StarExpansion:
    """The visible columns a `*` or `t.*` stands for, its modifiers applied: excluded columns stay
    out, a replacement takes the place of the first column it names, a renamed column is
    aliased. Hidden columns are left out unless a replacement stands in their place."""

    def __init__(self, star: exp.Star) -> None:
        self.excluded, self.replaced, self.renamed = _star_modifiers(star)
        self.has_modifiers = bool(self.excluded or self.replaced or self.renamed)
        self._used_replacements: set[int] = set()

    def columns(
        self, table: TableInfo, qualifier: exp.Identifier, hidden: HiddenItems
    ) -> list[exp.Expr]:
        out: list[exp.Expr] = []
        for info in table.columns:
            name = info.name.lower()
            if any(_named(node, qualifier, name) for node in self.excluded):
                continue
            replacement = next(
                (r for r in self.replaced if isinstance(r, exp.Alias) and r.alias.lower() == name),
                None,
            )
            if replacement is not None:
                # Like DuckDB: the replacement stands where the first column of its name was.
                if id(replacement) not in self._used_replacements:
                    self._used_replacements.add(id(replacement))
                    out.append(replacement.copy())
                continue
            if hidden.is_column_hidden(table.name, info.name):
                continue
            column: exp.Expr = exp.Column(
                this=exp.to_identifier(info.name, quoted=True), table=qualifier.copy()
            )
            rename = next(
                (
                    r
                    for r in self.renamed
                    if isinstance(r, exp.Alias) and _named(r.this, qualifier, name)
                ),
                None,
            )
            if rename is not None:
                column = exp.alias_(column, rename.args["alias"].copy())
            out.append(column)
        return out

    def unexpanded(self, qualifier: exp.Identifier, names: frozenset[str] | None) -> exp.Expr:
        """`qualifier.*` for a source whose columns are not in the snapshot (a derived table),
        with the modifiers that name its columns (all of them when its columns are unknown)."""
        star = exp.Star()
        if self.has_modifiers:

            def keep(node: exp.Expr, target: exp.Expr) -> bool:
                return names is None or (
                    isinstance(target, exp.Column)
                    and target.name.lower() in names
                    and (not target.table or target.table.lower() == str(qualifier.name).lower())
                )

            excluded = [n.copy() for n in self.excluded if keep(n, n)]
            replaced = [
                n.copy()
                for n in self.replaced
                if isinstance(n, exp.Alias)
                and (names is None or n.alias.lower() in names)
                and id(n) not in self._used_replacements
            ]
            renamed = [
                n.copy() for n in self.renamed if isinstance(n, exp.Alias) and keep(n, n.this)
            ]
            for key, items in (("except_", excluded), ("replace", replaced), ("rename", renamed)):
                if items:
                    star.set(key, items)
        return exp.Column(this=star, table=qualifier)


@dataclass(slots=True)
class _HiddenReads:
    """Resolves the query's column references against the sources in scope (sqlglot's scopes),
    so that only a real read of a hidden column is refused: `ssn` is refused where a table of
    its scope that hides `ssn` may be the one it names (also when the name is ambiguous), and
    passes where it can only name a visible column of another table."""

    resolved: dict[int, TableInfo]
    hidden: HiddenItems
    hiding: dict[str, TableInfo]
    """Tables of the query that hide columns, by every alias they go by anywhere in it."""
    scope_of: dict[int, Scope] = field(default_factory=dict)
    """Each query node's scope, by the node's `id()`."""

    def table_info(self, source: exp.Expr | Scope | None) -> TableInfo | None:
        return self.resolved.get(id(source)) if isinstance(source, exp.Table) else None

    def source(self, scope: Scope | None, alias: str) -> tuple[bool, exp.Expr | Scope | None]:
        """The source `alias` names from `scope` outwards (found, source)."""
        while scope is not None:
            for name, (_, source) in scope.selected_sources.items():
                if name.lower() == alias:
                    return True, source
            scope = scope.parent
        return False, None

    def outputs(self, source: Scope) -> frozenset[str] | None:
        """The column names a derived table or CTE has (a `*` over tables stands for their
        visible columns, as it is narrowed to them); None when they cannot be told."""
        query = source.expression
        if not isinstance(query, exp.Select):
            if not isinstance(query, exp.Query) or any(_is_star(p) for p in query.selects):
                return None
            return frozenset(str(name).lower() for name in query.named_selects)
        names: set[str] = set()
        for projection in query.selects:
            if not _is_star(projection):
                names.add(str(projection.alias_or_name).lower())
                continue
            star = projection if isinstance(projection, exp.Star) else projection.this
            if any(_star_modifiers(star)):
                return None
            starred: list[exp.Expr | Scope | None]
            if isinstance(projection, exp.Star):
                starred = [s for _, s in source.selected_sources.values()]
            else:
                found, named = self.source(source, projection.text("table").lower())
                starred = [named] if found else []
            if not starred:
                return None
            for each in starred:
                info = self.table_info(each)
                if info is not None:
                    names.update(
                        c.name.lower()
                        for c in info.columns
                        if not self.hidden.is_column_hidden(info.name, c.name)
                    )
                    continue
                inner = self.outputs(each) if isinstance(each, Scope) else None
                if inner is None:
                    return None
                names.update(inner)
        return frozenset(names)

    def hidden_column(self, info: TableInfo | None, name: str) -> str | None:
        if info is not None and name in self.hidden.columns_of(info.name):
            return f"{info.name}.{name}"
        return None

    def reads_hidden(self, column: exp.Column, scope: Scope | None) -> str | None:
        """The hidden item (`table.column`, or a table read as a whole row) `column` may read.

        An unqualified name is looked for in its scope's sources, then in the enclosing scopes
        (a correlated reference), as the database does; a source whose columns cannot be told
        may or may not have it, so the search goes on outwards past it.
        """
        name = column.name.lower()
        if column.table:
            qualifier = column.table.lower()
            found, source = self.source(scope, qualifier)
            return self.hidden_column(
                self.table_info(source) if found else self.hiding.get(qualifier), name
            )
        if _is_output_alias(column, name):
            return None
        if scope is not None and isinstance(scope.expression, exp.SetOperation):
            # The ORDER BY of a UNION names its output columns, which its branches computed
            # (and were checked for) themselves.
            return None
        while scope is not None:
            has_it = maybe = False
            for alias, (_, source) in scope.selected_sources.items():
                info = self.table_info(source)
                if info is not None:
                    if info.column(name) is not None:
                        # Ambiguous or not, refused when a hiding table may be the one it names.
                        label = self.hidden_column(info, name)
                        if label is not None:
                            return label
                        has_it = True
                    elif alias.lower() == name and self.hidden.columns_of(info.name):
                        # A bare source name as a value reads its whole row (PostgreSQL, DuckDB).
                        return info.name
                    elif alias.lower() == name:
                        has_it = True
                elif isinstance(source, Scope):
                    outputs = self.outputs(source)
                    if outputs is None:
                        maybe = True
                    elif name in outputs or alias.lower() == name:
                        has_it = True
                else:
                    maybe = True
            if has_it:
                return None
            scope = scope.parent
            if scope is None and maybe:
                return None
        # Nothing in scope has the name (the database will not find it either): refused where a
        # table of the query hides it, as when names could not be resolved.
        return _hidden_by_name(column, self.hidden, self.hiding)


def _is_star(projection: exp.Expr) -> bool:
    return isinstance(projection, exp.Star) or (
        isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
    )


def _hidden_by_name(
    column: exp.Column, hidden: HiddenItems, hiding: dict[str, TableInfo]
) -> str | None:
    """The hidden item a column may read judged by names alone (errs on refusing): the column of
    the hiding table its qualifier names, else any hiding table's column of its name, else a
    hiding table named as a whole-row value."""
    name = column.name.lower()
    if column.table:
        info = hiding.get(column.table.lower())
        return f"{info.name}.{name}" if info and name in hidden.columns_of(info.name) else None
    for info in hiding.values():
        if name in hidden.columns_of(info.name):
            return f"{info.name}.{name}"
    real = {c.name.lower() for info in hiding.values() for c in info.columns}
    return hiding[name].name if name in hiding and name not in real else None


def _is_output_alias(column: exp.Column, name: str) -> bool:
    """Whether a bare `ORDER BY name` names one of its SELECT's output aliases."""
    ordered = column.parent
    order = ordered.parent if isinstance(ordered, exp.Ordered) else None
    select = order.parent if isinstance(order, exp.Order) else None
    return isinstance(select, exp.Select) and any(
        isinstance(p, exp.Alias) and p.alias.lower() == name for p in select.expressions
    )


def _scopes(tree: exp.Expr) -> list[Scope] | None:
    try:
        return traverse_scope(tree)
    except (OptimizeError, ValueError, KeyError):
        return None


def _expand_stars(select: exp.Select, reads: _HiddenReads) -> None:
    """Replace `*` and `t.*` over tables with hidden columns by their visible columns, keeping
    the star's modifiers' effect (`* EXCLUDE (...)`, `* REPLACE (...)`, `* RENAME (...)`)."""
    sources: list[exp.Expr] = []
    from_ = select.args.get("from_") or select.args.get("from")
    if isinstance(from_, exp.From):
        sources.append(from_.this)
    sources.extend(join.this for join in select.args.get("joins") or ())
    scope = reads.scope_of.get(id(select))
    hidden = reads.hidden

    def hides(source: exp.Expr | Scope | None) -> TableInfo | None:
        info = reads.table_info(source)
        return info if info is not None and hidden.columns_of(info.name) else None

    projections: list[exp.Expr] = []
    changed = False
    for projection in select.expressions:
        if isinstance(projection, exp.Star):
            if not any(hides(s) for s in sources):
                projections.append(projection)
                continue
            expansion = _StarExpansion(projection)
            for source in sources:
                qualifier = _qualifier(source)
                info = reads.table_info(source)
                if info is not None and qualifier is not None:
                    projections.extend(expansion.columns(info, qualifier, hidden))
                elif qualifier is not None:
                    _, derived = reads.source(scope, str(qualifier.name).lower())
                    names = reads.outputs(derived) if isinstance(derived, Scope) else None
                    projections.append(expansion.unexpanded(qualifier, names))
                else:
                    raise _hidden(
                        Rule.HIDDEN_COLUMN,
                        "Name the columns: * would read columns the semantic layer hides.",
                    )
            changed = True
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            # The alias may belong to an outer query (a LATERAL subquery's `a.*`).
            alias = str(projection.table).lower()
            found, named = reads.source(scope, alias)
            star_table = hides(named) if found else reads.hiding.get(alias)
            if star_table is None:
                projections.append(projection)
                continue
            expansion = _StarExpansion(projection.this)
            projections.extend(expansion.columns(star_table, projection.args["table"], hidden))
            changed = True
        else:
            projections.append(projection)
    if changed:
        select.set("expressions", projections)


def _is_exclusion(column: exp.Column) -> bool:
    """A column named in a star's `EXCLUDE`/`EXCEPT` list is left out, not read."""
    return isinstance(column.parent, exp.Star) and column.arg_key in _STAR_EXCEPT_KEYS


def _check_hidden(tree: exp.Expr, *, resolved: dict[int, TableInfo], hidden: HiddenItems) -> None:
    """Refuse reading a hidden table or a hidden column; expand stars to the visible columns.

    Column names are resolved against the sources of their scope, then the enclosing ones
    (`_HiddenReads`); where sqlglot cannot build the scopes, a name that some table of the query
    hides is refused whatever it names.
    """
    for info in resolved.values():
        if hidden.is_table_hidden(info.name):
            raise _hidden(
                Rule.HIDDEN_TABLE,
                f"The table {info.name} is hidden by the connection's semantic layer.",
                table=info.name,
            )
    table_nodes = [t for t in tree.find_all(exp.Table) if id(t) in resolved]
    hiding = {
        _source_alias(t): resolved[id(t)]
        for t in table_nodes
        if hidden.columns_of(resolved[id(t)].name)
    }
    if not hiding:
        return
    hidden_names = frozenset().union(*(hidden.columns_of(i.name) for i in hiding.values()))
    reads = _HiddenReads(resolved=resolved, hidden=hidden, hiding=hiding)
    scopes = _scopes(tree)
    column_scope: dict[int, Scope] = {}
    for scope in scopes or ():
        reads.scope_of[id(scope.expression)] = scope
        for node in scope.walk():
            if isinstance(node, exp.Column):
                column_scope.setdefault(id(node), scope)
    for node in tree.walk():
        if isinstance(node, exp.Join):
            if str(node.args.get("method") or "").upper() == "NATURAL":
                raise _hidden(
                    Rule.HIDDEN_COLUMN,
                    "NATURAL joins are not allowed over tables with hidden columns; "
                    "join ON named columns.",
                )
            for identifier in node.args.get("using") or ():
                if str(identifier.name).lower() in hidden_names:
                    raise _hidden(
                        Rule.HIDDEN_COLUMN,
                        f"The column {identifier.name} is hidden by the semantic layer.",
                        column=str(identifier.name),
                    )
        elif isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            parent = node.parent
            projected = isinstance(parent, exp.Select) and node in parent.expressions
            if not projected and not isinstance(parent, exp.Count):
                found, named = reads.source(column_scope.get(id(node)), node.table.lower())
                star_table = reads.table_info(named) if found else hiding.get(node.table.lower())
                if star_table is not None and hidden.columns_of(star_table.name):
                    raise _hidden(
                        Rule.HIDDEN_COLUMN,
                        f"{node.table}.* would read columns the semantic layer hides; name them.",
                    )
        elif isinstance(node, exp.Column) and not _is_exclusion(node):
            if scopes is None:
                label = _hidden_by_name(node, hidden, hiding)
            else:
                label = reads.reads_hidden(node, column_scope.get(id(node)))
            if label is not None:
                message = (
                    f"The column {label} is hidden by the connection's semantic layer."
                    if "." in label
                    else f"A whole row of {label} would read columns the semantic layer hides."
                )
                raise _hidden(Rule.HIDDEN_COLUMN, message, column=label)
    for select in list(tree.find_all(exp.Select)):
        _expand_stars(select, reads)


def names_hidden(sql: str, *, dialect: str, hidden: HiddenItems) -> bool:
    """Whether the SQL's text names a hidden table, or a column some table hides (by name
    alone, so it errs on yes); unparseable SQL counts as yes. For SQL shown to a generator."""
    hidden_columns = frozenset().union(*hidden.columns.values()) if hidden.columns else frozenset()
    try:
        statements = parse_statements(sql, sqlglot_dialect(dialect))
    except GuardRefused:
        return True
    for statement in statements:
        for node in statement.walk():
            if isinstance(node, exp.Table) and node.name.lower() in hidden.tables:
                return True
            if isinstance(node, exp.Column) and node.name.lower() in hidden_columns:
                return True
    return False


def _literal_int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(str(node.this))
        except ValueError:
            return None
    return None


def _apply_row_cap(query: exp.Expr, row_cap: int) -> tuple[int, bool]:
    """Set the outermost LIMIT to min(existing, row_cap); returns (limit, whether changed)."""
    limit_node = query.args.get("limit")
    fetch = limit_node if isinstance(limit_node, exp.Fetch) else None
    current: int | None = None
    if isinstance(limit_node, exp.Limit):
        current = _literal_int(limit_node.expression)
    elif fetch is not None:
        current = _literal_int(fetch.args.get("count"))
    if current is not None and 0 <= current <= row_cap:
        return current, False
    new_limit = exp.Limit(expression=exp.Literal.number(row_cap))
    if isinstance(limit_node, exp.Limit) and limit_node.args.get("offset") is not None:
        new_limit.set("offset", limit_node.args["offset"])
    query.set("limit", new_limit)
    return row_cap, True


def guard_sql(
    sql: str,
    *,
    snapshot: SchemaSnapshot,
    dialect: str | None = None,
    row_cap: int | None,
    parameters: Collection[str] | None = None,
    shown_row_cap: int | None = None,
    hidden: HiddenItems = NOTHING_HIDDEN,
    parsed: ParsedSql | None = None,
) -> GuardedSql:
    """Accept one read-only query over the snapshot's tables, or raise `GuardRefused`.

    Unparseable SQL raises `SqlNotParseable` (both are 400s). `dialect` defaults to the
    snapshot's `db_type`. `row_cap=None` leaves the LIMIT as written (an export streams every
    row). Bind parameters are refused unless `parameters` names the allowed ones (a template's
    declared parameters, validated when it was saved); they are rendered as `:name` in every
    dialect, for the executor to bind, never filled into the text. `hidden` (the connection's
    semantic layer) refuses reading a hidden table or column (`SqlReadsHidden`) and narrows
    `*` to the visible columns. `parsed`: `parse_sql` of this very SQL, whose statements
    the guard then takes instead of parsing it again (ignored for any other text or dialect).
    """
    target = sqlglot_dialect(dialect or snapshot.db_type)
    try:
        return _guard(
            sql,
            snapshot=snapshot,
            target=target,
            row_cap=row_cap,
            parameters=parameters,
            shown_row_cap=shown_row_cap,
            hidden=hidden,
            parsed=parsed,
        )
    except RecursionError:
        # The bounds in `parse_statements` keep recursion far from Python's limit; should a
        # query still get there, it is refused like any other unparseable one.
        raise _too_deep() from None


def _guard(
    sql: str,
    *,
    snapshot: SchemaSnapshot,
    target: str,
    row_cap: int | None,
    parameters: Collection[str] | None,
    shown_row_cap: int | None = None,
    hidden: HiddenItems = NOTHING_HIDDEN,
    parsed: ParsedSql | None = None,
) -> GuardedSql:
    text = sql.strip() if sql else ""
    if not text:
        raise _refuse(Rule.EMPTY, "The SQL is empty.")
    statement = _unwrap(_parse_single(text, target, parsed))
    if not isinstance(statement, _TOP_LEVEL_QUERIES):
        kind = type(statement).__name__.upper()
        if isinstance(statement, exp.Command):
            kind = str(statement.this).upper()
        raise _refuse(
            Rule.READ_ONLY_STATEMENT,
            f"Only SELECT, WITH and set operations are allowed, not {kind}.",
            statement=kind,
        )
    _check_tree(statement, dialect=target, parameters=parameters)
    tables, resolved = _check_tables(statement, snapshot=snapshot, dialect=target)
    if hidden:
        _check_hidden(statement, resolved=resolved, hidden=hidden)
    written_limit = _literal_int(_outer_limit(statement))
    limit_parameter = _limit_placeholder(statement) if parameters is not None else None
    if row_cap is None or limit_parameter is not None:
        # A bound LIMIT (`LIMIT :top`) stays; the caller caps the value it binds to it.
        limit, changed = _literal_int(_outer_limit(statement)) or 0, False
    else:
        limit, changed = _apply_row_cap(statement, max(1, row_cap))
    used: list[str] = []
    if parameters is not None:
        statement = statement.transform(_neutral_placeholder(used))
    shows_other_cap = changed and shown_row_cap is not None
    # The tree is the guard's own (parsed here, or taken from a `ParsedSql`): its last
    # rendering needs no copy to protect it from the generator's dialect transforms.
    rendered = statement.sql(dialect=target, comments=False, copy=shows_other_cap)
    shown = rendered
    if changed and shown_row_cap is not None:
        # The tree is checked already: lowering its LIMIT and rendering again is all it takes.
        _apply_row_cap(statement, max(1, shown_row_cap))
        shown = statement.sql(dialect=target, comments=False, copy=False)
    return GuardedSql(
        sql=rendered,
        shown_sql=shown,
        dialect=target,
        tables=tables,
        limit=limit,
        limit_applied=changed,
        parameters=used,
        limit_parameter=limit_parameter,
        written_limit=written_limit,
    )


def cap_limit_parameter(
    guarded: GuardedSql, params: Mapping[str, Any], row_cap: int
) -> dict[str, Any]:
    """`params` with the value bound to a `LIMIT :name` lowered to `row_cap`; refuses a value
    that is not an integer (the guard could not cap it)."""
    name = guarded.limit_parameter
    if name is None or name not in params:
        return dict(params)
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(Rule.PARAMETERS, "A LIMIT parameter must be an integer.", parameter=name)
    return {**params, name: max(0, min(value, row_cap))}


def _limit_placeholder(query: exp.Expr) -> str | None:
    value = _outer_limit(query)
    return value.name if isinstance(value, exp.Placeholder) and value.name else None


def _outer_limit(query: exp.Expr) -> exp.Expr | None:
    limit_node = query.args.get("limit")
    if isinstance(limit_node, exp.Limit):
        return limit_node.expression  # type: ignore[no-any-return]
    return None


def _neutral_placeholder(used: list[str]) -> Callable[[exp.Expr], exp.Expr]:
    # sqlglot renders a placeholder in the dialect's driver style (`%(name)s` for postgres);
    # the guard's output keeps `:name` everywhere and the executor converts it.
    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name:
            if node.name not in used:
                used.append(node.name)
            return exp.Var(this=f":{node.name}")
        return node

    return replace
