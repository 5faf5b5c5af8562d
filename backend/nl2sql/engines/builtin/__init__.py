"""`builtin`: the offline, deterministic, schema-aware question-to-SQL engine."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import threading
from collections import OrderedDict
from typing import NamedTuple

from backend.connections.snapshot import SchemaSnapshot
from backend.core.errors import AppError
from backend.nl2sql.engines.base import (
    Generation,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
    Suggestion,
    Turn,
)
from backend.nl2sql.engines.builtin.activity import end_date_variant
from backend.nl2sql.engines.builtin.column_choice import prefer_named_columns
from backend.nl2sql.engines.builtin.combined import CombinedFigure, combined_generation
from backend.nl2sql.engines.builtin.confidence import (
    ANSWER_THRESHOLD,
    assess,
    competing_readings,
    join_alternatives,
    sql_signals,
)
from backend.nl2sql.engines.builtin.cues import REFINEMENT_WORDS
from backend.nl2sql.engines.builtin.disjunctions import or_between_conditions
from backend.nl2sql.engines.builtin.doubts import doubt_alternatives
from backend.nl2sql.engines.builtin.explain import explain
from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.interpret import parse
from backend.nl2sql.engines.builtin.joinplan import keep_to_named_tables, resolved_roles
from backend.nl2sql.engines.builtin.lexicon import tokenise
from backend.nl2sql.engines.builtin.linking import (
    ColumnRef,
    SchemaIndex,
    definition_suggestions,
    inferred_join_notes,
)
from backend.nl2sql.engines.builtin.roles import one_row_for_two_roles, role_words, split_roles
from backend.nl2sql.engines.builtin.sqlbuild import DIALECTS, render
from backend.nl2sql.engines.builtin.unmet import per_unit_variant
from backend.nl2sql.guard import ParsedSql, parse_sql
from backend.semantic.layer import SemanticLayer

__all__ = ["BuiltinGenerator"]

logger = logging.getLogger(__name__)
_INDEX_LOCK = threading.Lock()

_REFINEMENT_PAIRS = frozenset({("what", "about"), ("how", "about"), ("what", "if")})
_SEPARATOR = " ; "


def is_refinement(question: str) -> bool:
    """Whether a question reads as a change to the previous one ("and only for 2023?")."""
    words = [t.lemma for t in tokenise(question) if t.kind == "word"]
    if not words:
        return False
    return words[0] in REFINEMENT_WORDS or tuple(words[:2]) in _REFINEMENT_PAIRS


_INDEX_CACHE: OrderedDict[str, SchemaIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 32


_SEEN: OrderedDict[tuple[int, int], tuple[SchemaSnapshot, SemanticLayer | None, str]] = (
    OrderedDict()
)
"""The content key of snapshot and layer objects seen lately, by identity: the platform hands
the same parsed objects to every ask while their versions hold (`pipeline`), and serialising
and hashing a whole schema on every ask cost more than the lookup it keys. The entries keep
their objects alive, so an id is never reused while it is here."""


def _content_key(snapshot: SchemaSnapshot, semantic: SemanticLayer | None) -> str:
    identity = (id(snapshot), id(semantic))
    with _INDEX_LOCK:
        seen = _SEEN.get(identity)
        if seen is not None and seen[0] is snapshot and seen[1] is semantic:
            _SEEN.move_to_end(identity)
            return seen[2]
    layer = semantic.model_dump_json() if semantic is not None else ""
    key = hashlib.sha256((snapshot.model_dump_json() + layer).encode()).hexdigest()
    with _INDEX_LOCK:
        _SEEN[identity] = (snapshot, semantic, key)
        while len(_SEEN) > _INDEX_CACHE_SIZE:
            _SEEN.popitem(last=False)
    return key


def schema_index(snapshot: SchemaSnapshot, semantic: SemanticLayer | None = None) -> SchemaIndex:
    """The linking index of a snapshot (and layer), reused while the same schema keeps being
    asked about."""
    key = _content_key(snapshot, semantic)
    with _INDEX_LOCK:
        index = _INDEX_CACHE.get(key)
        if index is not None:
            _INDEX_CACHE.move_to_end(key)
            return index
    index = SchemaIndex(snapshot, semantic)
    with _INDEX_LOCK:
        _INDEX_CACHE[key] = index
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    return index


def _is_fragment(question: str) -> bool:
    """A short question without a question word of its own ("exclude France", "in 2023")."""
    words = [t.lemma for t in tokenise(question) if t.kind == "word"]
    return len(words) <= 6 and not (set(words) & _QUESTION_WORDS)


def _selects_a_column(intent: Intent) -> bool:
    """Whether the question asks for columns of its own (a column, a sum, an average...).

    A column that only shows the value the question filters on ("Beverages") does not count.
    """
    filtered = {
        (f.column.table, f.column.name) for f in intent.filters if isinstance(f.column, ColumnRef)
    }
    return any(
        m.column is not None
        and (m.agg is not None or (m.column.table, m.column.name) not in filtered)
        for m in intent.select
    )


_QUESTION_WORDS = frozenset(
    {"what", "which", "who", "how", "list", "show", "give", "find", "count", "return", "tell"}
)


def conversation_context(history: list[Turn]) -> list[str]:
    """The last answered question with the follow-ups that refined it, oldest first."""
    context: list[str] = []
    for turn in history:
        if turn.sql is None:
            continue
        if context and is_refinement(turn.question):
            context.append(turn.question)
        else:
            context = [turn.question]
    return context


def sqlglot_dialect(dialect: str) -> str:
    return DIALECTS.get(dialect.lower(), dialect.lower())


def _parsed_or_none(sql: str, dialect: str) -> ParsedSql | None:
    """`sql` parsed as the guard parses it, or None where the guard would refuse the text
    (`sql_signals` then parses it its own way, and the guard refuses it in turn)."""
    try:
        return parse_sql(sql, dialect)
    except AppError:
        return None


def _date_alternatives(index: SchemaIndex, intent: Intent, dialect: str) -> list[Suggestion]:
    """The same reading on each other date of the table, when the question named none."""
    out: list[Suggestion] = []
    for chosen, others in intent.date_choices:
        for other in others:
            variant = _with_column(intent, chosen, other)
            with contextlib.suppress(QuestionNotUnderstood):
                out.append(
                    Suggestion(text=f"Or: {explain(variant)}", sql=render(variant, index, dialect))
                )
    return out[:4]


def _link_alternatives(
    index: SchemaIndex, intent: Intent, dialect: str, question: str, signals: dict[str, float]
) -> list[Suggestion]:
    """The competing readings: each word the reading tied to one of several columns, read as
    each other column instead, and each join between tables that refer to each other in
    several ways, made the other way; each with its SQL and its own confidence."""
    out: list[Suggestion] = []
    for chosen, others in intent.column_choices:
        for other in others:
            variant = _with_column(intent, chosen, other)
            with contextlib.suppress(QuestionNotUnderstood):
                sql = render(variant, index, dialect)
                variant_signals = {
                    **signals,
                    **sql_signals(sql, sqlglot_dialect(dialect), variant, question, index),
                }
                out.append(
                    Suggestion(
                        text=f"Or, with {other.table}.{other.name} for {chosen.table}."
                        f"{chosen.name}: {explain(variant)}",
                        sql=sql,
                        confidence=assess(variant_signals).confidence,
                    )
                )
    return out[:4]


def _doubt_suggestions(
    sql: str, dialect: str, signals: dict[str, float], index: SchemaIndex, question: str
) -> list[Suggestion]:
    out = [
        Suggestion(text=f"Or, {words}.", sql=variant)
        for words, variant in doubt_alternatives(sql, sqlglot_dialect(dialect), signals)
    ]
    if signals.get("two_way_activity"):
        variant = end_date_variant(sql, sqlglot_dialect(dialect), index)
        if variant is not None:
            out.append(Suggestion(text="Or, active as not yet ended (no end date).", sql=variant))
    if signals.get("grouped_by_quantity"):
        variant = per_unit_variant(sql, sqlglot_dialect(dialect), question, index)
        if variant is not None:
            out.append(
                Suggestion(text="Or, as a ratio per unit (total ÷ total units).", sql=variant)
            )
    return out


def _join_suggestions(index: SchemaIndex, sql: str, dialect: str) -> list[Suggestion]:
    return [
        Suggestion(text=f"Or, {words}.", sql=variant)
        for words, variant in join_alternatives(sql, sqlglot_dialect(dialect), index)[:2]
    ]


def _with_column(intent: Intent, old: ColumnRef, new: ColumnRef) -> Intent:
    """A copy of `intent` reading `new` wherever it read `old` (filters, groups, order)."""
    variant = copy.deepcopy(intent)

    def swap(measure: Measure) -> None:
        if measure.column == old:
            measure.column = new

    for f in [*variant.filters, *variant.having]:
        if isinstance(f.column, Measure):
            swap(f.column)
        elif f.column == old:
            f.column = new
    for m in [*variant.select, *variant.group_by, *(m for m, _ in variant.order_by)]:
        swap(m)
    return variant


def _alternatives(index: SchemaIndex, intent: Intent) -> list[Suggestion]:
    """Plain questions about the tables the reading involved, for a client to offer."""
    out: list[Suggestion] = []
    tables = [intent.table, *intent.extra_tables]
    for table in dict.fromkeys(t for t in tables if t):
        words = " ".join(index.table(table).name.replace("_", " ").split()).lower()
        out.append(Suggestion(text=f"How many rows does {words} have?"))
    return out[:3]


class Reading(NamedTuple):
    """A question's reading: the interpretation, its SQL, the signals its confidence is
    assessed from, and the schema index it was read against."""

    intent: Intent
    sql: str
    signals: dict[str, float]
    schema: SchemaIndex
    parsed: ParsedSql | None = None
    """`sql` parsed the guard's way, handed on with the generation (None: the guard would
    refuse the text)."""


class BuiltinGenerator(SqlGenerator):
    name = "builtin"
    uses_examples = False

    def generate(self, request: GenerationRequest) -> Generation:
        try:
            return self._generate(request)
        except CombinedFigure as figure:  # parts each read on their own (see `combined`)
            return combined_generation(figure, request, self._generate)
        except QuestionNotUnderstood:
            raise
        except Exception as exc:
            # A rule that trips over an unusual question must not become a server error: the
            # user gets a decline, the log keeps the bug.
            logger.exception("builtin engine failed on %r", request.question)
            raise QuestionNotUnderstood(
                "the offline engine could not read this question", recognised={}
            ) from exc

    def read(self, request: GenerationRequest) -> Reading:
        """The engine's reading of a question and what its confidence rests on, before the
        decision to answer: the same path `generate` takes (`scripts/fit_confidence.py` fits
        the confidence on exactly these signals)."""
        index = schema_index(request.schema, request.semantic)
        context = conversation_context(request.history)
        question = request.question.strip()
        if context and is_refinement(question):
            intent = self._parse_follow_up(context, question, index)
        else:
            try:
                intent = parse(question, index)
            except QuestionNotUnderstood as standalone:
                if not context:
                    raise
                try:
                    intent = self._parse_follow_up(context, question, index)
                except QuestionNotUnderstood:
                    raise standalone from None
            else:
                if (
                    context
                    and not intent.subject_named
                    and _is_fragment(question)
                    and not _selects_a_column(intent)
                ):
                    # "exclude France": no subject of its own, so it refines the last question;
                    # "total payment amount by method" or "distinct customer segments" asks for
                    # columns of its own: a new question
                    with contextlib.suppress(QuestionNotUnderstood):
                        intent = self._parse_follow_up(context, question, index)
        intent = prefer_named_columns(keep_to_named_tables(intent, index), index)
        intent.words |= role_words(tokenise(question))
        intent, settled = split_roles(intent, index, tokenise(question))
        if intent.limit is not None:
            intent.limit = min(intent.limit, request.row_cap)
        sql = render(intent, index, request.dialect)
        sql = or_between_conditions(sql, sqlglot_dialect(request.dialect), question) or sql
        # Parsed the guard's way: the guard then checks this tree instead of parsing again.
        parsed = _parsed_or_none(sql, sqlglot_dialect(request.dialect))
        signals = {
            **intent.signals,
            **sql_signals(
                sql,
                sqlglot_dialect(request.dialect),
                intent,
                question,
                index,
                tree=parsed.statement if parsed is not None else None,
            ),
        }
        if signals.get("ambiguous_joins"):  # a key whose role the question names: no guess
            roles = resolved_roles(sql, sqlglot_dialect(request.dialect), index, intent.words)
            if one_row_for_two_roles(sql, sqlglot_dialect(request.dialect), index):
                roles = 0  # the named role is one of two the table plays here
            roles += settled  # "from York to Hull": each role joined by its own key
            signals["ambiguous_joins"] = max(0.0, signals["ambiguous_joins"] - roles)
        return Reading(intent, sql, signals, index, parsed)

    def _generate(self, request: GenerationRequest) -> Generation:
        intent, sql, signals, index, parsed = self.read(request)
        question = request.question.strip()
        assessment = assess(signals)
        explanation = explain(intent)
        joins = inferred_join_notes(index, sql, sqlglot_dialect(request.dialect))
        if joins:
            explanation += " (" + "; ".join(joins) + ")"
        if assessment.confidence < ANSWER_THRESHOLD or competing_readings(signals):
            recognised = dict(intent.recognised)
            recognised["doubts"] = assessment.reasons
            raise QuestionNotUnderstood(
                "the question's reading is too uncertain to answer with: "
                + "; ".join(assessment.reasons[:2] or ["weak evidence"]),
                recognised=recognised,
                suggestions=[
                    Suggestion(
                        text=f"Did you mean: {explanation}",
                        sql=sql,
                        confidence=assessment.confidence,
                    ),
                    *_link_alternatives(index, intent, request.dialect, question, signals),
                    *_join_suggestions(index, sql, request.dialect),
                    *_doubt_suggestions(sql, request.dialect, signals, index, question),
                    *_date_alternatives(index, intent, request.dialect),
                    *(
                        Suggestion(text=f"By the definition {d}")
                        for d in definition_suggestions(index, question)
                    ),
                    *_alternatives(index, intent),
                ],
                confidence=assessment.confidence,
            )
        return Generation(
            sql=sql,
            explanation=explanation,
            model="builtin",
            recognised=dict(intent.recognised),
            confidence=assessment.confidence,
            parsed=parsed,
        )

    @staticmethod
    def _parse_follow_up(context: list[str], question: str, index: SchemaIndex) -> Intent:
        """Parse earlier question + refinements as one, later parts overriding earlier ones."""
        text = context[0]
        cuts: list[int] = []
        for part in [*context[1:], question]:
            text += _SEPARATOR
            cuts.append(len(tokenise(text)))
            text += part
        return parse(text, index, refinement_from=cuts)
