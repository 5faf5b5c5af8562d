"""Values the samples never showed but the snapshot's value index holds ("airports in Cuba",
"wines of Robert Biale", "rooms reserved by ROY SWEAZY"): which column stores a value a
question names, read from the index (`backend.connections.value_index`), never guessed.

* A value stored in one indexed column is compared with that column, with the value as stored
  (its case, spaces and apostrophes: "O'Brien", not "O Brien").
* A value stored in several columns is compared with the one the question names (its column,
  or failing that its table); if the question names none of them, or several, it declines and
  offers each column as a suggestion.
* A person's name of two words that no column holds whole is a first and a last name when one
  table holds the first word in one column and the rest in another (`fname`, `lname`).

The index is positive evidence only: a value it does not hold is left to the other readings
(the scan behind it reads a bounded number of rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.nl2sql.engines.base import QuestionNotUnderstood, Suggestion
from backend.nl2sql.engines.builtin.cues import PLACE_WORDS
from backend.nl2sql.engines.builtin.intents import Filter
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex, value_keys
from backend.nl2sql.engines.builtin.names import _INTRODUCING, ATTACHING, NameReading

_Hits = list[tuple[ColumnRef, str]]

_LONGEST_VALUE_TOKENS = 8
"""Tokens a value the index holds may span (a name run may be extended to it)."""

_THAN_REACH = 8
"""Tokens before a value within which "than" makes it part of what is compared with."""

_RELATING = ATTACHING | _INTRODUCING | frozenset({"under", "below", "above"})
"""Words after which a name is a row the question's rows are related to."""


@dataclass(slots=True)
class ValueIndex:
    """The snapshot's indexed values by the word sequences a question may write them as."""

    by_key: dict[tuple[str, ...], _Hits] = field(default_factory=dict)
    columns: set[ColumnRef] = field(default_factory=set)
    """The columns whose values are indexed."""

    @classmethod
    def of(cls, index: SchemaIndex) -> ValueIndex:
        built = cls()
        for info in index.snapshot.tables:
            for col in info.columns:
                if not col.indexed_values:
                    continue
                ref = index.column(info.name, col.name)
                if ref is None:
                    continue
                built.columns.add(ref)
                for value in col.indexed_values:
                    for key in value_keys(value):
                        hits = built.by_key.setdefault(key, [])
                        if not any(c == ref for c, _ in hits):
                            hits.append((ref, value))
        return built

    def lookup(self, text: str) -> _Hits:
        """(column, stored value) for each column holding `text` (case, spacing and
        punctuation aside), one per column."""
        out: _Hits = []
        for key in value_keys(text):
            for col, stored in self.by_key.get(key, []):
                if not any(c == col for c, _ in out):
                    out.append((col, stored))
        return out


_BUILT: dict[int, tuple[SchemaIndex, ValueIndex]] = {}


def value_index(index: SchemaIndex) -> ValueIndex:
    """The value index of a schema index, built on first use (most questions never need it)."""
    seen = _BUILT.get(id(index))
    if seen is not None and seen[0] is index:
        return seen[1]
    built = ValueIndex.of(index)
    if len(_BUILT) >= 64:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[id(index)] = (index, built)
    return built


