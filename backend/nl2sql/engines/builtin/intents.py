"""What a question asks for, independent of SQL text: the engine's intermediate form."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from backend.nl2sql.engines.builtin.linking import ColumnRef

Literal = str | int | float


@dataclass(slots=True)
class Measure:
    """A selected or ordered expression: a column, an aggregate of one, or a time bucket."""

    column: ColumnRef | None
    """None with agg COUNT means COUNT(*)."""
    agg: str | None = None
    """COUNT, SUM, AVG, MIN, MAX, or PCT (a percentage of rows, see `condition`)."""
    distinct: bool = False
    bucket: str | None = None
    """`year`, `month`, `week` or `day` for a time bucket of a date column."""
    count_table: str | None = None
    """For COUNT(*) and PCT: the table whose rows are counted (COUNT DISTINCT its key after
    joins)."""
    condition: list[Filter] = field(default_factory=list)
    """For PCT (percentage of the rows that meet these conditions, 0-100)."""
    condition_sql: list[str] = field(default_factory=list)
    """For PCT: named filters of the semantic layer among the conditions (SQL fragments)."""
    since: ColumnRef | None = None
    """A duration: from this date column to `column`, in `unit`s (days unless hour/week)."""
    unit: str = "day"
    sql: str | None = None
    """A semantic layer's named measure: its aggregate SQL fragment (agg is `LAYER`)."""
    label: str | None = None
    """The name a layer measure is shown under."""
    sql_tables: list[str] = field(default_factory=list)
    """Tables the fragment reads."""
    via: ColumnRef | None = None
    """`column` is read on the row this reference key points to (`staff.manager_id` -> the
    manager's `full_name`): the referred table is joined again under an alias of its own."""
    own_filter: str | None = None
    """A layer measure's own filter, applied inside its aggregates (CASE WHEN) because the
    other measures of the same answer do not share it."""

    @property
    def tables(self) -> list[str]:
        if self.via is not None:
            out = [self.via.table]
        else:
            out = [self.column.table] if self.column else []
        if self.count_table:
            out.append(self.count_table)
        if self.since is not None:
            out.append(self.since.table)
        for f in self.condition:
            out.extend(f.column.tables if isinstance(f.column, Measure) else [f.column.table])
        out.extend(self.sql_tables)
        return out


@dataclass(slots=True)
class Filter:
    column: ColumnRef | Measure
    op: str
    """=, !=, >, >=, <, <=, between, like, in, month<, month>, month=, recent, not recent,
    valid on, is null, is not null."""
    values: list[Literal] = field(default_factory=list)
    unit: str | None = None
    """For `recent`: day, week, month or year."""
    subquery_agg: str | None = None
    """Compare with an aggregate of the same column over its table (`above average`)."""
    subquery_filters: list[Filter] = field(default_factory=list)
    """The rows that aggregate is over ("the average salary of instructors in Physics")."""
    within: ColumnRef | None = None
    """With `subquery_agg`: the aggregate is over the rows of the same table sharing this
    column's value with the row compared ("more than the average salary of their ward")."""
    peer: ColumnRef | None = None
    """Compare with the same column of the row of the same table that this key refers to
    ("earns more than their manager": `manager_id` -> that row's salary)."""
    until: ColumnRef | None = None
    """For `valid on` (values: the day, the day after): the date column ending the interval
    that begins at `column` (NULL: not ended)."""
    anchor: ColumnRef | None = None
    """For `not recent` without the layer's `today`: count back from the latest value of this
    date column (the data's own today) rather than the clock."""
    over_rows: bool = False
    """With `subquery_agg` on a group's aggregate (HAVING): compare with the aggregate over
    all the rows of the column's table ("departments whose average salary is above the
    overall average"), not with the average of the groups' figures."""


@dataclass(slots=True)
class Condition:
    """A semantic layer's named filter (or a measure's own filter): a boolean SQL fragment."""

    name: str
    sql: str
    tables: list[str] = field(default_factory=list)
    position: int = -1
    """Where the question names it (token index), -1: implied by a measure."""


@dataclass(slots=True)
class AntiJoin:
    """Rows of the main table with no related row in `table` (matching `filters`)."""

    table: str
    filters: list[Filter] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    """Named filters of the semantic layer the related rows meet (SQL fragments)."""
    exists: bool = False
    """The opposite: rows that do have such a related row (one of "both X and Y")."""


@dataclass(slots=True)
class Intent:
    table: str
    select: list[Measure] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    group_by: list[Measure] = field(default_factory=list)
    having: list[Filter] = field(default_factory=list)
    order_by: list[tuple[Measure, bool]] = field(default_factory=list)
    """(expression, descending)."""
    limit: int | None = None
    offset: int = 0
    partition_by: list[Measure] = field(default_factory=list)
    """The ranking (order_by, limit) is taken within each group of these ("in each region,
    which customer has the most"): a window RANK() over them, its first rows kept."""
    count_groups: bool = False
    """Count the groups the HAVING keeps ("how many customers have more than 3 orders"):
    the grouped query becomes a subquery of SELECT COUNT(*)."""
    """Rows of the ranking skipped before the limit ("the second-highest": 1)."""
    distinct: bool = False
    anti_joins: list[AntiJoin] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    """Named filters of the semantic layer, ANDed into WHERE."""
    today: date | None = None
    """The day relative time counts back from (the layer's `today`); None: the clock."""
    extra_tables: list[str] = field(default_factory=list)
    """Tables the question names without a role of their own: inner-joined ("who have a pet")."""
    subject_named: bool = True
    """Whether the question names a table, or its subject was inferred from a column/value."""
    preferred_tables: frozenset[str] = frozenset()
    """Lower-case names of tables the question's words point at (join paths go through them)."""
    words: frozenset[str] = frozenset()
    """The question's lemmas: the join plan reads the role of a key by them (`source`, `home`)."""
    recognised: dict[str, object] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    explained: frozenset[int] = frozenset()
    """Token positions of clauses that only restate a named measure (no definitions of
    their own to express)."""
    date_choices: list[tuple[ColumnRef, list[ColumnRef]]] = field(default_factory=list)
    """Date columns chosen without being named, with the table's other dates (alternatives)."""
    column_choices: list[tuple[ColumnRef, list[ColumnRef]]] = field(default_factory=list)
    """Columns chosen among several that a word fits equally well, with the others."""
    """Evidence the reading rests on (links, leftovers, lost negations), for its confidence."""
