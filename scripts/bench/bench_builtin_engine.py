"""Time the builtin engine's `generate()` on the demo shop database.

    python scripts/bench/bench_builtin_engine.py [--repeat 50]

Prints the median and 95th percentile per question kind, in milliseconds (the schema's linking
index is cached after the first question), plus what building that index costs on a cold
cache.
"""

from __future__ import annotations

import argparse
import statistics
import time

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.engines.base import GenerationRequest, Turn
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.engines.builtin.linking import SchemaIndex

QUESTIONS = [
    "How many customers are in France?",
    "top 5 customers by revenue",
    "monthly revenue in 2023",
    "products never ordered",
    "customers with more than 3 orders",
    "What is the average unit price of products in each category?",
    "which supplier has the most products",
    "orders in the last 30 days",
]


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered):7.3f} ms   p95 {p95:7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    snapshot = introspect(engine, db_type="sqlite", database_name="shop")
    engine.dispose()
    generator = BuiltinGenerator()
    everything: list[float] = []
    for question in QUESTIONS:
        samples = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            generator.generate(GenerationRequest(question=question, schema=snapshot))
            samples.append((time.perf_counter() - started) * 1000)
        everything += samples
        print(f"{question[:45]:45s} {_ms(samples)}")
    follow_up = []
    history = [Turn("number of orders per status", "SELECT 1")]
    for _ in range(args.repeat):
        started = time.perf_counter()
        generator.generate(
            GenerationRequest(question="and only for 2023?", schema=snapshot, history=history)
        )
        follow_up.append((time.perf_counter() - started) * 1000)
    print(f"{'follow-up: and only for 2023?':45s} {_ms(follow_up)}")
    index_build = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        SchemaIndex(snapshot)
        index_build.append((time.perf_counter() - started) * 1000)
    print(f"{'schema index build (cold cache only)':45s} {_ms(index_build)}")
    print(f"{'all questions':45s} {_ms(everything)}")


if __name__ == "__main__":
    main()
