"""Template definitions: placeholders, typed parameters, matching questions, binding values.

Values are only ever bound as parameters of the SQL (`:name`), never written into its text.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import parse_statements
from backend.templates.errors import TemplateInvalid, TemplateParameterInvalid
from backend.templates.models import QueryTemplate
from backend.templates.schemas import TemplateParameter

PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_STRING_VALUE_CHARS = 1000
MAX_STRING_PLACEHOLDERS = 2
MAX_MATCHED_QUESTION_CHARS = 500
"""Longer questions are not matched against templates (they go to the generator)."""
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})
_INTEGER_RE = re.compile(r"[-+]?\d+")
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CAPTURE = {
    "integer": r"[-+]?\d[\d,]*",
    "number": r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)",
    "date": r"\d{4}-\d{2}-\d{2}",
    "boolean": r"true|false|yes|no",
    "string": r".+?",
}
_WRITES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Merge,
    exp.Command,
    exp.Into,
)
SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mysql",
    "duckdb": "duckdb",
}


def coerce_value(value: Any, type_: str) -> Any:
    """`value` as the parameter type wants it; raises ValueError with a reason a user can read.

    Dates bind as ISO-8601 strings, which SQLite compares as text and PostgreSQL casts.
    """
    if value is None:
        raise ValueError("a value is required")
    if type_ == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("must be a string")
        text = str(value)
        if len(text) > MAX_STRING_VALUE_CHARS:
            raise ValueError(f"must be at most {MAX_STRING_VALUE_CHARS} characters")
        return text
    if type_ == "integer":
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_RE.fullmatch(value.strip().replace(",", "")):
            return int(value.strip().replace(",", ""))
        raise ValueError("must be an integer")
    if type_ == "number":
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, int | float):
            number: int | float = value
        elif isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip().replace(",", "")):
            text = value.strip().replace(",", "")
            number = int(text) if _INTEGER_RE.fullmatch(text) else float(text)
        else:
            raise ValueError("must be a number")
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if type_ == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat()
            except ValueError:
                pass
        raise ValueError("must be a date written YYYY-MM-DD")
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("must be true or false")
    raise ValueError(f"has an unknown type {type_!r}")


def question_placeholders(question_template: str) -> list[str]:
    return PLACEHOLDER_RE.findall(question_template)


def parse_select(sql_template: str, *, dialect: str | None = None) -> exp.Query:
    """The one SELECT statement of a SQL template; raises `TemplateInvalid`."""
    try:
        statements = parse_statements(sql_template, dialect)
    except GuardRefused as exc:
        reason = exc.details.get("reason") or exc.message
        raise TemplateInvalid(
            "The SQL template does not parse.",
            details={"errors": [_ANSI_RE.sub("", str(reason))[:300]]},
        ) from exc
    if len(statements) != 1:
        raise TemplateInvalid("The SQL template must hold exactly one statement.")
    statement = statements[0]
    if not isinstance(statement, exp.Query) or any(statement.find_all(*_WRITES)):
        raise TemplateInvalid("The SQL template must be one read-only SELECT.")
    return statement


def sql_parameter_names(statement: exp.Query) -> list[str]:
    """Named bind parameters (`:name`); raises `TemplateInvalid` on unnamed ones (`?`)."""
    names: list[str] = []
    for placeholder in statement.find_all(exp.Placeholder):
        if not placeholder.name or placeholder.name == "?":
            raise TemplateInvalid("Use named parameters (:name) in the SQL template, not `?`.")
        if placeholder.name not in names:
            names.append(placeholder.name)
    return names


def validate_definition(
    *,
    question_template: str,
    sql_template: str,
    parameters: Sequence[TemplateParameter],
    dialect: str | None = None,
) -> None:
    """Check that the question, the SQL and the declared parameters agree.

    Raises `TemplateInvalid` listing every problem: an undeclared placeholder, a declared
    parameter the SQL does not use, a default of the wrong type, SQL that is not one SELECT.
    """
    statement = parse_select(sql_template, dialect=dialect)
    problems: list[str] = []
    declared: dict[str, TemplateParameter] = {}
    for parameter in parameters:
        if parameter.name in declared:
            problems.append(f"parameter {parameter.name!r} is declared twice")
        declared[parameter.name] = parameter
        if parameter.default is not None:
            try:
                coerce_value(parameter.default, parameter.type)
            except ValueError as exc:
                problems.append(f"the default of {parameter.name!r} {exc}")
    in_question = question_placeholders(question_template)
    for name in sorted({n for n in in_question if in_question.count(n) > 1}):
        problems.append(f"placeholder {{{name}}} appears more than once in the question")
    for name in in_question:
        if name not in declared:
            problems.append(f"placeholder {{{name}}} in the question is not a declared parameter")
    problems.extend(_matching_problems(question_template, declared))
    in_sql = sql_parameter_names(statement)
    for name in in_sql:
        if name not in declared:
            problems.append(f":{name} in the SQL is not a declared parameter")
    for name in declared:
        if name not in in_sql:
            problems.append(f"parameter {name!r} is not used in the SQL as :{name}")
    if problems:
        raise TemplateInvalid(details={"errors": list(dict.fromkeys(problems))})


def _matching_problems(
    question_template: str, declared: Mapping[str, TemplateParameter]
) -> list[str]:
    """Limits that keep matching a question against this template linear in practice.

    Questions are matched against everyone's public templates, so a pattern like
    `{a} {b} {c} {d} {e}` (free-text captures next to each other) must not be able to make
    the regex engine backtrack for seconds.
    """
    problems: list[str] = []
    pieces = PLACEHOLDER_RE.split(question_template)
    # split() alternates literal, name, literal, name, ...: literals sit at even positions.
    for index in range(2, len(pieces) - 1, 2):
        if not pieces[index].strip():
            problems.append(
                f"placeholders {{{pieces[index - 1]}}} and {{{pieces[index + 1]}}} need a word "
                "between them"
            )
    text_captures = [n for n in pieces[1::2] if n in declared and declared[n].type == "string"]
    if len(text_captures) > MAX_STRING_PLACEHOLDERS:
        problems.append(
            f"at most {MAX_STRING_PLACEHOLDERS} string placeholders may appear in the question"
        )
    return problems


def declared_parameters(template: QueryTemplate) -> list[TemplateParameter]:
    return [TemplateParameter.model_validate(p) for p in template.parameters or []]


def bind_parameters(template: QueryTemplate, raw_params: Mapping[str, Any]) -> dict[str, Any]:
    """Typed values for every parameter of `template` (given, else its default).

    Raises `TemplateParameterInvalid` (422) listing unknown, missing and mistyped values.
    """
    declared = declared_parameters(template)
    names = {p.name for p in declared}
    problems: list[dict[str, str]] = [
        {"parameter": str(name), "message": "is not a parameter of this template"}
        for name in raw_params
        if name not in names
    ]
    bound: dict[str, Any] = {}
    for parameter in declared:
        value = raw_params.get(parameter.name)
        if value is None:
            value = parameter.default
        if value is None:
            problems.append({"parameter": parameter.name, "message": "a value is required"})
            continue
        try:
            bound[parameter.name] = coerce_value(value, parameter.type)
        except ValueError as exc:
            problems.append({"parameter": parameter.name, "message": f"{exc}"})
    if problems:
        summary = "; ".join(f"{p['parameter']} {p['message']}" for p in problems)
        raise TemplateParameterInvalid(
            f"The template parameters are not valid: {summary}.", details={"errors": problems}
        )
    return bound


def _normalise(text: str) -> str:
    return " ".join(text.split()).rstrip("?.!").rstrip()


def _pattern(template: QueryTemplate) -> tuple[re.Pattern[str], int] | None:
    """The question template as a regex with typed captures, and its count of literal chars."""
    types = {p.name: p.type for p in declared_parameters(template)}
    text = _normalise(template.question_template)
    parts: list[str] = []
    literal_chars = 0
    position = 0
    for match in PLACEHOLDER_RE.finditer(text):
        literal = text[position : match.start()]
        literal_chars += len(literal.strip())
        parts.append(r"\s+".join(re.escape(word) for word in literal.split(" ")))
        name = match.group(1)
        if name not in types:
            return None
        parts.append(rf"""(?:["']?)(?P<{name}>{_CAPTURE[types[name]]})(?:["']?)""")
        position = match.end()
    tail = text[position:]
    literal_chars += len(tail.strip())
    parts.append(r"\s+".join(re.escape(word) for word in tail.split(" ")))
    try:
        return re.compile("".join(parts), re.IGNORECASE), literal_chars
    except re.error:
        return None


def match_template(
    question: str, templates: Sequence[QueryTemplate]
) -> tuple[QueryTemplate, dict[str, Any]] | None:
    """The template whose question pattern the question fits, with its bound parameters.

    Case- and space-insensitive; captures must have the parameter's type. Among several fits, a
    verified template wins, then the most specific pattern, then the most used.
    """
    normalised = _normalise(question)
    if len(normalised) > MAX_MATCHED_QUESTION_CHARS:
        return None
    found: list[tuple[tuple[bool, int, int], QueryTemplate, dict[str, Any]]] = []
    for template in templates:
        compiled = _pattern(template)
        if compiled is None:
            continue
        pattern, literal_chars = compiled
        match = pattern.fullmatch(normalised)
        if match is None:
            continue
        captured = {k: v.strip() for k, v in match.groupdict().items() if v is not None}
        try:
            params = bind_parameters(template, captured)
        except TemplateParameterInvalid:
            continue
        rank = (bool(template.is_verified), literal_chars, template.usage_count or 0)
        found.append((rank, template, params))
    if not found:
        return None
    _, template, params = max(found, key=lambda item: item[0])
    return template, params