class IndexedValueReading(NameReading):
    """Places a value by the column the snapshot's value index finds it in."""

    def indexed_filters(
        self, text: str, start: int, end: int, col: ColumnRef | None = None
    ) -> list[Filter] | None:
        """Filters comparing the value at tokens [start, end) with the indexed column that
        holds it; None when the index holds it nowhere (or it is too short to trust), or
        when `col`, the column other readings placed it in, may hold it unseen.

        A value placed in a column whose values are known (sampled or indexed) but that does
        not hold it goes to the column that does ("Norwegian Forest pets" is a breed, not a
        pet's name)."""
        if len(text.strip()) < 2 or self._part_of_a_value(start, end):
            return None
        if any(t.lemma == "than" for t in self.tokens[max(0, start - _THAN_REACH) : start]):
            return None  # "higher than any wine from X": the value is the compared rows'

        index = value_index(self.index)
        hits = index.lookup(text)
        if not hits:
            if col is not None and not (col in index.columns or self.index.has_samples(col)):
                return None  # (a column whose values are unknown may hold it)
            return self._indexed_person(index, text, start, end)
        own = [h for h in hits if h[0] == col]
        if own:
            chosen = own[0]
        elif col is not None and not (col in index.columns or self.index.has_samples(col)):
            return None
        else:
            chosen = self._choose(text, hits)
        column, stored = chosen
        if self._row_of_the_rows(column, start):
            return None
        if self._named_beside_another_table(column):
            raise self.decline(
                f"'{stored}' is a row of {column.table}: could not tell how the other table "
                "the question names relates to it"
            )
        self._check_one_value(column, text)
        self._use_column_beside(column, start, end)
        self.note("values", f"{column.table}.{column.name} = {stored} (from the value index)")
        self.name_tables.add(column.table.lower())
        return [Filter(column, "=", [stored])]

    def demonym_filters(self, start: int, col: ColumnRef | None) -> list[Filter] | None:
        """ "Bangladeshi artists", "Italian airports": a word for the people of a place stored
        in a place column (country, nation, city...), sampled or indexed, when the column
        other readings gave it (an artist's name beside "artists") is known not to hold it."""
        tok = self.tokens[start]
        if not tok.is_capitalised or len(tok.text) < 5:
            return None
        if col is not None and not (
            col in value_index(self.index).columns or self.index.has_samples(col)
        ):
            return None
        if col is not None and self._holds(col, tok.text):
            return None
        hits: _Hits = []
        for place in _places_of(tok.text.lower()):
            for key in value_keys(place):
                stored = [
                    *self.index.values.get(key, []),
                    *value_index(self.index).by_key.get(key, []),
                ]
                for c, v in stored:
                    if set(c.words) & _PLACE_COLUMN_WORDS and not any(h[0] == c for h in hits):
                        hits.append((c, v))
        if not hits:
            return None
        column, stored_value = self._choose(tok.text, hits)
        self._check_one_value(column, tok.text)
        self.note("values", f"{column.table}.{column.name} = {stored_value} ('{tok.text}')")
        return [Filter(column, "=", [stored_value])]

    def _holds(self, col: ColumnRef, text: str) -> bool:
        """Whether `col`'s sampled or indexed values hold `text`."""
        for key in value_keys(text):
            stored = [*self.index.values.get(key, []), *value_index(self.index).by_key.get(key, [])]
            if any(c == col for c, _ in stored):
                return True
        return False

    def indexed_end(self, start: int, end: int) -> int:
        """Where a value the index holds, starting at `start`, ends: past `end` when the stored
        value goes on with words a name run stops at ("Coeur d'Alene", "Isle of Man")."""
        if not value_index(self.index).by_key:
            return end
        limit = min(len(self.tokens), start + _LONGEST_VALUE_TOKENS)
        stop = end
        while stop < limit and self.tokens[stop].index not in self.used_tokens:
            if self.tokens[stop].kind == "punct" and self.tokens[stop].text in ",;?!.":
                break
            stop += 1
        for candidate in range(stop, end, -1):
            if value_index(self.index).lookup(self.name_text(start, candidate)):
                return candidate
        return end

    def _part_of_a_value(self, start: int, end: int) -> bool:
        """ "Mark Giuliano" where "Mark" is a sampled value of another column: the words
        around are one name, which the index cannot place word by word."""
        around = [i for i in (start - 1, end) if 0 <= i < len(self.tokens)]
        return any(
            self.tokens[i].is_capitalised
            and any(m.kind == "value" and m.start <= i < m.end for m in self.mentions)
            for i in around
        )

    def _row_of_the_rows(self, col: ColumnRef, start: int) -> bool:
        """ "employees who report to Payam": after a word that relates rows to a row (`to`,
        `by`, `under`...), a name stored in the label of the rows' own table names another
        row of it (a manager), not the rows themselves: that is for the reading of names."""
        if start < 1 or self.tokens[start - 1].lemma not in _RELATING:
            return False
        if col not in self.index.label_columns(col.table):
            return False  # "airlines does Russia have": a value of the rows' own
        return any(
            m.kind == "table" and m.end <= start and any(t.name == col.table for t in m.tables)
            for m in self.mentions
        )

    def _named_beside_another_table(self, col: ColumnRef) -> bool:
        """ "When did Omar Larsen leave the company?" with company = `accounts`: the name is a
        row of the table everything asked is from (`staff.left_on`), and the other table the
        question names has no part in the answer but a join whose meaning is unsaid."""
        if col not in self.index.label_columns(col.table):
            return False
        asked = {
            (m.column.table if m.column is not None else m.count_table or "").lower()
            for _, m in [*self.projection, *self.measures]
        }
        for k, m in enumerate(self.mentions):
            if k not in self.used and m.kind == "column" and m.columns and col not in m.columns:
                # a column named and not yet placed is asked for (of any table it may be),
                # unless it names the value's own column ("whose last name is O'Neil")
                asked |= {c.table.lower() for c in m.columns}
        if asked != {col.table.lower()}:
            return False
        return any(
            k not in self.used
            and m.kind == "table"
            and m.tables
            and all(t.name != col.table for t in m.tables)
            for k, m in enumerate(self.mentions)
        )

    def _use_column_beside(self, col: ColumnRef, start: int, end: int) -> None:
        """ "the California district", "Robert Biale winery": the column named right beside
        the value is the value's own, not another thing asked for."""
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind not in ("column", "table") or col not in m.columns:
                continue
            if m.start == end or m.end == start:
                self._use(k)

    def _echo(self, col: ColumnRef) -> int:
        """How much the question points at `col`: 2 for naming the column, 1 more for naming
        its table ("wines of St. Helena appellation": `wine.appelation` over the appellations
        table's own)."""
        named_column = any(
            m.kind in ("column", "table") and col in m.columns for m in self.mentions
        )
        named_table = any(
            t.name.lower() == col.table.lower()
            for m in self.mentions
            for t in m.tables
            if m.kind == "table"
        )
        return 2 * named_column + named_table

    def _choose(self, text: str, hits: _Hits) -> tuple[ColumnRef, str]:
        if len(hits) == 1:
            return hits[0]
        scores = [self._echo(c) for c, _ in hits]
        best = max(scores)
        chosen = [h for h, s in zip(hits, scores, strict=True) if s == best]
        if best > 0 and len(chosen) == 1:
            return chosen[0]
        raise QuestionNotUnderstood(
            f"'{text}' is stored in more than one column: "
            + " and ".join(f"{c.table}.{c.name}" for c, _ in hits),
            recognised=dict(self.recognised),
            suggestions=[Suggestion(text=f"'{s}' as {c.table}.{c.name}") for c, s in hits],
        )

    def _check_one_value(self, col: ColumnRef, text: str) -> None:
        """A second value of a column already compared ("routes from the United States to
        Canada"): the two are different rows' values (a source and a destination), which one
        comparison of the column would contradict."""
        if any(
            isinstance(f.column, ColumnRef) and f.column == col and f.op in ("=", "in", "ieq")
            for f in self.intent.filters
        ):
            raise self.decline(
                f"'{text}' and another value are both values of {col.table}.{col.name}: "
                "could not tell which rows each one is for"
            )

    def _indexed_person(
        self, index: ValueIndex, text: str, start: int, end: int
    ) -> list[Filter] | None:
        """ "ROY SWEAZY", "Michael Goodrich": a first name and a last name stored in two
        columns of one table."""
        if end - start != 2:
            return None
        first, last = self.tokens[start].text, self.tokens[start + 1].text
        pairs = [
            (a, sa, b, sb)
            for a, sa in index.lookup(first)
            for b, sb in index.lookup(last)
            if a.table == b.table and a != b and _first_then_last(a, b)
        ]
        if len(pairs) != 1:
            return None
        a, sa, b, sb = pairs[0]
        if self._named_beside_another_table(a):
            raise self.decline(
                f"'{text}' is a row of {a.table}: could not tell how the other table "
                "the question names relates to it"
            )
        self._check_one_value(a, text)
        self.note("values", f"{a.table}: {a.name} = {sa}, {b.name} = {sb} (from the value index)")
        self.name_tables.add(a.table.lower())
        return [Filter(a, "=", [sa]), Filter(b, "=", [sb])]


def _first_then_last(a: ColumnRef, b: ColumnRef) -> bool:
    """`first_name`/`last_name`, `fname`/`lname`, `forename`/`surname`: a first-name column and
    a last-name column."""
    first = "".join(a.words).lower()
    last = "".join(b.words).lower()
    return first.startswith(("first", "fname", "forename", "given")) and last.startswith(
        ("last", "lname", "surname", "family")
    )


_DEMONYM_ENDINGS = ("ian", "ese", "ish", "an", "i", "n")
"""How a word for a place's people ends: Brazil-ian, Japan-ese, Bangladesh-i, Korea-n."""

_PLACE_COLUMN_WORDS = PLACE_WORDS | {"nationality", "citizenship", "origin", "birthplace"}
"""Words of a column holding places (or peoples), where a demonym's place is looked for."""


def _places_of(word: str) -> list[str]:
    """The places a demonym may be said of, longest stem first: "canadian" -> "canad",
    "canada", "canado", "canady"; "german" -> "germany"."""
    out = [word + "y"]  # German -> Germany
    for ending in _DEMONYM_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            stem = word[: -len(ending)]
            out.extend([stem, stem + "a", stem + "o", stem + "y"])
    return out
