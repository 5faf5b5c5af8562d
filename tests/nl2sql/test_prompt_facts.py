"""What prompt building works out once per table object (words, sample values, rendered
block) gives the prompts the direct computation gives, and never outlives its object."""

from __future__ import annotations

from backend.connections.snapshot import ColumnInfo, ForeignKeyInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.engines import prompt as prompt_module
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.prompt import (
    build_prompt,
    question_words,
    rank_tables,
    score_table,
    table_facts,
)


def _snapshot(city_values: list[str]) -> SchemaSnapshot:
    return SchemaSnapshot(
        db_type="sqlite",
        database_name="shop",
        tables=[
            TableInfo(
                name="customers",
                columns=[
                    ColumnInfo(name="id", type="INTEGER", primary_key=True),
                    ColumnInfo(name="city", type="TEXT", sample_values=city_values),
                ],
            ),
            TableInfo(
                name="suppliers",
                columns=[
                    ColumnInfo(name="id", type="INTEGER", primary_key=True),
                    ColumnInfo(name="town", type="TEXT", sample_values=["Lyon", "New York"]),
                ],
            ),
            TableInfo(
                name="orders",
                columns=[
                    ColumnInfo(name="id", type="INTEGER", primary_key=True),
                    ColumnInfo(name="customer_id", type="INTEGER"),
                ],
                foreign_keys=[
                    ForeignKeyInfo(
                        columns=["customer_id"], referred_table="customers", referred_columns=["id"]
                    )
                ],
            ),
        ],
    )


def _ranked(snapshot: SchemaSnapshot, question: str) -> list[str]:
    return [t.name for t in rank_tables(snapshot, question)]


def test_sample_values_rank_tables_from_the_cached_facts() -> None:
    snapshot = _snapshot(["Paris", "Rio de Janeiro"])
    # A one-word value (stemmed) and a value of several words (a phrase of the question).
    assert _ranked(snapshot, "Who lives in Paris?")[0] == "customers"
    assert _ranked(snapshot, "Who lives in rio de janeiro?")[0] == "customers"
    assert _ranked(snapshot, "Who is based in New York?")[0] == "suppliers"
    # Asked again, from the facts worked out the first time: the same order.
    assert _ranked(snapshot, "Who lives in Paris?")[0] == "customers"


def test_a_new_snapshot_object_is_read_afresh() -> None:
    """Facts belong to the table object they were worked out from: a refreshed snapshot (new
    objects, new sample values) is scored and rendered from its own values."""
    old = _snapshot(["Paris"])
    question = "Who lives in Lisbon?"
    request = GenerationRequest(question=question, schema=old, dialect="sqlite")
    assert "'Lisbon'" not in build_prompt(request).system
    words, lowered = question_words(question), question.lower()
    assert score_table(old.tables[0], words, lowered) == 0
    new = _snapshot(["Lisbon"])
    assert score_table(new.tables[0], words, lowered) == 2.0
    prompt = build_prompt(GenerationRequest(question=question, schema=new, dialect="sqlite"))
    assert "'Lisbon'" in prompt.system
    assert table_facts(new.tables[0]) is table_facts(new.tables[0])
    assert table_facts(new.tables[0]) is not table_facts(old.tables[0])


def test_the_facts_cache_is_bounded() -> None:
    cache = prompt_module._IdentityCache(max_entries=3)
    made: list[int] = []
    keys = [object() for _ in range(5)]
    for index, key in enumerate(keys):
        assert cache.get(key, lambda index=index: made.append(index) or index) == index
    assert len(cache._entries) == 3
    # The oldest were dropped and are worked out again; the newest are served.
    assert cache.get(keys[4], lambda: -1) == 4
    assert cache.get(keys[0], lambda: 100) == 100
    assert made == [0, 1, 2, 3, 4]
