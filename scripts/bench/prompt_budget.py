"""Prompt size and build time for large synthetic schemas.

    python scripts/bench/prompt_budget.py [--repeat 7]

For schemas of 100 to 3,000 tables (10 columns each, a few sample values, FK chains), builds the
prompt for a question that names two tables and reports: the estimated tokens of the whole
schema rendered in full, of the prompt (budget: PROMPT_TOKEN_BUDGET), the tables kept in full,
whether the named tables and their FK neighbour made it, and the median build time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.connections.snapshot import (  # noqa: E402
    ColumnInfo,
    ForeignKeyInfo,
    SchemaSnapshot,
    TableInfo,
)
from backend.nl2sql.engines.base import GenerationRequest  # noqa: E402
from backend.nl2sql.engines.prompt import (  # noqa: E402
    PROMPT_TOKEN_BUDGET,
    build_prompt,
    estimate_tokens,
    render_table,
)

WORDS = [
    "account", "audit", "batch", "campaign", "channel", "contract", "device", "event", "feature",
    "grant", "incident", "ledger", "license", "metric", "note", "partner", "plan", "policy",
    "queue", "region", "release", "request", "rule", "segment", "session", "shift", "sku", "team",
    "ticket", "token", "usage", "warehouse", "widget", "workflow", "zone",
]  # fmt: skip
QUESTION = "Total invoice amount per vendor in Peru in 2023"
NAMED = ("invoices", "vendors")
NEIGHBOUR = "invoice_lines"


def schema(table_count: int) -> SchemaSnapshot:
    def col(name: str, type_: str = "TEXT", **kw: object) -> ColumnInfo:
        return ColumnInfo.model_validate({"name": name, "type": type_, **kw})

    tables = [
        TableInfo(
            name="vendors",
            columns=[col("id", "INTEGER", primary_key=True), col("vendor_name"),
                     col("country", sample_values=["France", "Japan", "Peru"])],
        ),
        TableInfo(
            name="invoices",
            columns=[col("id", "INTEGER", primary_key=True), col("vendor_id", "INTEGER"),
                     col("amount", "NUMERIC(12,2)"), col("issued_on", "DATE")],
            foreign_keys=[ForeignKeyInfo(columns=["vendor_id"], referred_table="vendors",
                                         referred_columns=["id"])],
        ),
        TableInfo(
            name="invoice_lines",
            columns=[col("id", "INTEGER", primary_key=True), col("invoice_id", "INTEGER")],
            foreign_keys=[ForeignKeyInfo(columns=["invoice_id"], referred_table="invoices",
                                         referred_columns=["id"])],
        ),
    ]  # fmt: skip
    index = 0
    while len(tables) < table_count:
        name = f"{WORDS[index % len(WORDS)]}_{WORDS[(index * 7 + 3) % len(WORDS)]}_{index}"
        columns = [col("id", "INTEGER", primary_key=True)]
        columns += [
            col(f"{WORDS[(index + k) % len(WORDS)]}_{suffix}", type_)
            for k, (suffix, type_) in enumerate(
                [("code", "TEXT"), ("name", "VARCHAR(200)"), ("created_at", "TIMESTAMP"),
                 ("amount", "NUMERIC(12,2)"), ("owner_id", "INTEGER"), ("notes", "TEXT"),
                 ("updated_at", "TIMESTAMP"), ("count", "INTEGER")]
            )
        ]  # fmt: skip
        columns.append(col("status", sample_values=["open", "closed", "pending", "void"]))
        fks = []
        if index and index % 3 == 0:
            previous = tables[-1]
            columns.append(col(f"{previous.name}_id", "INTEGER"))
            fks.append(
                ForeignKeyInfo(
                    columns=[f"{previous.name}_id"],
                    referred_table=previous.name,
                    referred_columns=["id"],
                )
            )
        tables.append(TableInfo(name=name, columns=columns, foreign_keys=fks, row_count=index))
        index += 1
    return SchemaSnapshot(db_type="postgresql", database_name="erp", tables=tables)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"budget: {PROMPT_TOKEN_BUDGET} estimated tokens (~4 chars/token)")
    print("tables  full-schema-tokens  prompt-tokens  kept-in-full  named+neighbour  median-ms")
    for count in (100, 300, 1000, 3000):
        snapshot = schema(count)
        full = sum(estimate_tokens(render_table(t)) for t in snapshot.tables)
        request = GenerationRequest(question=QUESTION, schema=snapshot, dialect="postgres")
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            prompt = build_prompt(request)
            timings.append((time.perf_counter() - started) * 1000)
        kept = set(prompt.tables)
        found = all(t in kept for t in (*NAMED, NEIGHBOUR))
        print(
            f"{count:>6}  {full:>18}  {prompt.estimated_tokens:>13}  {len(prompt.tables):>12}  "
            f"{'yes' if found else 'NO':>15}  {statistics.median(timings):>9.1f}"
        )


if __name__ == "__main__":
    main()
