"""Schema linking: which tables, columns and stored values the words of a question name."""

from __future__ import annotations

import re
import weakref
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.nl2sql.engines.builtin.event_links import event_dates
from backend.nl2sql.engines.builtin.lexicon import (
    ACRONYMS,
    IN_CHARGE_ROLES,
    PERSON_IN_CHARGE,
    STOP_WORDS,
    SYNONYMS,
    USE_VERBS,
    Token,
    lemmatise,
    split_identifier,
    tokenise,
)
from backend.nl2sql.engines.builtin.related import NameVectors, name_vectors, related_name
from backend.semantic.layer import SemanticLayer

_T = TypeVar("_T")
_REFERENCE_SUFFIXES = frozenset({"id", "code", "number", "key"})
_GENERIC_KEYS = frozenset(
    (w,) for w in ("code", "name", "key", "number", "no", "type", "title", "label", "status")
)
"""Key names too plain to say that another table's column of that name refers to the row."""
"""Last words of a column name that refer to another table's row (`no` expands to number)."""
_NUMERIC = ("INT", "REAL", "NUM", "DEC", "FLOAT", "DOUBLE", "MONEY", "SERIAL", "BIT")
_DATE = ("DATE", "TIME", "YEAR")
GENERIC_WORDS = frozenset({"id", "name", "number", "type", "code", "date", "value", "detail"})
"""Column words too common to link a column on their own when part of a longer name."""
LABEL_WORDS = ("name", "title")


@dataclass(frozen=True, slots=True)
class TableRef:
    name: str
    words: tuple[str, ...]
    info: TableInfo = field(compare=False, hash=False)

    @property
    def primary_key(self) -> ColumnRef | None:
        pks = [c for c in self.info.columns if c.primary_key]
        if len(pks) == 1:
            return ColumnRef(self.name, pks[0].name, (), "numeric", True)
        return None


@dataclass(frozen=True, slots=True)
class ColumnRef:
    table: str
    name: str
    words: tuple[str, ...] = field(compare=False)
    kind: str = field(default="text", compare=False)
    """`numeric`, `date`, `text` or `boolean`."""
    is_primary_key: bool = field(default=False, compare=False)
    nullable: bool = field(default=True, compare=False)
    sole_key: bool = field(default=False, compare=False)
    """The table's whole primary key (not part of a composite one): one row per value."""


@dataclass(slots=True)
class Mention:
    """A span of the question that names schema elements (the best candidates first)."""

    start: int
    end: int
    kind: str
    """`table`, `column` or `value`."""
    tables: list[TableRef] = field(default_factory=list)
    columns: list[ColumnRef] = field(default_factory=list)
    value: str | None = None
    score: float = 0.0
    text: str = ""
    pattern: str | None = None
    """For a value written as part of what is stored (an email domain): a LIKE pattern."""


_EVENT_PARTICIPLES = frozenset(
    {"paid", "left", "sent", "sold", "built", "begun", "run", "held", "given", "taken", "made",
     "done", "written", "seen", "chosen", "driven", "won", "bought", "brought", "shown"}
)  # fmt: skip


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?")
ISO_MONTH = re.compile(r"\d{4}-(?:0[1-9]|1[0-2])")
"""A month written as text ('2024-03'): `month_text.py` reads it as the month's first day."""


def _column_kind(type_name: str, words: tuple[str, ...], samples: list[Any] | None = None) -> str:
    kind = _declared_kind(type_name, words)
    if kind == "text" and samples and all(_ISO_DATE.fullmatch(str(v)) for v in samples):
        return "date"  # a text column holding ISO dates (`usage_month` = '2025-06-01')
    if kind == "text" and samples and all(ISO_MONTH.fullmatch(str(v)) for v in samples):
        return "date"  # months as text (`billing_month` = '2024-03'): see `month_text.py`
    return kind


def _declared_kind(type_name: str, words: tuple[str, ...]) -> str:
    upper = type_name.upper()
    if "BOOL" in upper:
        return "boolean"
    if any(t in upper for t in _DATE) or (words and words[-1] in ("date", "time", "timestamp")):
        return "date"
    if (
        len(words) >= 2
        and words[-1] in ("at", "on")
        and (words[-2].endswith("ed") or words[-2] in _EVENT_PARTICIPLES)
        and not any(t in upper for t in _NUMERIC)
    ):
        return "date"  # `created_at`, `left_on`, `paid_on`: when something happened
    if any(t in upper for t in _NUMERIC):
        return "numeric"
    return "text"


def phrase_words(text: str) -> tuple[str, ...]:
    """The lemmas of a phrase as a question's tokens read them ("sign-ups" -> sign, up)."""
    return tuple(t.lemma for t in tokenise(text) if t.kind in ("word", "number"))


