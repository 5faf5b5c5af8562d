"""Prompts for the LLM generators, and the SQL in their replies.

A prompt is a system text (rules for the dialect, the relevant part of the schema, a few
examples) and the conversation as alternating user/assistant messages ending with the question
(or with the failed SQL and its error when repairing). Tokens are estimated at ~4 characters
each; the whole prompt stays within `PROMPT_TOKEN_BUDGET`, whatever the size of the schema.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.engines.base import Example, GenerationRequest, Turn
from backend.nl2sql.engines.stop_words import QUERY_WORDS, STOP_WORDS
from backend.nl2sql.errors import LlmReplyInvalid
from backend.semantic.layer import SemanticLayer

CHARS_PER_TOKEN = 4
PROMPT_TOKEN_BUDGET = 4000
"""Estimated tokens of a whole prompt (system text and messages)."""
MIN_SCHEMA_TOKENS = 800
"""The schema keeps at least this much of the budget, however long the conversation."""
MAX_EXAMPLES = 4
MAX_EXAMPLE_TOKENS = 250
MAX_HISTORY_TURNS = 6
MAX_TURN_TOKENS = 300
MAX_SAMPLE_VALUES = 3
MAX_SAMPLE_VALUE_CHARS = 40
MAX_CONSECUTIVE_MISSES = 20
"""Stop trying smaller tables after this many in a row did not fit."""
TOP_TABLES_WITH_NEIGHBOURS = 4
"""FK neighbours of this many best-scoring tables are added right after them."""
MAX_SEMANTIC_TOKENS = 900
"""The most of the budget the semantic layer's definitions take (the schema keeps the rest)."""
MAX_DEFINITION_CHARS = 400
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_STOPWORDS = STOP_WORDS | QUERY_WORDS
_WORD_RE = re.compile(r"[a-z0-9]+")
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DEFAULT_SCHEMAS = frozenset({"main", "public", "dbo"})
_T = TypeVar("_T")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class PromptMessage:
    role: str
    """`user` or `assistant`."""
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str
    messages: list[PromptMessage]
    tables: list[str] = field(default_factory=list)
    """Tables whose definitions the prompt holds, most relevant first."""
    omitted_tables: int = 0
    definitions: list[str] = field(default_factory=list)
    """Semantic-layer definitions the prompt holds (`measure:revenue`, ...), most relevant
    first."""

    @property
    def estimated_tokens(self) -> int:
        return estimate_tokens(self.system) + sum(
            estimate_tokens(m.content) + 4 for m in self.messages
        )


# --- relevance -------------------------------------------------------------------------------


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def split_identifier(name: str) -> list[str]:
    """`orderItems`, `order_items`, `OrderItems` -> `["order", "item"]` (stemmed, lowercase)."""
    spaced = _CAMEL_RE.sub(" ", name)
    return [_stem(w) for w in _WORD_RE.findall(spaced.lower())]


@functools.lru_cache(maxsize=65536)
def identifier_words(name: str) -> frozenset[str]:
    """The words of an identifier, cached: the same schemas are scored on every question."""
    return frozenset(split_identifier(name))


def question_words(question: str) -> set[str]:
    return {_stem(w) for w in _WORD_RE.findall(question.lower()) if w not in _STOPWORDS}


@dataclass(frozen=True, slots=True)
class _ColumnFacts:
    words: frozenset[str]
    """The column name's words, without `id`."""
    value_stems: frozenset[str]
    """Stems of its one-word sample values."""
    value_phrases: tuple[str, ...]
    """Its sample values of several words, lowercase, matched as substrings."""


@dataclass(frozen=True, slots=True)
class _TableFacts:
    """What scoring and rendering read of a table, worked out once per table object."""

    table: TableInfo
    """Kept so the id of a live object is never taken for a new one's."""
    name_words: frozenset[str]
    columns: tuple[_ColumnFacts, ...]
    comment_words: frozenset[str]
    block: str
    block_tokens: int


