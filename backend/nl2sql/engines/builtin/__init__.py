"""`builtin`: the offline, deterministic, schema-aware question-to-SQL engine."""

from __future__ import annotations

from backend.nl2sql.engines.base import (
    Generation,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
    Turn,
)
from backend.nl2sql.engines.builtin.explain import explain
from backend.nl2sql.engines.builtin.intents import Intent
from backend.nl2sql.engines.builtin.lexicon import tokenise
from backend.nl2sql.engines.builtin.linking import SchemaIndex
from backend.nl2sql.engines.builtin.parser import parse
from backend.nl2sql.engines.builtin.sqlbuild import render

__all__ = ["BuiltinGenerator"]

_REFINEMENT_STARTS = frozenset(
    {"and", "now", "only", "just", "but", "also", "then", "instead", "excluding", "same", "ok"}
)
_REFINEMENT_PAIRS = frozenset({("what", "about"), ("how", "about"), ("what", "if")})
_SEPARATOR = " ; "


def is_refinement(question: str) -> bool:
    """Whether a question reads as a change to the previous one ("and only for 2023?")."""
    words = [t.lemma for t in tokenise(question) if t.kind == "word"]
    if not words:
        return False
    return words[0] in _REFINEMENT_STARTS or tuple(words[:2]) in _REFINEMENT_PAIRS


def conversation_context(history: list[Turn]) -> str | None:
    """The question the last answered turn asked, with the refinements before it folded in."""
    context: str | None = None
    for turn in history:
        if turn.sql is None:
            continue
        if context is not None and is_refinement(turn.question):
            context = context + _SEPARATOR + turn.question
        else:
            context = turn.question
    return context


class BuiltinGenerator(SqlGenerator):
    name = "builtin"

    def generate(self, request: GenerationRequest) -> Generation:
        index = SchemaIndex(request.schema)
        context = conversation_context(request.history)
        question = request.question.strip()
        if context is not None and is_refinement(question):
            intent = self._parse_follow_up(context, question, index)
        else:
            try:
                intent = parse(question, index)
            except QuestionNotUnderstood:
                if context is None:
                    raise
                intent = self._parse_follow_up(context, question, index)
        sql = render(intent, index, request.dialect)
        return Generation(
            sql=sql,
            explanation=explain(intent),
            model="builtin",
            recognised=dict(intent.recognised),
        )

    @staticmethod
    def _parse_follow_up(context: str, question: str, index: SchemaIndex) -> Intent:
        merged = context + _SEPARATOR
        return parse(merged + question, index, refinement_from=len(tokenise(merged)))
