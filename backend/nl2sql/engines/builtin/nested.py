"""Comparisons with other rows of the same table, read as a nested query.

* "a salary greater than that of some (at least one) instructor in Biology", "older than
  every engineer", "a higher rating than any of the blues songs", "less than the largest
  salary": the column against the MIN or MAX of the same column over the rows named after
  the quantifier (`col > (SELECT MIN(col) FROM t WHERE ...)`).

  Which aggregate follows from the quantifier and the direction of the comparison:

  | quantifier                         | `>` / `>=` | `<` / `<=` |
  |------------------------------------|------------|------------|
  | some, at least one, a, one of      | MIN        | MAX        |
  | all, every, each, any              | MAX        | MIN        |
  | the largest / highest / maximum    | MAX        | MAX        |
  | the smallest / lowest / minimum    | MIN        | MIN        |

  "than any X" is read as English grammar reads a comparative before "any" (than every X);
  the explanation says so. NULLs of the column are ignored by MIN/MAX, as a comparison with
  each row would ignore them, and an empty set of rows compares as unknown (no row kept),
  which is what "all" over no rows should not be: the explanation names the rows compared.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.comparisons import ComparisonReading
from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter, Measure
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

_EXISTENTIAL = frozenset({"some", "a", "an", "one", "certain"})
_UNIVERSAL = frozenset({"all", "every", "each", "any", "everyone", "everybody"})
_LEAD_WORDS = frozenset({"that", "those", "the", "of", "("})
"""Words between the comparative and the quantifier ("greater than that of some")."""
_AFTER_QUANTIFIER = frozenset({"of", "the", "other", "those", "these", "one", "ones", ")"})
"""Words between the quantifier and the rows ("any of the instructors", "some other")."""
_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "older": ">", "younger": "<",
        "pricier": ">", "cheaper": "<"}  # fmt: skip
_SUPERLATIVES = {"desc": "MAX", "asc": "MIN", "length_desc": "MAX", "length_asc": "MIN"}
_SOMEONE = frozenset({"someone", "anyone", "somebody", "the", "a", "an", "one", "person",
                      "with", "whose", "named", "called", "that", "of"})  # fmt: skip
"""Words between "the same X as" and the value naming the rows ("as someone with the")."""
_OVERALL = frozenset({"overall", "entire", "global", "general"})
_KEY_LEADS = frozenset({"whose", "with", "the", "that", "which", "has", "have", "having", "of"})
"""Words between the row compared with and the key naming it ("the employee whose id is")."""
_RELATIVE = frozenset({"who", "whose", "that", "which", "with", "whom"})
_OUTER_LEADS = frozenset({"who", "that", "which", "whose", "and", "where", "while", "sorted",
                          "ordered", "order", "sort"})  # fmt: skip
"""Words after the rows compared with that start a clause about the outer rows."""


def _word(tok: Token) -> str:
    """A token's lemma, with the number one as the word ("at least one")."""
    return (
        "one"
        if tok.kind == "number" and tok.number == 1 and tok.text.lower() in ("1", "one")
        else tok.lemma
    )