def _column_facts(column: ColumnInfo) -> _ColumnFacts:
    stems: set[str] = set()
    phrases: list[str] = []
    for value in column.sample_values or ():
        if not isinstance(value, str):
            continue
        text = value.strip().lower()
        if len(text) < 2:
            continue
        if " " in text:
            phrases.append(text)
        else:
            stems.add(_stem(text))
    return _ColumnFacts(identifier_words(column.name) - {"id"}, frozenset(stems), tuple(phrases))


class _IdentityCache:
    """Facts derived from schema objects, by the object's identity, least recently used out.

    Snapshots are parsed once per process and shared by every ask (`schema_cache`), so the
    same table objects come back on every question: their words, sample values and rendered
    blocks are worked out once instead of on the event loop of each LLM ask. Each entry keeps
    its object alive, so an id is never reused while its entry stands."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object, make: Callable[[], _T]) -> _T:
        with self._lock:
            entry = self._entries.get(id(key))
            if entry is not None and entry[0] is key:
                self._entries.move_to_end(id(key))
                return cast("_T", entry[1])
        value = make()
        with self._lock:
            self._entries[id(key)] = (key, value)
            self._entries.move_to_end(id(key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value


_table_facts = _IdentityCache(max_entries=8192)
_snapshot_links = _IdentityCache(max_entries=256)


def table_facts(table: TableInfo) -> _TableFacts:
    def make() -> _TableFacts:
        block = render_table(table)
        return _TableFacts(
            table=table,
            name_words=identifier_words(table.name),
            columns=tuple(_column_facts(c) for c in table.columns),
            comment_words=frozenset(question_words(table.comment))
            if table.comment
            else frozenset(),
            block=block,
            block_tokens=estimate_tokens(block),
        )

    return _table_facts.get(table, make)


def _facts_score(facts: _TableFacts, words: set[str], question_lower: str) -> float:
    score = 0.0
    hits = facts.name_words & words
    if hits:
        score += 3.0 * len(hits) + (2.0 if hits == facts.name_words else 0.0)
    for column in facts.columns:
        if not column.words.isdisjoint(words):
            score += 1.0
        if not column.value_stems.isdisjoint(words) or any(
            phrase in question_lower for phrase in column.value_phrases
        ):
            score += 2.0
    if not facts.comment_words.isdisjoint(words):
        score += 0.5
    return score


def score_table(table: TableInfo, words: set[str], question_lower: str) -> float:
    """How strongly the question points at `table`: name words 3, column words 1, values 2."""
    return _facts_score(table_facts(table), words, question_lower)


def _neighbours(snapshot: SchemaSnapshot) -> dict[str, list[str]]:
    """Tables linked by a foreign key in either direction, by lowercase table name (worked
    out once per snapshot object; callers do not change it)."""
    return _snapshot_links.get(snapshot, lambda: _links_of(snapshot))


def _links_of(snapshot: SchemaSnapshot) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {t.name.lower(): [] for t in snapshot.tables}
    for table in snapshot.tables:
        for fk in table.foreign_keys:
            referred = fk.referred_table.lower()
            if referred in links and referred != table.name.lower():
                links[table.name.lower()].append(fk.referred_table)
                links[referred].append(table.name)
    return links


def rank_tables(snapshot: SchemaSnapshot, question: str) -> list[TableInfo]:
    """Every table, most relevant first: best matches, their FK neighbours, the other matches,
    their neighbours, then the rest (most connected first)."""
    words = question_words(question)
    question_lower = " ".join(question.lower().split())
    scored = [(score_table(t, words, question_lower), t) for t in snapshot.tables]
    matched = [t for s, t in sorted(scored, key=lambda p: (-p[0], p[1].name)) if s > 0]
    links = _neighbours(snapshot)
    by_name = {t.name.lower(): t for t in snapshot.tables}
    ordered: dict[str, TableInfo] = {}

    def add(tables: Iterable[TableInfo]) -> None:
        for table in tables:
            ordered.setdefault(table.name.lower(), table)

    def neighbours_of(tables: list[TableInfo]) -> list[TableInfo]:
        return [by_name[n.lower()] for t in tables for n in links[t.name.lower()]]

    top, others = matched[:TOP_TABLES_WITH_NEIGHBOURS], matched[TOP_TABLES_WITH_NEIGHBOURS:]
    add(top)
    add(neighbours_of(top))
    add(others)
    add(neighbours_of(others))
    add(sorted(snapshot.tables, key=lambda t: (-len(links[t.name.lower()]), t.name)))
    return list(ordered.values())


# --- rendering -------------------------------------------------------------------------------


def _qualified(table: TableInfo) -> str:
    if table.schema_name and table.schema_name.lower() not in _DEFAULT_SCHEMAS:
        return f"{table.schema_name}.{table.name}"
    return table.name


def _literal(value: Any) -> str:
    if isinstance(value, str):
        text = " ".join(value.split())[:MAX_SAMPLE_VALUE_CHARS]
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(value, default=str)


def _render_column(column: ColumnInfo, fk_target: str | None) -> str:
    parts = [f"  {column.name} {column.type or 'TEXT'}"]
    if column.primary_key:
        parts.append("PRIMARY KEY")
    elif not column.nullable:
        parts.append("NOT NULL")
    if fk_target:
        parts.append(f"REFERENCES {fk_target}")
    line = " ".join(parts)
    if column.sample_values:
        samples = ", ".join(_literal(v) for v in column.sample_values[:MAX_SAMPLE_VALUES])
        more = ", ..." if len(column.sample_values) > MAX_SAMPLE_VALUES else ""
        line += f" -- e.g. {samples}{more}"
    return line


def render_table(table: TableInfo) -> str:
    """One CREATE TABLE-like block: types, keys, references and a few sample values."""
    single_fk: dict[str, str] = {}
    composite: list[str] = []
    for fk in table.foreign_keys:
        target = f"{fk.referred_table}({', '.join(fk.referred_columns)})"
        if len(fk.columns) == 1:
            single_fk[fk.columns[0].lower()] = target
        else:
            composite.append(f"  FOREIGN KEY ({', '.join(fk.columns)}) REFERENCES {target}")
    lines = [_render_column(c, single_fk.get(c.name.lower())) for c in table.columns]
    pk = [c.name for c in table.columns if c.primary_key]
    if len(pk) > 1:
        lines = [line.replace(" PRIMARY KEY", "", 1) for line in lines]
        lines.append(f"  PRIMARY KEY ({', '.join(pk)})")
    lines.extend(composite)
    body = "\n".join(
        _with_comma(line) if index < len(lines) - 1 else line for index, line in enumerate(lines)
    )
    suffix = f" -- {table.row_count} rows" if table.row_count is not None else ""
    if table.comment:
        suffix += f" -- {table.comment[:120]}"
    return f"CREATE TABLE {_qualified(table)} (\n{body}\n);{suffix}"


def _with_comma(line: str) -> str:
    # A `--` comment would swallow a trailing comma, so the comma goes before it.
    head, sep, comment = line.partition(" -- ")
    return f"{head}, -- {comment}" if sep else f"{line},"


def render_schema(
    snapshot: SchemaSnapshot, question: str, *, token_budget: int
) -> tuple[str, list[str], int]:
    """The most relevant tables that fit in `token_budget`, then the names of the others.

    Returns the text, the tables rendered in full, and how many tables were left out entirely.
    """
    ranked = rank_tables(snapshot, question)
    facts = [table_facts(table) for table in ranked]
    whole = 0
    for fact in facts:
        whole += fact.block_tokens + 1
        if whole > token_budget:
            break
    # When the schema does not fit whole, a share of the budget names the tables left out.
    definitions_budget = token_budget if whole <= token_budget else int(token_budget * 0.7)
    blocks: list[str] = []
    chosen: list[str] = []
    rest: list[TableInfo] = []
    used = 0
    misses = 0
    for index, table in enumerate(ranked):
        if misses >= MAX_CONSECUTIVE_MISSES:
            rest.extend(ranked[index:])
            break
        block, cost = facts[index].block, facts[index].block_tokens + 1
        if used + cost <= definitions_budget:
            blocks.append(block)
            chosen.append(_qualified(table))
            used += cost
            misses = 0
        else:
            rest.append(table)
            misses += 1
    omitted = 0
    if rest:
        names: list[str] = []
        header = "-- Other tables (ask about them by name to see their columns): "
        used += estimate_tokens(header) + 8
        for index, table in enumerate(rest):
            cost = estimate_tokens(_qualified(table)) + 1
            if used + cost > token_budget:
                omitted = len(rest) - index
                break
            names.append(_qualified(table))
            used += cost
        if names:
            tail = f" ... and {omitted} more" if omitted else ""
            blocks.append(header + ", ".join(names) + tail)
        else:
            omitted = len(rest)
    return "\n".join(blocks), chosen, omitted


# --- the semantic layer ----------------------------------------------------------------------


def _quoted_list(words: list[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DEFINITION_CHARS else text[: MAX_DEFINITION_CHARS - 3] + "..."


def _standing_lines(layer: SemanticLayer) -> list[str]:
    """What applies to every question: the date to count from, the fiscal year, instructions."""
    lines: list[str] = []
    if layer.today is not None:
        lines.append(
            f"- Today is {layer.today.isoformat()}: count relative dates (last month, this year, "
            "60 days ago) back from it, not from the clock."
        )
    if layer.fiscal_year_start_month != 1:
        month = _MONTHS[layer.fiscal_year_start_month - 1]
        named = {"end": " FY<year> is the fiscal year that ends in <year>.",
                 "start": " FY<year> is the fiscal year that starts in <year>."}  # fmt: skip
        lines.append(
            f"- The fiscal year starts in {month}.{named.get(layer.fiscal_year_named_by or '', '')}"
        )
    lines.extend(f"- {_cut(i)}" for i in layer.instructions if i.strip())
    return lines


def _relevance(words: set[str], *texts: str | None) -> int:
    found: set[str] = set()
    for text in texts:
        if text:
            found |= question_words(text) | identifier_words(text)
    return len(found & words)


def _definitions(layer: SemanticLayer) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every definition as (key, line, texts that make it relevant)."""
    items: list[tuple[str, str, tuple[str, ...]]] = []
    for measure in layer.measures:
        line = f'- Measure "{measure.name}"'
        if measure.synonyms:
            line += f" (also {_quoted_list(measure.synonyms)})"
        line += f": {measure.expression} over {measure.table}"
        if measure.filter:
            line += f" WHERE {measure.filter}"
        if measure.time_column:
            line += f"; dated by {measure.time_column}"
        if measure.description:
            line += f". {measure.description}"
        items.append(
            (
                f"measure:{measure.name}",
                _cut(line),
                (measure.name, *measure.synonyms, measure.description or "", measure.table),
            )
        )
    for named in layer.filters:
        line = f'- Filter "{named.name}"'
        if named.synonyms:
            line += f" (also {_quoted_list(named.synonyms)})"
        line += f": {named.condition} (on {named.table})"
        if named.description:
            line += f". {named.description}"
        items.append(
            (
                f"filter:{named.name}",
                _cut(line),
                (named.name, *named.synonyms, named.description or "", named.table),
            )
        )
    for table in layer.tables:
        if table.description or table.synonyms or table.time_column:
            line = f"- Table {table.name}"
            if table.synonyms:
                line += f" (users say {_quoted_list(table.synonyms)})"
            if table.description:
                line += f": {table.description}"
            if table.time_column:
                line += f"; rows are dated by {table.name}.{table.time_column} unless the"
                line += " question names another date"
            texts = (table.name, *table.synonyms, table.description or "")
            items.append((f"table:{table.name}", _cut(line), texts))
        for column in table.columns:
            if not (column.description or column.synonyms or column.values):
                continue
            line = f"- Column {table.name}.{column.name}"
            if column.synonyms:
                line += f" (users say {_quoted_list(column.synonyms)})"
            if column.description:
                line += f": {column.description}"
            if column.values:
                pairs = "; ".join(f'"{k}" means {_literal(v)}' for k, v in column.values.items())
                line += f". Values: {pairs}"
            texts = (
                table.name,
                column.name,
                *column.synonyms,
                column.description or "",
                *column.values,
            )
            items.append((f"column:{table.name}.{column.name}", _cut(line), texts))
    for join in layer.joins:
        line = (
            f"- Join {join.from_table}.{join.from_column} = {join.to_table}.{join.to_column}"
            " (not declared as a foreign key)"
        )
        items.append(
            (
                f"join:{join.from_table}.{join.from_column}",
                _cut(line),
                (join.from_table, join.to_table),
            )
        )
    return items


