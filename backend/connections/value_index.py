"""The snapshot's value index: distinct values of text columns with more of them than the
samples hold (people's names, codes, cities), so a question that names one ("singers from
Bangladesh", "flights of 'O'Brien Air'") can be linked to the column that stores it.

The index comes from the same bounded scan as the samples (no extra query) and is kept small:
a value longer than `INDEX_MAX_VALUE_LENGTH` is left out (free text, not a name), a column keeps
at most `INDEX_COLUMN_BYTES` of values (in the order the scan met them), and a schema at most
`INDEX_SCHEMA_BYTES` over all its columns (the columns with the fewest bytes first, so the
category-like ones are the ones kept). The snapshot's size in the cache is then bounded by its
structure plus `INDEX_SCHEMA_BYTES`, whatever the data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from backend.connections.snapshot import ColumnInfo

INDEX_MAX_VALUE_LENGTH = 60
"""Longest value indexed: a longer one is a description, not something a question names."""

INDEX_COLUMN_BYTES = 16 * 1024
"""Bytes of values (UTF-8) one column keeps in the index."""

INDEX_SCHEMA_BYTES = 256 * 1024
"""Bytes of values (UTF-8) one schema keeps in the index, over all its columns."""


def _size(values: Iterable[str]) -> int:
    return sum(len(v.encode("utf-8", "surrogatepass")) + 1 for v in values)


def column_index(values: Iterable[object]) -> list[str]:
    """The distinct values of one column as the scan met them, within the column's budget.
    NUL characters and surrounding spaces never reach the snapshot; a value too long to name,
    or empty, is skipped."""
    kept: list[str] = []
    seen: set[str] = set()
    used = 0
    for value in values:
        if value is None or isinstance(value, bytes | bytearray | memoryview):
            continue
        text = str(value).replace("\x00", "").strip()
        if not text or len(text) > INDEX_MAX_VALUE_LENGTH or text in seen:
            continue
        size = _size((text,))
        if used + size > INDEX_COLUMN_BYTES:
            break
        seen.add(text)
        kept.append(text)
        used += size
    return kept


def bound_schema_index(columns: Sequence[ColumnInfo]) -> None:
    """Drop whole columns' indexes, the largest first, until the schema's fit its budget."""
    indexed = [c for c in columns if c.indexed_values]
    indexed.sort(key=lambda c: _size(c.indexed_values or ()))
    used = 0
    for column in indexed:
        size = _size(column.indexed_values or ())
        if used + size > INDEX_SCHEMA_BYTES:
            column.indexed_values = None
            continue
        used += size


def index_bytes(columns: Iterable[ColumnInfo]) -> int:
    """Bytes of values the index holds over `columns` (what the budgets count)."""
    return sum(_size(c.indexed_values or ()) for c in columns)
