"""What a semantic layer costs an ask's in-process stages, against the same work without one.

    python scripts/bench/semantic_layer.py [--repeat 2000]

On the demo shop's schema with the draft layer (plus one hidden column and one hidden table):
guarding a query (with the layer: the hidden-item check and the star narrowing), building the
LLM prompt (with the layer: relevance-ranked definitions), and the visible snapshot generators
get. Prints medians in microseconds and each ratio to its baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.connections.executor import open_sqlite_read_only  # noqa: E402
from backend.connections.introspection import introspect  # noqa: E402
from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.nl2sql.engines.base import GenerationRequest  # noqa: E402
from backend.nl2sql.engines.prompt import build_prompt  # noqa: E402
from backend.nl2sql.guard import guard_sql  # noqa: E402
from backend.semantic.draft import propose_layer  # noqa: E402
from backend.semantic.visibility import hidden_items, public_layer, visible_snapshot  # noqa: E402

SQL = (
    "SELECT c.country, SUM(p.amount) AS revenue FROM customers AS c "
    "JOIN orders AS o ON o.customer_id = c.id JOIN payments AS p ON p.order_id = o.id "
    "WHERE p.paid_at IS NOT NULL GROUP BY c.country ORDER BY revenue DESC"
)
STAR_SQL = "SELECT * FROM customers ORDER BY id"
QUESTION = "total amount paid by customers per country"


def median_us(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    repeat = parser.parse_args().repeat
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    snapshot = introspect(engine, db_type="sqlite", database_name="shop")
    draft = propose_layer(snapshot)
    layer = draft.model_copy(
        update={
            "tables": [
                t.model_copy(update={"hidden": True})
                if t.name == "employees"
                else t.model_copy(
                    update={
                        "columns": [
                            *t.columns,
                            *(
                                [
                                    draft.tables[0]
                                    .columns[0]
                                    .model_copy(update={"name": "email", "hidden": True})
                                ]
                                if t.name == "customers"
                                else []
                            ),
                        ]
                    }
                )
                for t in draft.tables
            ]
        }
    )
    hidden = hidden_items(layer)
    visible = visible_snapshot(snapshot, hidden)
    shown = public_layer(layer)
    rows = [
        ("guard, a join", lambda: guard_sql(SQL, snapshot=snapshot, row_cap=1000),
         lambda: guard_sql(SQL, snapshot=snapshot, row_cap=1000, hidden=hidden)),
        ("guard, SELECT *", lambda: guard_sql(STAR_SQL, snapshot=snapshot, row_cap=1000),
         lambda: guard_sql(STAR_SQL, snapshot=snapshot, row_cap=1000, hidden=hidden)),
        ("prompt", lambda: build_prompt(GenerationRequest(question=QUESTION, schema=snapshot)),
         lambda: build_prompt(
             GenerationRequest(question=QUESTION, schema=visible, semantic=shown)
         )),
        ("visible snapshot", lambda: snapshot, lambda: visible_snapshot(snapshot, hidden)),
    ]  # fmt: skip
    print(f"{'stage':<18}{'without µs':>12}{'with µs':>12}{'ratio':>8}")
    for name, baseline, with_layer in rows:
        base = median_us(baseline, repeat)
        layered = median_us(with_layer, repeat)
        print(f"{name:<18}{base:>12.1f}{layered:>12.1f}{layered / max(base, 0.01):>8.2f}")


if __name__ == "__main__":
    main()