def tables_named_by_layer(layer: SemanticLayer, question: str) -> list[str]:
    """Tables the question points at through the layer's words (a synonym of a table or
    column, a measure's or filter's name): they rank with the tables it names outright."""
    words = question_words(question)
    named: list[str] = []
    for table in layer.tables:
        texts = [*table.synonyms]
        for column in table.columns:
            texts.extend(column.synonyms)
            texts.extend(column.values)
        if _relevance(words, *texts):
            named.append(table.name)
    for measure in layer.measures:
        if _relevance(words, measure.name, *measure.synonyms):
            named.append(measure.table)
    for named_filter in layer.filters:
        if _relevance(words, named_filter.name, *named_filter.synonyms):
            named.append(named_filter.table)
    return named


def render_semantic(
    layer: SemanticLayer, question: str, *, tables: list[str], token_budget: int
) -> tuple[str, list[str]]:
    """The layer's definitions most relevant to the question (and to the tables the prompt
    shows) that fit in `token_budget`; returns the text and the keys of what it holds."""
    words = question_words(question)
    shown = {t.lower().rsplit(".", 1)[-1] for t in tables}
    standing = _standing_lines(layer)
    scored: list[tuple[int, int, str, str]] = []
    for order, (key, line, texts) in enumerate(_definitions(layer)):
        score = _relevance(words, *texts)
        table_of = key.split(":", 1)[1].split(".", 1)[0].lower()
        if key.startswith(("table:", "column:", "join:")) and table_of in shown:
            score += 1
        scored.append((score, order, key, line))
    scored.sort(key=lambda item: (-item[0], item[1]))
    lines: list[str] = []
    keys: list[str] = []
    used = 0
    for line in standing:
        cost = estimate_tokens(line) + 1
        if used + cost > token_budget:
            break
        lines.append(line)
        used += cost
    if len(lines) < len(standing):
        keys.append("instructions:partial")
    for score, _, key, line in scored:
        if score <= 0 and not key.startswith(("measure:", "filter:")):
            continue  # descriptions of tables and columns the question does not touch
        cost = estimate_tokens(line) + 1
        if used + cost > token_budget:
            continue
        lines.append(line)
        keys.append(key)
        used += cost
    return "\n".join(lines), keys


