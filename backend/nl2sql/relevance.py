"""Few-shot examples chosen by how close their question is to the one asked.

A deterministic lexical similarity: both questions become normalised words (case-folded, stop
words dropped, a plural `s` removed), and the candidates are scored with BM25+ (`rank_bm25`);
BM25+ keeps every shared word's weight positive however small the candidate set, where plain
Okapi BM25 scores a word found in half of two candidates as zero. Candidates sharing no word
with the question keep their given order after those that share some. Pure functions: no
database, no network, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from rank_bm25 import BM25Plus

from backend.nl2sql.engines.base import Example
from backend.nl2sql.engines.stop_words import STOP_WORDS

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=8192)
def words(text: str) -> tuple[str, ...]:
    """The normalised words of `text` that carry meaning, in order (cached: the candidates of a
    connection's asks are mostly the same questions from one ask to the next)."""
    out: list[str] = []
    for raw in _WORD.findall(text.casefold()):
        if raw in STOP_WORDS:
            continue
        word = raw
        if len(word) > 3 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return tuple(out)


def question_key(question: str) -> str:
    """Two questions with the same key are the same question (case and spacing aside)."""
    return " ".join(question.casefold().split())


def rank_examples(question: str, candidates: Sequence[Example], *, limit: int) -> list[Example]:
    """The `limit` candidates most similar to `question`, best first; ties and candidates
    sharing no word keep the given order (put the most trusted first). Repeated questions
    count once (the first)."""
    unique: list[Example] = []
    seen: set[str] = set()
    for example in candidates:
        key = question_key(example.question)
        if key and key not in seen:
            seen.add(key)
            unique.append(example)
    if limit <= 0 or not unique:
        return []
    asked = words(question)
    documents = [words(example.question) for example in unique]
    if not asked or not any(documents):
        return unique[:limit]
    scores = BM25Plus([list(d) for d in documents]).get_scores(list(asked))
    asked_set = set(asked)
    order = sorted(
        range(len(unique)),
        key=lambda i: (
            not asked_set.intersection(documents[i]),
            -float(scores[i]),
            i,
        ),
    )
    return [unique[i] for i in order[:limit]]
