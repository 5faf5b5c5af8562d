"""Which key of a related table points at the rows a question is about, when it has several.

"courses without prerequisites" over `prereq(course_id, prereq_id)`, "people who have no
friend" over `person_friend(name, friend)`: both keys refer to the focus table, but one of
them is named for what the related table records (`prereq_id`, `friend`), the other end of
the relation. The rows that have (or lack) such related rows are the ones the other key
points at: `course_id`, `name`.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.linking import SchemaIndex


def owner_key(index: SchemaIndex, focus: str, related: str) -> tuple[str, str] | None:
    """(focus column, related column) of the one edge between `focus` and `related` whose
    related column is not named for the related table's own role; None when there are not
    several edges or the names do not single one out."""
    edges = [
        (own, other)
        for table, own, other in index.edges.get(focus.lower(), [])
        if table.lower() == related.lower()
    ]
    if len(edges) < 2:
        return None
    role = set(index.table(related).words) - set(index.table(focus).words)
    if not role:
        return None
    kept = []
    for own, other in edges:
        col = index.column(related, other)
        words = set(col.words) if col is not None else set()
        if not words & role:
            kept.append((own, other))
    return kept[0] if len(kept) == 1 else None