# --- the prompt ------------------------------------------------------------------------------


def _truncate(text: str, max_tokens: int) -> str:
    limit = max_tokens * CHARS_PER_TOKEN
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rules(request: GenerationRequest) -> str:
    return (
        f"You write SQL for a {request.schema.db_type} database "
        f'named "{request.schema.database_name}" (SQL dialect: {request.dialect}).\n'
        "Rules:\n"
        "- Answer with exactly ONE read-only SELECT statement (a WITH ... SELECT is fine). "
        "Never write INSERT, UPDATE, DELETE, DDL, PRAGMA or more than one statement.\n"
        "- Use only the tables and columns defined below; qualify ambiguous columns.\n"
        f"- End the query with LIMIT {request.row_cap} or a smaller LIMIT.\n"
        f"- Write syntax valid in the {request.dialect} dialect.\n"
        "- Reply with the query in a ```sql fenced block, then one short sentence saying "
        "what it returns."
    )


def _examples(examples: list[Example]) -> str:
    preferred = sorted(examples, key=lambda e: not e.verified)
    lines: list[str] = []
    for example in preferred:
        if len(lines) == MAX_EXAMPLES:
            break
        text = f"Q: {example.question.strip()}\nSQL: {example.sql.strip().rstrip(';')}"
        if estimate_tokens(text) <= MAX_EXAMPLE_TOKENS:
            lines.append(text)
    return "\n\n".join(lines)


