"""One list of stop words: the LLM prompt's relevance scoring and the few-shot example ranking
drop the same words from a question; only the prompt also drops the words that say how to query."""

from __future__ import annotations

import pytest

from backend.nl2sql import relevance
from backend.nl2sql.engines import prompt
from backend.nl2sql.engines.stop_words import QUERY_WORDS, STOP_WORDS


def test_both_read_the_one_list() -> None:
    assert relevance.STOP_WORDS is STOP_WORDS
    assert prompt._STOPWORDS == STOP_WORDS | QUERY_WORDS
    assert not STOP_WORDS & QUERY_WORDS


@pytest.mark.parametrize(
    ("question", "example_words", "prompt_words"),
    [
        ("Can you tell us the revenue, please?", ("revenue",), {"revenue"}),
        ("Find the top 5 customers", ("top", "5", "customer"), {"5", "customer"}),
        ("Why were those orders late?", ("order", "late"), {"order", "late"}),
    ],
)
def test_a_question_loses_the_same_stop_words_in_both(
    question: str, example_words: tuple[str, ...], prompt_words: set[str]
) -> None:
    assert relevance.words(question) == example_words
    assert prompt.question_words(question) == prompt_words