@lru_cache(maxsize=65536)
def value_keys(text: str) -> frozenset[tuple[str, ...]]:
    """The word sequences a stored value may be written as in a question.

    `web_shop` is "web shop", `how-to` is "how to" (hyphens split in lower-case words) or
    "how-to", case and surrounding spaces never matter."""
    low = text.strip().lower()
    keys = {
        tuple(lemmatise(w) for w in (re.sub(r"[^\w\-'/&+]", "", w) for w in low.split()) if w),
        tuple(lemmatise(w) for w in re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", low)),
        tuple(lemmatise(w) for w in re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", low)),
    }
    return frozenset(k for k in keys if k)


def acronym_phrases(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Other ways to write a name made of or containing a known acronym: `mrr` is also
    "monthly recurring revenue", `monthly_active_users` also "mau"."""
    out: list[tuple[str, ...]] = []
    for k, word in enumerate(words):
        expansion = ACRONYMS.get(word)
        if expansion:
            long_form = phrase_words(expansion)
            out.append((*words[:k], *long_form, *words[k + 1 :]))
            if len(words) == 1 and len(long_form) >= 2:
                # "satisfaction" for `csat` (customer satisfaction), "recurring revenue"
                # for `mrr`: the expansion without its first, qualifying word
                out.append(long_form[1:])
    for acronym, long_form in _EXPANSIONS.items():
        n = len(long_form)
        for k in range(len(words) - n + 1):
            if words[k : k + n] == long_form:
                out.append((*words[:k], acronym, *words[k + n :]))
    return out


_EXPANSIONS = {a: tuple(lemmatise(w) for w in e.split()) for a, e in ACRONYMS.items()}


def visible_snapshot(snapshot: SchemaSnapshot, layer: SemanticLayer | None) -> SchemaSnapshot:
    """`snapshot` without the tables and columns the layer hides (never linked nor shown)."""
    if layer is None:
        return snapshot
    hidden_tables = {t.name.lower() for t in layer.tables if t.hidden}
    hidden_columns = {
        (t.name.lower(), c.name.lower()) for t in layer.tables for c in t.columns if c.hidden
    }
    if not hidden_tables and not hidden_columns:
        return snapshot
    tables = []
    for info in snapshot.tables:
        name = info.name.lower()
        if name in hidden_tables:
            continue
        columns = [c for c in info.columns if (name, c.name.lower()) not in hidden_columns]
        keep = {c.name.lower() for c in columns}
        fks = [
            fk
            for fk in info.foreign_keys
            if fk.referred_table.lower() not in hidden_tables
            and all(c.lower() in keep for c in fk.columns)
            and all(
                (fk.referred_table.lower(), c.lower()) not in hidden_columns
                for c in fk.referred_columns
            )
        ]
        tables.append(info.model_copy(update={"columns": columns, "foreign_keys": fks}))
    return snapshot.model_copy(update={"tables": tables})


@dataclass(frozen=True, slots=True)
class Definition:
    """A named measure or filter of the semantic layer, as the words that name it."""

    kind: str
    """`measure` or `filter`."""
    name: str
    table: str


@dataclass(slots=True)
class DefinitionMention:
    """A span of the question that names a layer's measure or filter."""

    start: int
    end: int
    definition: Definition
    score: float
    text: str
    alternatives: tuple[Definition, ...] = ()
    """Other definitions the same words name (a measure and a filter both called "lost
    customers"): the reading picks the one the question's form asks for."""


class SchemaIndex:
    """The snapshot reshaped for linking: words of every name, sample values, the FK graph,
    and, when a semantic layer is given, its synonyms, value phrases, declared joins and the
    words of its named measures and filters (hidden tables and columns left out)."""

    def __init__(self, snapshot: SchemaSnapshot, semantic: SemanticLayer | None = None) -> None:
        snapshot = visible_snapshot(snapshot, semantic)
        self.snapshot = snapshot
        self.semantic = semantic
        self.table_synonyms: dict[tuple[str, ...], list[TableRef]] = {}
        self.column_synonyms: dict[tuple[str, ...], list[ColumnRef]] = {}
        self.definitions: dict[tuple[str, ...], list[Definition]] = {}
        self.max_phrase_words = 1
        self._name_vectors: NameVectors | None = None
        self._name_vectors_built = False
        self.inferred_edges: set[tuple[str, str]] = set()
        """Lower-case (table, table) pairs joined by a name-and-type inference, both ways."""
        self.declared_edges: set[tuple[str, str]] = set()
        """Lower-case (table, table) pairs joined by the semantic layer's declared joins."""
        self.tables: dict[str, TableRef] = {}
        self.columns: list[ColumnRef] = []
        self.columns_of: dict[str, list[ColumnRef]] = {}
        self.values: dict[tuple[str, ...], list[tuple[ColumnRef, str]]] = {}
        self.max_value_words = 1
        self.column_phrases: set[tuple[str, ...]] = set()
        self.sampled: set[tuple[str, str]] = set()
        self.edges: dict[str, list[tuple[str, str, str]]] = {}
        """table -> [(other table, own column, other column)]"""
        self.phrase_matches: dict[tuple[str, ...], _PhraseMatch] = {}
        """`phrase_match`'s answers so far (the index is reused while its schema is asked
        about, and questions about one schema repeat their phrases)."""
        for info in snapshot.tables:
            ref = TableRef(info.name, tuple(split_identifier(info.name)), info)
            self.tables[info.name.lower()] = ref
            cols = []
            single_key = sum(col.primary_key for col in info.columns) == 1
            for col in info.columns:
                words = tuple(split_identifier(col.name))
                c = ColumnRef(
                    info.name,
                    col.name,
                    words,
                    _column_kind(col.type, words, col.sample_values),
                    col.primary_key,
                    col.nullable and not col.primary_key,
                    col.primary_key and single_key,
                )
                cols.append(c)
                if col.sample_values:
                    self.sampled.add((info.name.lower(), col.name.lower()))
                for sample in col.sample_values or []:
                    text = str(sample)
                    if len(text.strip()) > 60:
                        continue
                    for key in value_keys(text):
                        self._add_value(key, c, text)
            self.columns_of[info.name.lower()] = cols
            for c in cols:
                self.column_phrases.add(c.words)
                self.column_phrases.add(_strip_prefix(c.words, ref.words))
            self.columns.extend(cols)
        for ref_col in self.columns:
            for phrase in acronym_phrases(ref_col.words):
                self._add_phrase(self.column_synonyms, phrase, ref_col)
        for info in snapshot.tables:
            for fk in info.foreign_keys:
                other = self.tables.get(fk.referred_table.lower())
                if other is None or not fk.columns or not fk.referred_columns:
                    continue
                self._add_edge(info.name, other.name, fk.columns[0], fk.referred_columns[0])
        self._add_implicit_edges()
        if semantic is not None:
            self._add_layer(semantic)

    def _add_value(self, key: tuple[str, ...], col: ColumnRef, stored: str) -> None:
        hits = self.values.setdefault(key, [])
        if (col, stored) not in hits:
            hits.append((col, stored))
            self.max_value_words = max(self.max_value_words, len(key))

    def _add_edge(self, a: str, b: str, col_a: str, col_b: str) -> None:
        if a.lower() == b.lower():
            return
        self.edges.setdefault(a.lower(), []).append((b, col_a, col_b))
        self.edges.setdefault(b.lower(), []).append((a, col_b, col_a))

    def _joined(self, a: str, b: str) -> bool:
        return any(e[0].lower() == b.lower() for e in self.edges.get(a.lower(), []))

    def _add_implicit_edges(self) -> None:
        """Tables without declared keys still join where names and types say they refer:

        * a column named like another table's primary key (`orders.customer_id` ->
          `customer.customer_id`), unless the key's name is plain (`code`, `name`) or both
          tables are keyed by it without it naming either (`nurse.employee_id`,
          `physician.employee_id`: siblings, not a reference);
        * `<table>_id`, `<table>_code`, `<table>_no`, `<table>_key` (or camelCase
          `customerId`) -> that table's single-column key or its `code` column, when the
          table's name is the prefix, singular or plural (`customer_id` -> `customers.id`,
          `country_code` -> `countries.code`), and both sides are numbers or both text.
        """
        for table in self.tables.values():
            pk = table.primary_key
            if pk is None or pk.name.lower() in ("id", "rowid"):
                continue
            if tuple(split_identifier(pk.name)) in _GENERIC_KEYS:
                continue  # `code`, `name`: many tables have one, each of its own
            for other in self.tables.values():
                if other.name == table.name or self._joined(other.name, table.name):
                    continue
                if other.info.column(pk.name) is None or _sibling_keys(other, table, pk):
                    continue
                self._add_edge(other.name, table.name, pk.name, pk.name)
                self._mark_inferred(other.name, table.name)
        by_words: dict[tuple[str, ...], list[TableRef]] = {}
        for table in self.tables.values():
            by_words.setdefault(table.words, []).append(table)
            if len(table.words) > 1:  # `dim_customer`, `tbl_orders`: the last word names it
                by_words.setdefault(table.words[-1:], []).append(table)
        for table in self.tables.values():
            for col in self.columns_of[table.name.lower()]:
                if len(col.words) < 2 or col.words[-1] not in _REFERENCE_SUFFIXES:
                    continue
                stem = col.words[:-1]
                targets = [t for t in by_words.get(stem, []) if t.name != table.name]
                if len(targets) != 1:
                    continue
                target = targets[0]
                if self._joined(table.name, target.name):
                    continue
                key = self._reference_key(target, col)
                if key is not None:
                    self._add_edge(table.name, target.name, col.name, key.name)
                    self._mark_inferred(table.name, target.name)
        self._add_role_edges(by_words)

    def _add_role_edges(self, by_words: dict[tuple[str, ...], list[TableRef]]) -> None:
        """Keys named for a role, `<role>_<table>_id` (`pickup_depot_id`, `return_depot_id`
        -> `depots.id`), refer to the table their last words name, like `<table>_id` does;
        between two tables no declared key joins, each such column is a join of its own (the
        question's words then say which role: "rentals picked up at", see `joinplan`)."""
        declared = {
            (a, other.lower()) for a, edges in self.edges.items() for other, _, _ in edges
        } - self.inferred_edges
        for table in self.tables.values():
            for col in self.columns_of[table.name.lower()]:
                if len(col.words) < 3 or col.words[-1] not in _REFERENCE_SUFFIXES:
                    continue
                if by_words.get(col.words[:-1]):
                    continue  # `<table>_id` itself, inferred above
                targets = [
                    t
                    for start in range(1, len(col.words) - 1)
                    for t in by_words.get(col.words[start:-1], [])
                    if t.name != table.name
                ]
                if len({t.name for t in targets}) != 1:
                    continue
                target = targets[0]
                pair = (table.name.lower(), target.name.lower())
                if pair in declared or any(
                    other.lower() == pair[1] and own.lower() == col.name.lower()
                    for other, own, _ in self.edges.get(pair[0], [])
                ):
                    continue
                key = self._reference_key(target, col)
                if key is not None:
                    self._add_edge(table.name, target.name, col.name, key.name)
                    self._mark_inferred(table.name, target.name)

    def _reference_key(self, target: TableRef, col: ColumnRef) -> ColumnRef | None:
        """The column of `target` that `col` (`<target>_id`, `<target>_code`) refers to."""
        cols = self.columns_of[target.name.lower()]
        suffix = col.words[-1]
        candidates = [c for c in cols if c.is_primary_key]
        if len(candidates) != 1 or (suffix in ("code", "key") and candidates[0].words != (suffix,)):
            candidates = [c for c in cols if c.words in ((suffix,), (*target.words, suffix))]
        if len(candidates) != 1:
            return None
        key = candidates[0]
        numeric = {col.kind == "numeric", key.kind == "numeric"}
        return key if len(numeric) == 1 else None

    def _mark_inferred(self, a: str, b: str) -> None:
        self.inferred_edges.update({(a.lower(), b.lower()), (b.lower(), a.lower())})

    def _add_layer(self, layer: SemanticLayer) -> None:
        """Synonyms, value phrases, declared joins and named definitions of the layer."""
        for table_def in layer.tables:
            table = self.tables.get(table_def.name.lower())
            if table is None:
                continue
            for phrase in table_def.synonyms:
                self._add_phrase(self.table_synonyms, phrase_words(phrase), table)
            for col_def in table_def.columns:
                col = self.column(table.name, col_def.name)
                if col is None:
                    continue
                for phrase in col_def.synonyms:
                    self._add_phrase(self.column_synonyms, phrase_words(phrase), col)
                for phrase, stored in col_def.values.items():
                    for key in value_keys(phrase):
                        self._add_value(key, col, stored)
        for join in layer.joins:
            a = self.tables.get(join.from_table.lower())
            b = self.tables.get(join.to_table.lower())
            if a is None or b is None:
                continue
            if self.column(a.name, join.from_column) is None:
                continue
            if self.column(b.name, join.to_column) is None:
                continue
            if not self._joined(a.name, b.name):
                self._add_edge(a.name, b.name, join.from_column, join.to_column)
            self.declared_edges.update(
                {(a.name.lower(), b.name.lower()), (b.name.lower(), a.name.lower())}
            )
        for measure in layer.measures:
            definition = Definition("measure", measure.name, measure.table)
            for phrase in (measure.name, *measure.synonyms):
                self._add_phrase(self.definitions, phrase_words(phrase), definition)
        for named in layer.filters:
            definition = Definition("filter", named.name, named.table)
            for phrase in (named.name, *named.synonyms):
                self._add_phrase(self.definitions, phrase_words(phrase), definition)

    def _add_phrase(
        self, bucket: dict[tuple[str, ...], list[_T]], words: tuple[str, ...], item: _T
    ) -> None:
        if not words:
            return
        hits = bucket.setdefault(words, [])
        if item not in hits:
            hits.append(item)
        self.max_phrase_words = max(self.max_phrase_words, len(words))

    def join_origin(self, a: str, b: str) -> str | None:
        """How tables `a` and `b` are joined directly: `declared` (a foreign key), `layer`
        (the semantic layer's joins), `inferred` (names and types), None: not directly."""
        pair = (a.lower(), b.lower())
        if not self._joined(a, b):
            return None
        if pair in self.declared_edges:
            return "layer"
        if pair in self.inferred_edges:
            return "inferred"
        return "declared"

    def name_vectors(self) -> NameVectors | None:
        """Embedded table and column names, built on first use (None: no embeddings)."""
        if not self._name_vectors_built:
            self._name_vectors = name_vectors(self)
            self._name_vectors_built = True
        return self._name_vectors

    def has_samples(self, col: ColumnRef) -> bool:
        """Whether the snapshot sampled values of `col` (so a missing value means something)."""
        return (col.table.lower(), col.name.lower()) in self.sampled

    def misplaced_value(self, col: ColumnRef, text: str) -> bool:
        """Whether comparing `col` with `text` is a guess: the value is not among the column's
        sampled values, or it is stored (sampled or indexed) in other columns but not this one."""
        holders = [c for key in value_keys(text) for c, _ in self.values.get(key, [])]
        if col in holders:
            return False
        from backend.nl2sql.engines.builtin.indexed_values import value_index  # noqa: PLC0415

        indexed = [c for c, _ in value_index(self).lookup(text)]  # the snapshot's value index
        if col in indexed:
            return False
        return bool(holders) or bool(indexed) or self.has_samples(col)

    def table(self, name: str) -> TableRef:
        return self.tables[name.lower()]

    def column(self, table: str, name: str) -> ColumnRef | None:
        return next(
            (c for c in self.columns_of[table.lower()] if c.name.lower() == name.lower()), None
        )

    def label_columns(self, table: str) -> list[ColumnRef]:
        """The columns that name a row of `table` for a person (name, title, first+last)."""
        cols = self.columns_of[table.lower()]
        first = [c for c in cols if c.words[-2:] == ("first", "name")]
        last = [c for c in cols if c.words[-2:] == ("last", "name")]
        if first and last:
            return [first[0], last[0]]
        for word in LABEL_WORDS:
            exact = [c for c in cols if c.words == (word,)]
            if exact:
                return exact[:1]
            tail = [c for c in cols if c.words and c.words[-1] == word and c.kind == "text"]
            own = [c for c in tail if c.words[:-1] == self.table(table).words]
            if own or tail:
                return (own or tail)[:1]
        named = [c for c in cols if c.kind == "text" and c.words == self.table(table).words]
        return named[:1]  # `country.country`, `city.city`: the row's own name

    def referred_row(self, col: ColumnRef) -> tuple[str, str] | None:
        """(table, key column) of the one row a reference key points to: a declared foreign
        key (to another table or to its own, `manager_id` -> `staff.staff_id`), else the one
        join the semantic layer declares or the names imply. A table's own whole key, or a
        column that refers to two tables, points to no one row."""
        if col.sole_key:
            return None
        info = self.table(col.table).info
        declared = {
            (fk.referred_table, fk.referred_columns[0])
            for fk in info.foreign_keys
            if len(fk.columns) == 1
            and fk.columns[0].lower() == col.name.lower()
            and len(fk.referred_columns) == 1
            and fk.referred_table.lower() in self.tables
        }
        if not declared:
            declared = {
                (self.table(other).name, theirs)
                for other, own, theirs in self.edges.get(col.table.lower(), [])
                if own.lower() == col.name.lower()
            }
        pk = self.table(col.table).primary_key
        if not declared and pk is not None and col.nullable and col.words[-1:] == ("id",):
            from backend.nl2sql.engines.builtin.reading import PEER_ROLES  # noqa: PLC0415

            if set(col.words[:-1]) & PEER_ROLES and not set(col.words[:-1]) & set(self.tables):
                declared = {(col.table, pk.name)}  # an undeclared `manager_id`: a peer row
        if len(declared) != 1:
            return None
        table, key = next(iter(declared))
        return self.table(table).name, key

    def join_path(
        self, start: str, goal: str, *, preferred: frozenset[str] = frozenset()
    ) -> list[tuple[str, str, str, str]] | None:
        """Shortest FK path as [(from table, from column, to table, to column)].

        Among paths of equal length, one through `preferred` tables (lower-case names of
        tables the question names) wins.
        """
        if start.lower() == goal.lower():
            return []
        previous: dict[str, tuple[str, str, str, str]] = {}
        seen = {start.lower()}
        queue = deque([start])
        while queue:
            current = queue.popleft()
            neighbours = sorted(
                self.edges.get(current.lower(), []), key=lambda e: e[0].lower() not in preferred
            )
            for other, own_col, other_col in neighbours:
                if other.lower() in seen:
                    continue
                seen.add(other.lower())
                previous[other.lower()] = (current, own_col, other, other_col)
                if other.lower() == goal.lower():
                    path = []
                    node = other.lower()
                    while node != start.lower():
                        step = previous[node]
                        path.append(step)
                        node = step[0].lower()
                    return list(reversed(path))
                queue.append(other)
        return None

    def are_joinable(self, a: str, b: str) -> bool:
        return self.join_path(a, b) is not None


def _sibling_keys(other: TableRef, table: TableRef, pk: ColumnRef) -> bool:
    """Whether `other` and `table` each have the key as their own whole primary key without
    it naming either table (`nurse.employee_id`, `physician.employee_id`: two kinds of
    employee, not one referring to the other; `film_text.film_id` -> `film` still joins)."""
    own = [c.name.lower() for c in other.info.columns if c.primary_key]
    if own != [pk.name.lower()]:
        return False
    words = split_identifier(pk.name)
    named = set(words[:-1]) if len(words) > 1 else set()
    return not (named & (set(other.words) | set(table.words)))


def _strip_prefix(words: tuple[str, ...], prefix: tuple[str, ...]) -> tuple[str, ...]:
    if prefix and words[: len(prefix)] == prefix and len(words) > len(prefix):
        return words[len(prefix) :]
    return words


def verb_stems(word: str) -> list[str]:
    """`ordered` -> order, `purchased` -> purchase, `rented` -> rent: participles name tables."""
    stems = []
    if word.endswith("ed") and len(word) > 4:
        stems += [word[:-2], word[:-1]]
        if word[-3] == word[-4]:
            stems.append(word[:-3])
    if word.endswith("ing") and len(word) > 5:
        stems += [word[:-3], word[:-3] + "e"]
    return stems


_PhraseMatch = tuple[float, tuple[TableRef, ...], float, tuple[ColumnRef, ...]]
_PHRASE_MATCHES_PER_INDEX = 4096


def phrase_match(
    index: SchemaIndex, phrase: tuple[str, ...]
) -> tuple[float, list[TableRef], float, list[ColumnRef]]:
    """`_match_table` and `_match_columns` of `phrase`, worked out once per index: both depend
    on nothing but the index (built once and not changed after) and the phrase. Fresh lists
    each time (a mention keeps and may change its own)."""
    found = index.phrase_matches.get(phrase)
    if found is None:
        t_score, tables = _match_table(index, phrase)
        c_score, cols = _match_columns(index, phrase)
        found = (t_score, tuple(tables), c_score, tuple(cols))
        if len(index.phrase_matches) < _PHRASE_MATCHES_PER_INDEX:
            index.phrase_matches[phrase] = found
    return found[0], list(found[1]), found[2], list(found[3])


def _match_table(index: SchemaIndex, phrase: tuple[str, ...]) -> tuple[float, list[TableRef]]:
    score, tables = _match_table_exact(index, phrase)
    if not tables and len(phrase) == 1:
        for stem in verb_stems(phrase[0]):
            score, tables = _match_table_exact(index, (stem,))
            if tables:
                return score - 0.5, tables
    return score, tables


def _match_table_exact(index: SchemaIndex, phrase: tuple[str, ...]) -> tuple[float, list[TableRef]]:
    joined = "".join(phrase)
    exact = [t for t in index.tables.values() if t.words == phrase or "".join(t.words) == joined]
    if exact:
        return 3.0 * len(phrase) + 0.6, exact
    declared = index.table_synonyms.get(phrase)
    if declared:
        return 3.0 * len(phrase) + 0.4, list(declared)
    if len(phrase) == 1:
        word = phrase[0]
        shortened = [
            t
            for t in index.tables.values()
            if len(t.words) == 1 and len(t.words[0]) >= 4 and word.startswith(t.words[0])
            and len(word) > len(t.words[0]) + 2
        ]  # fmt: skip
        if shortened:
            return 1.3, shortened
        syn = SYNONYMS.get(word, ())
        by_syn = [t for t in index.tables.values() if len(t.words) == 1 and t.words[0] in syn]
        if by_syn:
            return 2.0, by_syn
        tail = [t for t in index.tables.values() if len(t.words) > 1 and t.words[-1] == word]
        if tail and word not in GENERIC_WORDS:
            return 1.5, tail
    return 0.0, []


def _names_a_role(index: SchemaIndex, col: ColumnRef, word: str) -> bool:
    """Whether `word` is the role a reference key is named for (`supervisor_id` -> a row of
    `vets`), not the name of the table it refers to (`customer_id`: the customers table)."""
    if word in GENERIC_WORDS or col.words[-1:] != ("id",) or word in index.tables:
        return False
    target = index.referred_row(col)
    if target is None or word in index.table(target[0]).words:
        return False
    roles = [c for c in index.columns if c.words == col.words]
    return len(roles) == 1  # two tables' `manager_id`: the word alone does not say whose


def in_charge(index: SchemaIndex, col: ColumnRef) -> bool:
    """Whether `col` is a reference to the person looking after a row: a key named for one of
    `IN_CHARGE_ROLES` (`account_manager_id`) that refers to a row of another table."""
    if col.words[-1:] != ("id",):
        return False
    role = set(col.words[:-1])
    if not any(set(r) <= role for r in IN_CHARGE_ROLES):
        return False
    target = index.referred_row(col)
    return target is not None and target[0].lower() != col.table.lower()


def _match_columns(index: SchemaIndex, phrase: tuple[str, ...]) -> tuple[float, list[ColumnRef]]:
    joined = "".join(phrase)
    best: list[ColumnRef] = []
    best_score = 0.0
    for col in index.columns:
        table_words = index.tables[col.table.lower()].words
        stripped = _strip_prefix(col.words, table_words)
        score = 0.0
        if col.words == phrase or "".join(col.words) == joined:
            score = 3.0 * len(phrase) + 0.5
        elif stripped == phrase or "".join(stripped) == joined:
            score = 3.0 * len(phrase)
        elif len(phrase) > 1 and phrase == table_words + col.words:
            score = 3.0 * len(phrase) + 1
        elif len(phrase) == 1:
            word = phrase[0]
            if (
                word not in GENERIC_WORDS
                and word in col.words
                and not (col.words[-1] == "id" and len(col.words) > 1)
            ):
                score = 1.4 if col.words[-1] == word else 1.1
            elif word in GENERIC_WORDS and col.words[-1] == word and word != "id":
                score = 0.9
            elif col.words[:-1] == (word,) and _names_a_role(index, col, word):
                score = 1.4  # "each supervisor": `supervisor_id`, the row in that role
            elif word in PERSON_IN_CHARGE and in_charge(index, col):
                score = 1.4  # "each rep": `account_manager_id`, the person looking after a row
            elif _truncates(stripped, word):
                score = 2.0  # "enrollment" -> `enr`: an unpronounceable cut-off of the word
            elif word in SYNONYMS and any(s in _spelled_out(col) for s in SYNONYMS[word]):
                said = _spelled_out(col)  # `csat` is "customer satisfaction": a "rating"
                rank = min(r for r, s in enumerate(SYNONYMS[word]) if s in said)
                score = 1.2 - 0.02 * rank
        elif len(phrase) == 2 and phrase[-1] not in GENERIC_WORDS and set(phrase) <= set(col.words):
            score = 3.5
        elif len(phrase) == 3 and len(col.words) == 2 and phrase[1:] == col.words:
            score = 5.8  # "company size band" -> size_band: a modifier before the column name
        if score > best_score:
            best, best_score = [col], score
        elif score == best_score and score > 0:
            best.append(col)
    declared = index.column_synonyms.get(phrase)
    if declared:
        score = 3.0 * len(phrase) + 0.4
        if score > best_score:
            best, best_score = list(declared), score
        elif score == best_score:
            best += [c for c in declared if c not in best]
    return best_score, best


def _undotted_hits(index: SchemaIndex, phrase: tuple[str, ...]) -> list[tuple[ColumnRef, str]]:
    """A value written with dots inside its words ("a Ph.D", "the U.S.A"), looked up as the
    value index keeps it (`Ph.D.` is stored under "phd")."""
    if not any("." in w for w in phrase):
        return []
    return index.values.get(tuple(w.replace(".", "") for w in phrase), [])


def _truncates(col_words: tuple[str, ...], word: str) -> bool:
    """Whether a one-word column name is the question word cut short the way column names
    abbreviate (`enr` for "enrollment", `cmsn` for "commission"): three to five letters, no
    vowel after the first letter (so not a word of its own, as `lap` or `stay` are), at
    least three letters of the word left off, and the word a noun ("enrolled students" are
    counted rows, not the `enr` figure)."""
    if len(col_words) != 1:
        return False
    short = col_words[0]
    return (
        3 <= len(short) <= 5
        and short.isalpha()
        and not any(ch in "aeiouy" for ch in short[1:])
        and len(word) >= len(short) + 3
        and word.startswith(short)
        and not word.endswith(("ed", "ing"))
    )


@lru_cache(maxsize=8192)
def _acronyms_spelled_out(words: tuple[str, ...]) -> tuple[str, ...]:
    out = list(words)
    for word in words:
        out.extend(lemmatise(w) for w in ACRONYMS.get(word, "").split()[-1:])
    return tuple(out)


def _spelled_out(col: ColumnRef) -> tuple[str, ...]:
    """A column's words with the head noun of its acronyms' long forms added (`csat`, customer
    satisfaction: "satisfaction"; not "customer", which qualifies it)."""
    return _acronyms_spelled_out(col.words)


def link(index: SchemaIndex, tokens: list[Token], *, skip: set[int]) -> list[Mention]:
    """Greedy longest-span linking of word tokens not already read as intent words."""
    mentions: list[Mention] = []
    defined = {k for d in link_definitions(index, tokens) for k in range(d.start, d.end)}
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if i in skip or tok.kind in ("punct", "number", "date"):
            i += 1
            continue
        if tok.kind == "quoted":
            hits = index.values.get(tuple(lemmatise(w) for w in tok.lemma.split()), [])
            mentions.append(
                Mention(
                    i, i + 1, "value", columns=[c for c, _ in hits],
                    value=hits[0][1] if hits else tok.text, score=5.0, text=tok.text,
                )
            )  # fmt: skip
            i += 1
            continue
        best: Mention | None = None
        longest = max(index.max_value_words + 1, index.max_phrase_words)
        for length in range(min(longest, 5, n - i), 0, -1):
            span = tokens[i : i + length]
            if any(t.kind != "word" or t.index in skip for t in span):
                continue
            edge_stop = STOP_WORDS if length == 1 else _SPAN_EDGE_STOP
            phrase = tuple(t.lemma for t in span)
            text = " ".join(t.text for t in span)
            if span[0].lemma in edge_stop or span[-1].lemma in edge_stop:
                # "in transit" for a stored `in_transit`: a whole stored value may start or
                # end with a small word, a table or column name may not
                stored = index.values.get(phrase) if length > 1 else None
                if stored and (best is None or 3.0 * length - 0.5 > best.score):
                    best = Mention(
                        i, i + length, "value", columns=[c for c, _ in stored],
                        value=stored[0][1], score=3.0 * length - 0.5, text=text,
                    )  # fmt: skip
                continue
            value_hits = (
                index.values.get(phrase)
                or _undotted_hits(index, phrase)
                or _gender_hits(index, phrase)
            )
            yes_no = (
                phrase[0] in ("yes", "no", "y", "n")
                and i > 0
                and tokens[i - 1].lemma in ("is", "was", "are", "be")
            )
            if value_hits and (
                length > 1 or span[0].is_capitalised or len(phrase[0]) >= 3 or yes_no
            ):
                score = 3.0 * length - 0.5 + (1.5 if span[0].is_capitalised else 0.0)
                cand = Mention(
                    i, i + length, "value", columns=[c for c, _ in value_hits],
                    value=value_hits[0][1], score=score, text=text,
                )  # fmt: skip
                if best is None or score > best.score:
                    best = cand
            t_score, tables, c_score, cols = phrase_match(index, phrase)
            own_column = [c for c in cols if any(c.table == t.name for t in tables)]
            if tables and own_column and c_score >= t_score - 0.2 and len(phrase) > 1:
                # "allergy types" in table Allergy_Type with column AllergyType: the values
                # people ask about live in the column
                t_score, cols, c_score = 0.0, own_column, t_score
            if tables and t_score >= c_score and (best is None or t_score > best.score):
                best = Mention(i, i + length, "table", tables=tables, score=t_score, text=text)
                best.columns = cols if c_score == t_score else []
            elif cols and (best is None or c_score > best.score):
                best = Mention(i, i + length, "column", columns=cols, score=c_score, text=text)
                best.tables = tables
        if (
            best is not None
            and best.kind == "value"
            and len(best.text.split()) == 1
            and tok.lemma in _AMBIGUOUS_VALUE_WORDS
            and not tok.is_capitalised
        ):
            best = None
        if (
            best is not None
            and best.kind != "value"
            and best.score < 2.0
            and mentions
            and mentions[-1].end == best.start
            and mentions[-1].kind == "column"
        ):
            # "job title", "phone number": a weak single word right after a linked one is
            # part of the same compound noun, not a second column
            best = None
        if best is None:
            best = _email_domain(index, tok)
        if best is None and tok.kind == "word" and tok.lemma not in STOP_WORDS and i not in defined:
            best = _related(index, tok)  # (a word the layer defines is not guessed at)
        if best is None and tok.kind == "word" and i not in defined:
            best = _event_date(index, tokens, tok)
        if best is None:
            i += 1
            continue
        if (
            mentions
            and best.kind == "column"
            and mentions[-1].kind == "column"
            and mentions[-1].end == best.start
            and (
                set(best.columns) <= set(mentions[-1].columns)
                or _compound_tail(tok, best, mentions)
            )
        ):
            # "CSAT score", "MRR figure": a second word for the column just named
            mentions[-1].end = best.end
            mentions[-1].text += " " + best.text
            i = best.end
            continue
        if _modifies(index, tokens, mentions, best):
            # "movie ratings": the ratings (of movies), one table named by a compound noun
            best.start = mentions[-1].start
            best.text = mentions.pop().text + " " + best.text
        mentions.append(best)
        i = best.end
    return mentions


def _modifies(
    index: SchemaIndex, tokens: list[Token], mentions: list[Mention], head: Mention
) -> bool:
    """Whether the table named just before `head` is a noun modifying it ("movie ratings",
    "customer orders"): a singular word right before a plural table related to it."""
    if not mentions or head.kind != "table" or len(head.tables) != 1:
        return False
    prev = mentions[-1]
    if prev.kind != "table" or prev.end != head.start or prev.end - prev.start != 1:
        return False
    word, noun = tokens[prev.start], tokens[head.end - 1]
    if word.text.lower() != word.lemma or (word.is_capitalised and word.index > 0):
        return False  # "movies' ratings", "Movie Ratings" (a name)
    if noun.text.lower() == noun.lemma or len(prev.tables) != 1:
        return False  # the head is a plural noun
    if prev.start > 0 and tokens[prev.start - 1].lemma in ("each", "every", "per", "by"):
        return False
    return index._joined(prev.tables[0].name, head.tables[0].name)


def definition_suggestions(index: SchemaIndex, question: str) -> list[str]:
    """The semantic layer's definitions a question names, in words a client can offer as
    choices when the engine declines ("revenue: SUM(invoices.amount) where ...")."""
    layer = index.semantic
    if layer is None:
        return []
    out: list[str] = []
    for found in link_definitions(index, tokenise(question)):
        d = found.definition
        if d.kind == "measure":
            m = next((m for m in layer.measures if m.name == d.name), None)
            if m is None:
                continue
            text = f"{m.name} = {m.expression}"
            if m.filter:
                text += f" where {m.filter}"
            if m.time_column:
                text += f", dated by {m.time_column}"
        else:
            f = next((f for f in layer.filters if f.name == d.name), None)
            if f is None:
                continue
            text = f"{f.name}: {f.condition}"
        if text not in out:
            out.append(text)
    return out


def unexpressed_definitions(
    index: SchemaIndex,
    question: str,
    sql: str,
    dialect: str,
    explained: frozenset[int] = frozenset(),
) -> int:
    """How many of the layer's measures and filters the question names that the SQL does not
    express (a column of the definition's fragments is missing from the query)."""
    if index.semantic is None or not index.definitions:
        return 0
    import sqlglot
    from sqlglot import exp

    found = [d for d in link_definitions(index, tokenise(question)) if d.start not in explained]
    if not found:
        return 0
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return len(found)
    used = {c.name.lower() for c in tree.find_all(exp.Column)}
    missing = 0
    for hit in found:
        fragments = _fragments(index.semantic, hit.definition)
        needed: set[str] = set()
        for fragment in fragments:
            try:
                needed |= {
                    c.name.lower()
                    for c in sqlglot.parse_one(fragment, read=dialect).find_all(exp.Column)
                }
            except sqlglot.errors.ParseError:
                continue
        if needed - used:
            missing += 1
    return missing


def _fragments(layer: SemanticLayer, definition: Definition) -> list[str]:
    if definition.kind == "measure":
        return [
            part
            for m in layer.measures
            if m.name == definition.name
            for part in (m.expression, m.filter)
            if part
        ]
    return [f.condition for f in layer.filters if f.name == definition.name]


def inferred_join_notes(index: SchemaIndex, sql: str, dialect: str) -> list[str]:
    """Plain sentences for the joins of `sql` that no foreign key declares: inferred from
    names and types, or taken from the semantic layer."""
    if not (index.inferred_edges or index.declared_edges) or " JOIN " not in sql.upper():
        return []
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    notes: list[str] = []
    for join in tree.find_all(exp.Join):
        on = join.args.get("on")
        if on is None:
            continue
        for eq in on.find_all(exp.EQ):
            left, right = eq.this, eq.expression
            if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
                continue
            origin = index.join_origin(left.table, right.table)
            if origin in ("inferred", "layer"):
                how = (
                    "inferred from the column names: the database declares no foreign key"
                    if origin == "inferred"
                    else "as the semantic layer declares"
                )
                pair = f"{left.sql(dialect)} = {right.sql(dialect)}"
                note = f"{pair} joins {left.table} and {right.table}, {how}"
                if note not in notes:
                    notes.append(note)
    return notes


def link_definitions(index: SchemaIndex, tokens: list[Token]) -> list[DefinitionMention]:
    """Spans of the question naming the semantic layer's measures and filters, longest first,
    scored like table links (3 per word); no overlaps. Empty without a layer."""
    if not index.definitions:
        return []
    found: list[DefinitionMention] = []
    i, n = 0, len(tokens)
    while i < n:
        hit: DefinitionMention | None = None
        named = _longest_synonym(index, tokens, i)
        for length in range(min(index.max_phrase_words, n - i), max(named, 1) - 1, -1):
            span = tokens[i : i + length]
            if any(t.kind not in ("word", "number") for t in span):
                continue
            definitions = index.definitions.get(tuple(t.lemma for t in span))
            if definitions and _verb_with_object(tokens, span, definitions):
                continue
            if definitions:
                text = " ".join(t.text for t in span)
                hit = DefinitionMention(
                    i, i + length, definitions[0], 3.0 * length, text, tuple(definitions[1:])
                )
                break
        if hit is None and named <= 1:
            hit = _use_verb(index, tokens, i)
        if hit is None:
            i += max(named, 1)  # "sales rep": a longer name of a column, not "sales"
            continue
        found.append(hit)
        i = hit.end
    taken = {k for d in found for k in range(d.start, d.end)}
    found.extend(_loose_definitions(index, tokens, taken))
    from backend.nl2sql.engines.builtin.definition_links import predicate_filters  # (a cycle)

    found.extend(predicate_filters(index, tokens, taken))
    return sorted(found, key=lambda d: d.start)


_NOT_OBJECTS = frozenset(
    {"on", "in", "at", "for", "since", "until", "from", "to", "by", "with", "out", "late",
     "over", "longer", "still", "now", "currently", "yet", "and", "or", "than", "as"}
)  # fmt: skip


def _use_verb(index: SchemaIndex, tokens: list[Token], i: int) -> DefinitionMention | None:
    """ "customers running both Slack and Jira": a verb of using, with its object, for a named
    filter the layer calls "uses" (not "running" alone: "still running" is another state)."""
    tok = tokens[i]
    definitions = index.definitions.get(("use",))
    if tok.kind != "word" or tok.text.lower() not in USE_VERBS or not definitions:
        return None
    if any(d.kind != "filter" for d in definitions) or i + 1 >= len(tokens):
        return None
    nxt = tokens[i + 1]
    if nxt.kind != "word" or nxt.lemma in _NOT_OBJECTS:
        return None
    return DefinitionMention(i, i + 1, definitions[0], 2.0, tok.text, tuple(definitions[1:]))


_OBJECT_STARTS = frozenset({"a", "an", "more", "less", "higher", "lower", "better", "worse"})


def _verb_with_object(
    tokens: list[Token], span: list[Token], definitions: list[Definition]
) -> bool:
    """ "paid a higher salary", "paid more than": a one-word named state ("paid" invoices)
    written as the verb of a sentence with an object, which is not the state."""
    if len(span) != 1 or any(d.kind != "filter" for d in definitions):
        return False
    nxt = span[0].index + 1
    return (
        (span[0].lemma.endswith("ed") or span[0].lemma in _PARTICIPLES)
        and nxt < len(tokens)
        and tokens[nxt].lemma in _OBJECT_STARTS
    )


def _compound_tail(tok: Token, best: Mention, mentions: list[Mention]) -> bool:
    """ "phone number" where the column is `stu_phone` and another is `stu_num`: "number"
    ends the compound the column before it names, it is not a second column."""
    if tok.lemma != "number" or best.end - best.start != 1 or not mentions:
        return False
    before = mentions[-1].columns
    return bool(before) and not any("number" in c.words or "num" in c.words for c in before)


def _longest_synonym(index: SchemaIndex, tokens: list[Token], start: int) -> int:
    """The length of the longest table or column synonym of the layer written at `start`
    (0: none); a definition's shorter name inside it does not count ("sales" in "sales
    rep"), one as long does."""
    for length in range(min(index.max_phrase_words, len(tokens) - start), 1, -1):
        span = tokens[start : start + length]
        if any(t.kind not in ("word", "number") for t in span):
            continue
        phrase = tuple(t.lemma for t in span)
        if phrase in index.column_synonyms or phrase in index.table_synonyms:
            return length
    return 0


_PARTICIPLES = {
    "lost": "lose", "sold": "sell", "paid": "pay", "left": "leave", "sent": "send",
    "brought": "bring", "bought": "buy", "spent": "spend", "won": "win", "made": "make",
    "got": "get", "gotten": "get", "given": "give", "gave": "give", "taken": "take",
    "took": "take", "began": "begin", "begun": "begin", "kept": "keep", "held": "hold",
    "built": "build", "written": "write", "wrote": "write", "chosen": "choose",
    "grown": "grow", "grew": "grow", "ran": "run", "went": "go", "gone": "go", "done": "do",
    "did": "do", "hired": "hire", "fired": "fire",
}  # fmt: skip
"""Past forms whose base a definition's phrase may be written in ("customers we lost")."""
_RANKING = frozenset({"most", "fewest", "least"})
"""Superlatives a definition's phrase may be split by ("lost the most customers")."""
_LOOSE_GAP = 3
"""Small words allowed between the words of a definition's phrase ("seats did we bill")."""


@lru_cache(maxsize=8192)
def _word_forms(word: str) -> frozenset[str]:
    """A word and the bases it may be an inflection of ("billed": bill; "lost": lose)."""
    singular = word[:-1] if len(word) > 2 and word.endswith("s") else word  # "ups" -> up
    return frozenset({word, singular, _PARTICIPLES.get(word, word), *verb_stems(word)})


def _same_word(a: str, b: str) -> bool:
    """ "billed" and "bill", "lost" and "lose": one word in another inflection."""
    return a == b or bool(_word_forms(a) & _word_forms(b))


same_word = _same_word


def _loose_definitions(
    index: SchemaIndex, tokens: list[Token], taken: set[int]
) -> list[DefinitionMention]:
    """Measures of two or more words named in another order or inflection, with a few
    small words between ("customers did we lose" for "lost customers", "seats did we bill for"
    for "seats billed"): scored below an exact naming, never over a span already linked."""
    out: list[DefinitionMention] = []
    by_form = _loose_phrases(index)
    n = len(tokens)
    i = 0
    while i < n:
        best: DefinitionMention | None = None
        if i not in taken and tokens[i].kind == "word" and tokens[i].lemma not in STOP_WORDS:
            candidates = {
                words: defs
                for form in _word_forms(tokens[i].lemma)
                for words, defs in by_form.get(form, [])
            }
            for words, definitions in candidates.items():
                end = _loose_span(tokens, i, words, taken)
                said = tuple(t.lemma for t in tokens[i:end]) if end is not None else ()
                if said in index.column_synonyms or said in index.table_synonyms:
                    continue  # "invoice amount" is the layer's own word for a column
                if end is not None and (best is None or end - i > best.end - best.start):
                    text = " ".join(t.text for t in tokens[i:end])
                    score = 3.0 * len(words) - 1.0
                    others = tuple(d for d in index.definitions[words] if d != definitions[0])
                    best = DefinitionMention(i, end, definitions[0], score, text, others)
        if best is None:
            i += 1
            continue
        out.append(best)
        taken.update(range(best.start, best.end))
        i = best.end
    return out


_LOOSE_PHRASES: weakref.WeakKeyDictionary[
    SchemaIndex, dict[str, list[tuple[tuple[str, ...], list[Definition]]]]
] = weakref.WeakKeyDictionary()


def _loose_phrases(
    index: SchemaIndex,
) -> dict[str, list[tuple[tuple[str, ...], list[Definition]]]]:
    """The index's measure phrases of two or more words, by every form of each of their words
    (built once per index). A named filter is a state ("open tickets"), not the event its
    words may name ("tickets were opened"), so filters are matched only as written."""
    cached = _LOOSE_PHRASES.get(index)
    if cached is not None:
        return cached
    by_form: dict[str, list[tuple[tuple[str, ...], list[Definition]]]] = {}
    for words, defs in index.definitions.items():
        measures = [d for d in defs if d.kind == "measure"]
        if len(words) < 2 or not measures:
            continue
        for form in {f for w in words for f in _word_forms(w)}:
            by_form.setdefault(form, []).append((words, measures))
    _LOOSE_PHRASES[index] = by_form
    return by_form


def _loose_span(
    tokens: list[Token], start: int, words: tuple[str, ...], taken: set[int]
) -> int | None:
    """The end of a span from `start` whose content words are `words` in any order and
    inflection, with at most `_LOOSE_GAP` small words between them; None if there is none."""
    missing = list(words)
    gap = 0
    k = start
    while k < len(tokens) and missing:
        tok = tokens[k]
        if k in taken or tok.kind != "word":
            return None
        match = next((w for w in missing if _same_word(tok.lemma, w)), None)
        if match is not None:
            missing.remove(match)
            gap = 0
        elif (tok.lemma in STOP_WORDS or tok.lemma in _RANKING) and k > start and gap < _LOOSE_GAP:
            gap += 1  # ("lost the most customers": the ranking is read apart, see definitions)
        else:
            return None
        k += 1
    return k if not missing else None


def _related(index: SchemaIndex, tok: Token) -> Mention | None:
    """A word linked to a name by meaning alone (see `related`): a weak link."""
    found = related_name(index, tok.lemma)
    if found is None:
        return None
    table, col, _ = found
    if table is not None:
        return Mention(tok.index, tok.index + 1, "table", tables=[table], score=1.0, text=tok.text)
    if col is None:
        return None
    return Mention(tok.index, tok.index + 1, "column", columns=[col], score=1.0, text=tok.text)


_OBJECT_LEADS = frozenset({"the", "a", "an", "most", "fewest", "least", "more", "fewer", "any"})
"""Words that start the object of a verb ("resolved the most tickets", "settled 3 invoices")."""


def _event_date(index: SchemaIndex, tokens: list[Token], tok: Token) -> Mention | None:
    """ "resolved the most tickets" for `closed_at`, "settled any invoices" for `paid_date`: a
    verb of an event naming no column by spelling, with its object after it, links weakly to
    the one date that records the event (see `event_links`). A participle after its noun
    ("the tickets resolved") is left to the state and period readings."""
    nxt = tokens[tok.index + 1] if tok.index + 1 < len(tokens) else None
    if nxt is None or not (nxt.kind == "number" or nxt.lemma in _OBJECT_LEADS):
        return None
    found = event_dates(index, tok.lemma)
    if len(found) != 1:
        return None
    return Mention(tok.index, tok.index + 1, "column", columns=found, score=1.0, text=tok.text)


MAIL_PROVIDERS = frozenset(
    """gmail googlemail hotmail yahoo icloud aol protonmail gmx msn
    yandex zoho fastmail""".split()  # noqa: SIM905
)
"""Words that name an email provider: "Hotmail users" are rows whose email is @hotmail.*."""
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.[a-z]{2,}$")


def _email_domain(index: SchemaIndex, tok: Token) -> Mention | None:
    """A mail provider ("Hotmail") or a domain ("acme.io") next to a table with an email
    column: rows whose email is at that domain (a LIKE pattern, not an equality)."""
    word = tok.text.lower().lstrip("@")
    if tok.kind != "word" or word == "mail":
        return None
    if word in MAIL_PROVIDERS:
        pattern = f"%@{word}.%"
    elif _DOMAIN.match(word) and not word.replace(".", "").isdigit():
        pattern = f"%@{word}"
    else:
        return None
    columns = [
        c for c in index.columns if c.kind == "text" and ("email" in c.words or "mail" in c.words)
    ]
    if not columns:
        return None
    return Mention(
        tok.index, tok.index + 1, "value", columns=columns, value=pattern.strip("%"),
        score=2.5, text=tok.text, pattern=pattern,
    )  # fmt: skip


_GENDER_WORDS = {
    "female": ("F", "female", "Female", "f", "W", "woman"),
    "woman": ("F", "female", "Female", "f", "W", "woman"),
    "girl": ("F", "female", "Female", "f"),
    "male": ("M", "male", "Male", "m", "man"),
    "man": ("M", "male", "Male", "m", "man"),
    "boy": ("M", "male", "Male", "m"),
}


def _gender_hits(index: SchemaIndex, phrase: tuple[str, ...]) -> list[tuple[ColumnRef, str]]:
    """ "female students": a gender word stands for the `F`/`female` value a column stores."""
    if len(phrase) != 1 or phrase[0] not in _GENDER_WORDS:
        return []
    for form in _GENDER_WORDS[phrase[0]]:
        hits = index.values.get((form.lower(),), [])
        exact = [h for h in hits if h[1] == form]
        if exact:
            return exact
    return []


_SPAN_EDGE_STOP = STOP_WORDS - {"name", "value", "detail", "record", "information", "info"}
"""Inside a longer span these words name columns ("first name", "total value")."""
_AMBIGUOUS_VALUE_WORDS = frozenset(
    {"name", "type", "date", "total", "average", "number", "count", "other", "all", "none"}
)