def _history(turns: list[Turn]) -> list[PromptMessage]:
    messages: list[PromptMessage] = []
    for turn in turns[-MAX_HISTORY_TURNS:]:
        messages.append(PromptMessage("user", _truncate(turn.question.strip(), MAX_TURN_TOKENS)))
        answer = (
            f"```sql\n{_truncate(turn.sql.strip(), MAX_TURN_TOKENS)}\n```"
            if turn.sql
            else "(No query answered this question.)"
        )
        messages.append(PromptMessage("assistant", answer))
    return messages


def _final_message(request: GenerationRequest) -> str:
    question = request.question.strip()
    if request.repair_of is None:
        return question
    error = _truncate((request.repair_error or "unknown error").strip(), 200)
    return (
        f"{question}\n\n"
        "Your previous query for this question failed:\n"
        f"```sql\n{_truncate(request.repair_of.strip(), 600)}\n```\n"
        f"Error: {error}\n"
        "Write a corrected query that follows the rules."
    )


def build_prompt(request: GenerationRequest, *, token_budget: int = PROMPT_TOKEN_BUDGET) -> Prompt:
    rules = _rules(request)
    examples = _examples(request.examples)
    messages = [*_history(request.history), PromptMessage("user", _final_message(request))]
    fixed = estimate_tokens(rules) + 40 + sum(estimate_tokens(m.content) + 4 for m in messages)
    if examples:
        fixed += estimate_tokens(examples) + 10
    if token_budget - fixed < MIN_SCHEMA_TOKENS and len(messages) > 1:
        messages = messages[-1:]  # the conversation yields its room to the schema first
        fixed = estimate_tokens(rules) + 40 + estimate_tokens(messages[0].content) + 4
        fixed += estimate_tokens(examples) + 10 if examples else 0
    schema_budget = max(MIN_SCHEMA_TOKENS, token_budget - fixed)
    semantic_budget = 0
    if request.semantic is not None:
        semantic_budget = min(MAX_SEMANTIC_TOKENS, max(0, schema_budget - MIN_SCHEMA_TOKENS))
        schema_budget -= semantic_budget
    focus = " ".join([request.question, *(t.question for t in request.history[-2:])])
    schema_focus = focus
    if request.semantic is not None:
        schema_focus = " ".join([focus, *tables_named_by_layer(request.semantic, focus)])
    schema_text, tables, omitted = render_schema(
        request.schema, schema_focus, token_budget=schema_budget
    )
    sections = [rules, "Schema:\n" + schema_text]
    definitions: list[str] = []
    if request.semantic is not None and semantic_budget > 0:
        semantic_text, definitions = render_semantic(
            request.semantic, focus, tables=tables, token_budget=semantic_budget - 12
        )
        if semantic_text:
            sections.append(
                "Business definitions (use them: a named measure is its expression with its "
                "condition, a named filter is its condition):\n" + semantic_text
            )
    if examples:
        sections.append("Examples of questions and their SQL:\n" + examples)
    return Prompt(
        system="\n\n".join(sections),
        messages=messages,
        tables=tables,
        omitted_tables=omitted,
        definitions=definitions,
    )


