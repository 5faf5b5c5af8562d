"""Which column names a table's own rows when its name says something else: `practice_name` of
`clinics` or `company_name` of `accounts` names the row itself (other tables refer to the row,
the column is its one required name, and no table of the schema is a `practice` or a
`company`), while `customer_name` of `jobs`, where a `customers` table exists or jobs are
referred to by nothing, is more likely a copy of another row's name."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.joinplan import stem
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

_LABEL_TAILS = (("name",), ("title",))


def _referred_to(index: SchemaIndex, table: str) -> bool:
    """Whether another table declares a foreign key to `table`."""
    lowered = table.lower()
    return any(
        fk.referred_table.lower() == lowered
        for other in index.snapshot.tables
        if other.name.lower() != lowered
        for fk in other.foreign_keys
    )


def _names_a_table(index: SchemaIndex, words: tuple[str, ...]) -> bool:
    stems = {stem(w) for w in words}
    return any(stems & {stem(w) for w in t.words} for t in index.tables.values())


def names_its_rows(index: SchemaIndex, col: ColumnRef) -> bool:
    """Whether `col`, a `<qualifier>_name` column, is its table's own label (see above)."""
    if col.kind != "text" or col.nullable or col.words[-1:] not in _LABEL_TAILS:
        return False
    qualifier = col.words[:-1]
    if not qualifier or index.referred_row(col) is not None:
        return False
    names = [c for c in index.columns_of.get(col.table.lower(), []) if c.words[-1:] in _LABEL_TAILS]
    if names != [col]:
        return False
    return _referred_to(index, col.table) and not _names_a_table(index, qualifier)
