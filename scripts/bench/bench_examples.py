"""Time choosing an LLM prompt's few-shot examples by relevance (BM25+ over the candidates'
questions) against the recency pick it replaced (first five distinct questions), in one run.

    python scripts/bench/bench_examples.py [--repeat 200]

Candidate sets go up to what one ask may consider: 500 verified examples, 200 templates and 200
earlier answers (`feedback.retrieval.MAX_CANDIDATES`, `pipeline.MAX_EXAMPLE_CANDIDATES`).
Prints the median and p95 per size in milliseconds and the ratio to the recency baseline, with
the questions' words cached (the steady state: a connection's candidates repeat from one ask to
the next) and, for the first ranking of each set, uncached.
Only LLM asks pay this; the offline engine reads no examples.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from backend.nl2sql.engines.base import Example
from backend.nl2sql.relevance import question_key, rank_examples, words

WORDS = [
    "revenue",
    "orders",
    "customers",
    "country",
    "month",
    "year",
    "product",
    "category",
    "supplier",
    "payment",
    "status",
    "average",
    "total",
    "count",
    "top",
    "largest",
    "smallest",
    "returned",
    "delivered",
    "shipped",
    "per",
    "each",
    "by",
    "last",
    "quarter",
    "week",
    "region",
    "city",
    "channel",
    "mobile",
    "web",
    "refund",
    "discount",
    "price",
    "stock",
]
SIZES = (10, 100, 900)
LIMIT = 5


def _candidates(count: int, rng: random.Random) -> list[Example]:
    return [
        Example(question=" ".join(rng.choices(WORDS, k=rng.randint(3, 9))), sql="SELECT 1")
        for _ in range(count)
    ]


def _recency(candidates: list[Example], limit: int) -> list[Example]:
    """The pick before relevance: the first `limit` distinct questions, in the given order."""
    out: list[Example] = []
    seen: set[str] = set()
    for example in candidates:
        key = question_key(example.question)
        if key not in seen:
            seen.add(key)
            out.append(example)
            if len(out) == limit:
                break
    return out


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    question = "total revenue per country by month"
    for size in SIZES:
        candidates = _candidates(size, rng)
        words.cache_clear()
        started = time.perf_counter()
        rank_examples(question, candidates, limit=LIMIT)
        cold = (time.perf_counter() - started) * 1000
        ranked, recent = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            rank_examples(question, candidates, limit=LIMIT)
            ranked.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            _recency(candidates, LIMIT)
            recent.append((time.perf_counter() - started) * 1000)
        r50, r95 = _ms(ranked)
        b50, _ = _ms(recent)
        print(
            f"{size:4d} candidates: relevance median {r50:7.3f} ms p95 {r95:7.3f} ms;"
            f" first (uncached words) {cold:7.3f} ms; recency baseline median {b50:7.4f} ms;"
            f" ratio {r50 / max(b50, 1e-6):8.1f}x"
        )


if __name__ == "__main__":
    main()