# --- reading replies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExtractedSql:
    sql: str
    explanation: str | None


_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_SQL_START_RE = re.compile(
    r"^\s*(?:SQL\s*(?:query)?\s*:\s*)?((?:WITH|SELECT|VALUES|INSERT|UPDATE|DELETE|DROP|CREATE|"
    r"ALTER|PRAGMA|REPLACE|MERGE|TRUNCATE|ATTACH|EXPLAIN)\b.*)",
    re.IGNORECASE | re.DOTALL | re.MULTILINE,
)
# After prose on the same line ("Sure! SELECT ..."), only an upper-case keyword counts, so
# "select" or "with" in an English sentence is not taken for SQL.
_SQL_MID_LINE_RE = re.compile(r"\b((?:WITH|SELECT)\b.*)", re.DOTALL)
_STATEMENT_WORDS = frozenset(
    [
        "with",
        "select",
        "values",
        "insert",
        "update",
        "delete",
        "drop",
        "create",
        "alter",
        "pragma",
        "replace",
        "merge",
        "truncate",
        "attach",
        "explain",
        "(",
    ]
)


def _clean_sql(text: str) -> str:
    sql = text.strip().strip("`").strip()
    sql = re.sub(r"^SQL\s*(?:query)?\s*:\s*", "", sql, flags=re.IGNORECASE).strip()
    while sql.endswith(";"):
        sql = sql[:-1].rstrip()
    return sql