class QuantifiedComparisonReading(ComparisonReading):
    """The comparisons pass's reading of a comparison with a quantified set of rows of the
    compared column's own table (the hook `_compare_with_quantified_rows`)."""

    _tail_literals: list[tuple[Filter, list[Token], list[Filter]]]
    """Per comparison read here: the literals among its rows, and the filters before it."""

    def _group_aggregate_against_rows(
        self, k: int, col: ColumnRef, op: str, agg: Cue, cue: Cue
    ) -> bool:
        """ "departments whose average salary is above the average salary of all
        instructors", "depots with a total fine over the average": an aggregate named right
        before the compared column is a figure per group, so the comparison is a condition on
        the groups (HAVING AVG(salary) > (SELECT AVG(salary) FROM instructor)), against the
        aggregate over all the table's rows (said so in the explanation), never a condition
        on each row."""
        before = [
            m for m in self.mentions
            if m.kind == "column" and col in m.columns and m.end <= cue.start
            and self.gap(m.end, cue.start) <= 2
        ]  # fmt: skip
        if not before:
            return False  # "higher than the average salary": no figure per group before
        m = before[-1]
        group_cue = next(
            (
                c for c in self.cues
                if c.kind == "agg" and c.end <= m.start and self.gap(c.end, m.start) == 0
            ),
            None,
        )  # fmt: skip
        if group_cue is None:
            return False
        per_group = str(group_cue.payload)
        if per_group not in ("AVG", "SUM", "MIN", "MAX") or agg.payload not in (
            "AVG",
            "MIN",
            "MAX",
        ):
            raise self.decline("could not tell which aggregate the groups are compared with")
        self.cues.remove(group_cue)
        self.used_tokens.update(range(group_cue.start, group_cue.end))
        self.used_tokens.update(range(agg.start, agg.end))
        compared = Filter(
            Measure(col, per_group), op, [], subquery_agg=str(agg.payload), over_rows=True
        )
        self.intent.having.append(compared)
        self._use_restatements(col, cue)
        for j, other in enumerate(self.mentions):
            if j in self.used or other.start < agg.end or other.kind != "column":
                continue
            if self.gap(agg.end, other.start) == 0 and col in other.columns:
                self._use(j)  # "the average salary": the same column again
            break
        self.note(
            "having",
            f"{per_group.lower()} of {col.name} per group {op} the {str(agg.payload).lower()} "
            f"of {col.name} over all {col.table} rows",
        )
        return True

    def __init__(self, question: str, index: SchemaIndex, refinement_from: list[int]) -> None:
        super().__init__(question, index, refinement_from)
        for cue in self.cues:
            if cue.kind == "unsupported" and cue.payload == "same":
                cue.kind = "same"  # read by `_same_as`, declined there when it cannot be

    def _same_as(self) -> None:
        """ "employees in the same department as Clara", "drivers with the same depot as
        someone with the first name Ann": the column against its values on the rows the
        value names (`col IN (SELECT col FROM t WHERE name = 'Clara')`: several Claras give
        several departments, each kept). The named row itself stays among the answers unless
        the question excludes it."""
        focus = self.intent.table.lower()
        for cue in list(self.cues):
            if cue.kind != "same":
                continue
            k_col = self.mention_after(cue.end, max_gap=0, kinds=("column", "table"))
            if k_col is None:
                continue
            # "the same team": the rows' own column, or their key to the table named
            col = self._group_column(k_col, focus)
            m_col = self.mentions[k_col]
            if col is None or m_col.end >= len(self.tokens):
                continue
            if self.tokens[m_col.end].lemma != "as":
                continue
            at = m_col.end + 1
            while at < len(self.tokens) and self.tokens[at].lemma in _SOMEONE:
                at += 1
            k_named = self.mention_after(at, max_gap=0, kinds=("column",))
            k_val = self.mention_after(
                self.mentions[k_named].end if k_named is not None else at,
                max_gap=0,
                kinds=("value",),
            )
            named = self.mentions[k_named].columns if k_named is not None else []
            if k_val is not None:
                m_val = self.mentions[k_val]
                own = [c for c in m_val.columns if c.table.lower() == focus]
                own = [c for c in own if c in named] or own
                value = m_val.value or m_val.text
                end = m_val.end
            else:
                # a name never sampled: capitalised words, in the column named before them
                # or the rows' one name column
                start = self.mentions[k_named].end if k_named is not None else at
                run: list[Token] = []
                for tok in self.tokens[start:]:
                    named_part = tok.is_capitalised or tok.kind == "quoted"
                    if not named_part and not (run and tok.kind == "number"):
                        break  # ("Driver 03": a number inside the name)
                    run.append(tok)
                labels = [
                    c for c in self.index.label_columns(self.intent.table) if c.kind == "text"
                ]
                own = [c for c in named if c.table.lower() == focus] or labels
                if not run:
                    continue
                value = " ".join(t.text for t in run)
                end = run[-1].index + 1
            if len(own) != 1 or own[0] == col:
                continue
            self.cues.remove(cue)
            self.used_tokens.update(range(cue.start, end))
            for k in (k_col, k_named, k_val):
                if k is not None:
                    self._use(k)
            self.intent.filters.append(
                Filter(col, "same as", [], subquery_filters=[Filter(own[0], "=", [value])])
            )
            self.note(
                "filters", f"{col.name} is the {col.name} of the rows where {own[0].name} = {value}"
            )
        if any(c.kind == "same" for c in self.cues):
            raise self.decline("questions involving 'same' are not supported")

    def _ages_in_years(self) -> None:
        """ "students 18 years old", "over 20 years old", "under 20 years old": a number of
        years followed by "old" is an age, on the rows' age column (equal to it, or compared
        by the comparative right before the number); no age column leaves the number to the
        other readings."""
        age = self._column_named(("age",))
        if age is None:
            return
        for tok in self.tokens:
            at = tok.index
            if (
                tok.kind != "number"
                or at in self.used_tokens
                or [t.lemma for t in self.tokens[at + 1 : at + 3]] != ["year", "old"]
            ):
                continue
            cue = next(
                (c for c in self.cues if c.kind == "cmp" and c.end == at and c.payload in _OPS),
                None,
            )
            if cue is not None and _OPS[cue.payload] not in (">", "<", ">=", "<="):
                continue
            op = _OPS[cue.payload] if cue is not None else "="
            if cue is not None:
                self.cues.remove(cue)
                self.used_tokens.update(range(cue.start, cue.end))
            self.used_tokens.update(range(at, at + 3))
            for k, m in enumerate(self.mentions):
                if at < m.start < at + 3:
                    self._use(k)  # "old" linked to the age column: read here
            self.intent.filters.append(Filter(age, op, [self._literal_value(tok)]))
            self.note("filters", f"{age.name} {op} {tok.text} (years old)")

    def _comparisons(self) -> None:
        self._same_as()
        self._ages_in_years()
        self._tail_literals = []
        for c in self.cues:
            if c.kind == "agg" and c.start > 0 and self.tokens[c.start - 1].lemma in _OVERALL:
                self._use_token(self.tokens[c.start - 1])  # "the overall average": the same
        super()._comparisons()

    def _compare_with_quantified_rows(self, cue: Cue) -> bool:
        """See the module's note. False when the words after `cue` are not a quantifier
        before rows (the other comparison readings are tried); raises a decline when they
        are but the rows or the column are unclear."""
        if cue.kind != "cmp" or cue.payload not in _OPS:
            return False
        found = self._quantifier_after(cue.end)
        if found is None:
            return self._compare_with_keyed_row(cue)
        word, q_start, q_end, agg_kind = found
        op = _OPS[cue.payload]
        if agg_kind in ("MIN", "MAX"):
            agg = agg_kind
        elif op in (">", ">="):
            agg = "MIN" if agg_kind == "some" else "MAX"
        else:
            agg = "MAX" if agg_kind == "some" else "MIN"
        col, spent = self._quantified_column(cue, q_start, q_end)
        if col is None:
            return False
        rows_end = self._rows_of(col, q_end, required=agg_kind not in ("MIN", "MAX"))
        if rows_end is None:
            return False
        for k in spent:
            self._use(k)
        self.used_tokens.update(range(cue.end, rows_end))
        for c in list(self.cues):
            if c is not cue and cue.end <= c.start < rows_end:
                self.cues.remove(c)  # "at least" inside "at least one": the quantifier
        compared = Filter(col, op, [], subquery_agg=agg)
        self.intent.filters.append(compared)
        tail = rows_end
        if tail < len(self.tokens) and self.tokens[tail].lemma in _RELATIVE:
            tail += 1  # "than any salary of those employees whose job is ...": their clause
        self.aggregate_tails.append((compared, tail))
        self._tail_literals.append((compared, self._literals_in(tail), list(self.intent.filters)))
        self.note("filters", f"{col.name} {op} the {agg.lower()} over '{word}' of the rows")
        self._no_comparison_inside(tail)
        self._value_kinds_spent(tail)
        return True

    def _compare_with_keyed_row(self, cue: Cue) -> bool:
        """ "earns more than the employee whose id is 163", "heavier than the parcel with
        number 7": the column against its value on the one row of the same table that its
        whole primary key names (`col > (SELECT MAX(col) FROM t WHERE key = 163)`: one row,
        so its maximum is its value; no such row keeps none)."""
        at = cue.end
        while at < len(self.tokens) and self.tokens[at].lemma in ("the", "that", "of"):
            at += 1
        k_table = self.mention_after(at, max_gap=0, kinds=("table",))
        if k_table is None or k_table in self.used:
            return False
        table = self.table_of(k_table) or ""
        at = self.mentions[k_table].end
        while at < len(self.tokens) and self.tokens[at].lemma in _KEY_LEADS:
            at += 1
        k_key = self.mention_after(at, max_gap=0, kinds=("column",))
        if k_key is None:
            return False
        key = next(
            (c for c in self.mentions[k_key].columns
             if c.table.lower() == table.lower() and c.is_primary_key and c.sole_key),
            None,
        )  # fmt: skip
        if key is None:
            return False
        at = self.mentions[k_key].end
        while at < len(self.tokens) and self.tokens[at].lemma in ("is", "of", "=", "equal", "to"):
            at += 1
        if at >= len(self.tokens) or self.tokens[at].kind != "number":
            return False
        number = self.tokens[at]
        start = self.mentions[k_table].start
        col, spent = self._quantified_column(cue, start, start)
        if col is None or col.table.lower() != table.lower():
            return False
        for k in (*spent, k_table, k_key):
            self._use(k)
        self.used_tokens.update(range(cue.end, at + 1))
        self.intent.filters.append(
            Filter(
                col,
                _OPS[cue.payload],
                [],
                subquery_agg="MAX",
                subquery_filters=[Filter(key, "=", [self._literal_value(number)])],
            )
        )
        self.note(
            "filters",
            f"{col.name} {_OPS[cue.payload]} the {col.name} of the {table} row whose "
            f"{key.name} is {number.text}",
        )
        return True

    def _value_kinds_spent(self, tail: int) -> None:
        """ "any instructor in the Biology department": the table named right after a value
        of the rows compared with only says what kind of value it is (not a table to join)."""
        for k, m in enumerate(self.mentions):
            if m.start < tail or k in self.used:
                continue
            if any(t.lemma in _OUTER_LEADS for t in self.tokens[tail : m.start]):
                return
            if m.kind == "column" and k + 1 < len(self.mentions):
                value = self.mentions[k + 1]
                if value.kind == "value" and self.gap(m.end, value.start) == 0:
                    self._use(k)  # "with title MK_MAN", "whose genre is blues": the value's kind
                continue
            if m.kind != "value" or k + 1 >= len(self.mentions):
                continue
            nxt = self.mentions[k + 1]
            if nxt.kind != "table" or nxt.start != m.end or k + 1 in self.used:
                continue
            if any(
                self.index.column(t.name, c.name) is not None for t in nxt.tables for c in m.columns
            ):
                self._use(k + 1)

    def _literals_in(self, tail: int) -> list[Token]:
        """Numbers and dates not yet read between `tail` and the next clause about the outer
        rows ("than any wine made in 2006")."""
        out: list[Token] = []
        for tok in self.tokens[tail:]:
            if tok.lemma in _OUTER_LEADS:
                break
            if tok.kind in ("number", "date") and tok.index not in self.used_tokens:
                out.append(tok)
        return out

    def _aggregate_scopes(self) -> None:
        """The values pass's filters on a number or date named among the rows compared with
        (a year, "made in 2006") limit those rows: they move into the subquery."""
        for compared, literals, earlier in self._tail_literals:
            col = compared.column
            if not isinstance(col, ColumnRef):
                continue
            read = [t for t in literals if t.index in self.used_tokens]
            if not read:
                continue
            values = {self._literal_value(t) for t in read}
            for flt in [f for f in self.intent.filters if all(f is not e for e in earlier)]:
                if not isinstance(flt.column, ColumnRef) or not values & set(flt.values):
                    continue
                if flt.column.table.lower() != col.table.lower():
                    raise self.decline(
                        "could not tell whether a value limits the rows compared or the rows "
                        "they are compared with"
                    )
                self.intent.filters.remove(flt)
                compared.subquery_filters.append(flt)
        super()._aggregate_scopes()

    def _quantifier_after(self, pos: int) -> tuple[str, int, int, str] | None:
        """(word, start, end, kind) of a quantifier right after a comparative: kind `some`,
        `all`, or the aggregate a superlative names (`MAX`, `MIN`)."""
        at = pos
        while at < len(self.tokens) and (
            self.tokens[at].lemma in _LEAD_WORDS or self.tokens[at].kind == "punct"
        ):
            at += 1
            if at - pos > 3:
                return None
        if at >= len(self.tokens):
            return None
        restated = next((m for m in self.mentions if m.start == at and m.kind == "column"), None)
        if (
            restated is not None
            and self.tokens[restated.end : restated.end + 1]
            and (self.tokens[restated.end].lemma == "of")
        ):
            at = restated.end + 1  # "than the salary of all instructors": the column restated
            while at < len(self.tokens) and self.tokens[at].lemma in ("the", "those"):
                at += 1
        if at >= len(self.tokens):
            return None
        tok = self.tokens[at]
        words = [_word(t) for t in self.tokens[at : at + 3]]
        if words[:3] == ["at", "least", "one"]:
            return ("at least one", at, at + 3, "some")
        if tok.lemma in _UNIVERSAL:
            return (tok.lemma, at, at + 1, "all")
        if words[0] in _EXISTENTIAL:
            if words[0] == "one" and words[1:2] != ["of"]:
                return None  # "more than one": a number
            return (words[0], at, at + 1, "some")
        for c in self.cues:
            if c.start == at and c.kind == "super" and c.payload in _SUPERLATIVES:
                if at == pos or self.tokens[at - 1].lemma != "the":
                    return None  # "the largest", never a bare "largest"
                return (self.tokens[at].lemma, at, c.end, _SUPERLATIVES[str(c.payload)])
            if c.start == at and c.kind == "agg" and c.payload in ("MAX", "MIN"):
                return None  # "the maximum salary": the aggregate reading's
        return None

    def _quantified_column(
        self, cue: Cue, q_start: int, q_end: int
    ) -> tuple[ColumnRef | None, list[int]]:
        """The column compared: named before the comparative ("salary greater than"), inside
        it ("a higher rating than"), after the quantifier ("than the largest salary", "than
        any salary of"), or measured by the comparative or the verb ("older", "earn")."""
        spent: list[int] = []
        before = self.mention_before(cue.start, max_gap=2, kinds=("column",))
        inside = None
        if cue.end - cue.start >= 3:
            k = self.mention_after(cue.start + 1, max_gap=0, kinds=("column",))
            if k is not None and self.mentions[k].end < cue.end:
                inside = k
        # "than the salary of all", "than any salary of those": the column restated
        restated = [
            k for k, m in enumerate(self.mentions)
            if k not in self.used and m.kind == "column"
            and cue.end <= m.start < q_start + (q_end - q_start) + 2 and m.start != q_start
            and all(t.lemma in _LEAD_WORDS | _AFTER_QUANTIFIER or q_start <= t.index < q_end
                    for t in self.tokens[cue.end : m.start])
        ]  # fmt: skip
        col: ColumnRef | None = None
        named_after = [c for c in (self.column_of(k) for k in restated) if c is not None]
        for k in (inside, before):
            if k is None:
                continue
            col = self.column_of(k)
            if col is None:
                continue
            far = self.gap(self.mentions[k].end, cue.start) > 0
            if k == before and far and named_after:
                # "the salaries of instructors that are less than the largest salary": the
                # column is shown, and named again after the comparative
                col = None
                break
            spent.append(k)
            break
        if col is None and cue.payload in ("older", "younger"):
            col = self._column_named(("age",))
        if col is None and cue.payload in ("pricier", "cheaper"):
            col = self._column_named(("price",)) or self._column_named(("cost",))
        if col is None:
            col = self._measure_of_verb(cue.start)
        for k in restated:
            other = self.column_of(k)
            if col is None and other is not None:
                col = other
            if other is not None and other == col:
                spent.append(k)
        if col is None or col.kind != "numeric" and col.kind != "date":
            return None, []
        return col, spent

    def _rows_of(self, col: ColumnRef, pos: int, *, required: bool) -> int | None:
        """Where the rows compared with end: after the quantifier, a mention of the column's
        table ("some instructor"), a value of one of its columns ("any engineer"), or the
        column itself ("any salary"). None when no such rows follow (and they are required)."""
        at = pos
        while at < len(self.tokens) and (
            self.tokens[at].lemma in _AFTER_QUANTIFIER | {"at", "least"}
            or self.tokens[at].kind == "punct"
            or _word(self.tokens[at]) == "one"
        ):
            at += 1  # "some (at least one) instructor"
        table = col.table.lower()
        for k, m in enumerate(self.mentions):
            if k in self.used or m.start < at:
                continue
            if m.start > at:
                break
            if m.kind == "table" and any(t.name.lower() == table for t in m.tables):
                self._use(k)
                return m.end
            if m.kind == "value" and any(c.table.lower() == table for c in m.columns):
                return m.start  # the value is the rows' filter: left to the values pass
            if m.kind == "column" and col in m.columns:
                self._use(k)
                end = m.end
                nxt = self.mention_after(end, max_gap=0, kinds=("table",))
                if (
                    nxt is not None
                    and self.tokens[end].lemma == "of"
                    and any(t.name.lower() == table for t in self.mentions[nxt].tables)
                ):
                    self._use(nxt)  # "any salary of those employees"
                    end = self.mentions[nxt].end
                return end
        if required:
            return None
        return at

    def _no_comparison_inside(self, tail: int) -> None:
        """ "a higher resolution than any song with a rating below 8": a comparison right
        after the rows compared with limits those rows, which the subquery does not read yet:
        declined rather than applied to the outer rows."""
        for c in self.cues:
            if c.kind not in ("cmp", "postcmp") or c.start < tail:
                continue
            between = {t.lemma for t in self.tokens[tail : c.start]}
            if between & _OUTER_LEADS:
                return
            raise self.decline(
                "could not tell whether a comparison limits the rows compared or the rows "
                "they are compared with"
            )