_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
# In SQL: string literals, quoted identifiers and comments (skipped whole), or where a statement
# ends (a semicolon, or a blank line before prose).
_SQL_SCAN_RE = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|--[^\n]*|/\*.*?\*/|(;|\n[ \t]*\n)", re.DOTALL
)


def _mask_comments(text: str) -> str:
    """`text` with every SQL comment blanked (same length, so offsets still line up): a keyword
    inside a comment (`/* SELECT */ DELETE ...`) must not be taken for where the SQL starts."""
    return _COMMENT_RE.sub(lambda m: " " * len(m.group(0)), text)


def _statement_end(sql: str) -> int:
    """Where the first statement of `sql` ends: its first semicolon or blank line that is not
    inside a string, quoted name or comment (or the end)."""
    for match in _SQL_SCAN_RE.finditer(sql):
        if match.group(1) is not None:
            return match.start()
    return len(sql)


def _looks_like_sql(sql: str) -> bool:
    code = _mask_comments(sql).lstrip()
    if not code:
        return False
    if code[:1] == "(":
        return True
    word = re.match(r"[A-Za-z]+", code)
    return word is not None and word.group(0).lower() in _STATEMENT_WORDS


def _from_json(text: str) -> ExtractedSql | None:
    candidate = text.strip()
    if not candidate.startswith("{"):
        return None
    try:
        data = json.loads(candidate)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    sql = data.get("sql") or data.get("query")
    if not isinstance(sql, str):
        return None
    explanation = data.get("explanation")
    return ExtractedSql(_clean_sql(sql), explanation if isinstance(explanation, str) else None)


def _prose(text: str) -> str | None:
    prose = " ".join(text.split()).strip()
    return prose[:500] if re.search(r"[A-Za-z0-9]", prose) else None


def _from_prose(text: str) -> ExtractedSql | None:
    masked = _mask_comments(text)
    match = _SQL_START_RE.search(masked) or _SQL_MID_LINE_RE.search(masked)
    if match is None:
        return None
    start = match.start(1)
    tail = text[start:]
    end = _statement_end(tail)
    if tail[end : end + 1] == ";" and _looks_like_sql(tail[end + 1 :]):
        # More statements follow: hand them all on, for the guard to refuse, rather than run
        # the first one as if it were the whole answer.
        end = len(tail)
    sql = _clean_sql(tail[:end])
    explanation = _prose(text[:start] + " " + tail[end:].lstrip("; \n"))
    return ExtractedSql(sql, explanation)


def extract_sql(reply: str) -> ExtractedSql:
    """The SQL of a model's reply (fenced, JSON, prefixed or after prose).

    Raises `LlmReplyInvalid` when the reply holds nothing that starts like a SQL statement.
    """
    text = reply.strip()
    found = _from_json(text)
    if found is None:
        fences = list(_FENCE_RE.finditer(text))
        ordered = sorted(fences, key=lambda m: m.group(1).lower() not in ("sql", ""))
        for fence in ordered:
            language, body = fence.group(1).lower(), fence.group(2)
            if language == "json":
                found = _from_json(body)
            elif language in ("sql", "") or _looks_like_sql(_clean_sql(body)):
                found = ExtractedSql(
                    _clean_sql(body), _prose(text[: fence.start()] + " " + text[fence.end() :])
                )
            if found is not None and _looks_like_sql(found.sql):
                break
            found = None
    if found is None:
        found = _from_prose(text)
    if found is None or not _looks_like_sql(found.sql):
        raise LlmReplyInvalid(
            "The language model's reply did not contain a SQL query.",
            details={"reply_excerpt": " ".join(reply.split())[:200]},
        )
    return found
