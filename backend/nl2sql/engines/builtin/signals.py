"""The evidence a reading rests on (links, leftovers, lost negations...), scored into a
confidence by `confidence.py`, and the coverage check that declines unread questions."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import REFINEMENT_WORDS, SHOWN_WORDS, is_superlative
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.labels import names_its_rows
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS, SYNONYMS, Token
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.reading import is_flag, is_key, same_measure
from backend.nl2sql.engines.builtin.values import ValueReading

QUALIFIER_WORDS = frozenset(
    """
    still current currently yet already ever never active inactive open closed unpaid paid
    outstanding overdue late early former left remaining pending unresolved resolved unassigned
    share percentage percent proportion rate ratio fraction median days hours weeks months
    years quarter quarterly monthly yearly annual annually weekly daily longer shorter within
    more fewer less
    ago since until last previous next second third both either neither except
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Words that change what the answer is; left unexplained, the reading misses part of the ask."""

_STATE_LEADS = frozenset({"still", "currently", "now", "already", "yet"})
"""Qualifiers that stress a state the next word names ("still active")."""


_HARMLESS = frozenset(
    """
    now about instead again currently ever along total placed made make belong belongs
    belonging located live lives living work works working play plays take takes taken took use
    used using go goes went come comes like registered listed recorded stored available
    exist exists existing there here everything anything something one ones thing things
    kind kinds
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


_CLAUSE_WORDS = frozenset(
    """
    who whom whose that which where when with without having has have had whether than during
    before after since until from in at on
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Words that open the part of a question saying which rows, after the part saying what."""


def _reading_columns(intent: Intent) -> set[ColumnRef]:
    """Every column the reading shows, groups, orders or filters by."""
    out: set[ColumnRef] = set()
    measures = [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]
    for f in [*intent.filters, *intent.having, *(f for a in intent.anti_joins for f in a.filters)]:
        if isinstance(f.column, ColumnRef):
            out.add(f.column)
        else:
            measures.append(f.column)
    for m in measures:
        out.update(c for c in (m.column, m.since) if c is not None)
    return out


class SignalReading(ValueReading):
    """The signals of a reading for its confidence, and the coverage check."""

    def _signals(self, intent: Intent) -> dict[str, float]:
        """What the confidence of this reading rests on (see `confidence.py`)."""
        used = [self.mentions[k] for k in sorted(self.used)]
        unused = [
            m for k, m in enumerate(self.mentions)
            if k not in self.used and not all(i in self.used_tokens for i in range(m.start, m.end))
        ]  # fmt: skip
        negated = sum(
            1 for c in self.cues
            if c.kind == "neg" and not (c.start > 0 and self.tokens[c.start - 1].lemma == "or")
        )  # fmt: skip
        negations = (
            self.state_negations
            + sum(1 for a in intent.anti_joins if not a.exists)
            + sum(
                1
                for f in [
                    *intent.filters,
                    *intent.having,
                    *(f for m in intent.select if m.agg == "PCT" for f in m.condition),
                ]  # (a share's condition is a filter too)
                if f.op in ("!=", "not in", "not like") or (f.op == "=" and f.values == [0])
            )
        )
        grouping_words = any(c.kind in ("group", "by", "bucket") for c in self.cues)
        key_literals = sum(
            1
            for f in intent.filters
            if isinstance(f.column, ColumnRef)
            and is_key(f.column)
            and any(isinstance(v, int | float) for v in f.values)
        )
        # "which jobs": shown by `customer_name` when the table has no name of its own
        borrowed_labels = self._borrowed_labels(intent)
        borrowed = bool(borrowed_labels)
        # `course.dept_name` shown as a course's name: the column refers to another table's row
        # (the department), so it names that row, not the rows asked about
        borrowed_reference = any(self._refers_out(c) for c in borrowed_labels)
        quoted = {t.text.strip("'\"") for t in self.tokens if t.kind == "quoted"} | {
            t.lemma for t in self.tokens if t.kind == "quoted"
        }
        guessed = sum(
            1
            for f in [*intent.filters, *(f for a in intent.anti_joins for f in a.filters)]
            if isinstance(f.column, ColumnRef)
            and f.op in ("=", "!=", "in", "not in", "ieq")
            and f.column.kind == "text"
            and any(
                isinstance(v, str) and v not in quoted and self.index.misplaced_value(f.column, v)
                for v in f.values
            )
        )
        # a loosely matched word that pulls in a column of a table the question never names
        named_tables = {t.lower() for t in self.mentioned_tables()} | {intent.table.lower()}
        far_weak = 0
        for k in self.used:
            m = self.mentions[k]
            if m.kind != "column" or m.score >= 2.0 or not m.columns:
                continue
            lemmas = {t.lemma for t in self.tokens[m.start : m.end]}
            if lemmas & SYNONYMS.keys() and not any(lemmas & set(c.words) for c in m.columns):
                continue  # a known synonym ("revenue" for amount) is vocabulary, not a guess
            tables = {c.table.lower() for c in m.columns}
            if not tables & named_tables:
                far_weak += 1
        filters: list[Filter] = [f for f in intent.filters if isinstance(f.column, ColumnRef)]
        contradictions = sum(
            1
            for a in intent.conditions
            for b in intent.conditions
            if b.sql == f"NOT ({a.sql})"
            or (a.sql != b.sql and a.sql.replace(" IS NOT NULL", " IS NULL") == b.sql)
        ) + sum(
            1
            for i, a in enumerate(filters)
            for b in filters[i + 1 :]
            if a.column == b.column
            and a.op in ("=", "in")
            and b.op in ("=", "!=", "in")
            and a.values != b.values
        )
        ranked_by_text = (
            any(
                m.agg is None and m.column is not None and m.column.kind == "text" and desc
                for m, desc in intent.order_by
            )
            and intent.limit is not None
        )
        edge_columns = {
            (t, own.lower()) for t, edges in self.index.edges.items() for _, own, _ in edges
        }
        summed_keys = sum(
            1
            for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if m.agg in ("SUM", "AVG")
            and m.column is not None
            and (
                is_key(m.column) or (m.column.table.lower(), m.column.name.lower()) in edge_columns
            )
        )
        mismatched = sum(
            1
            for f in filters
            if isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op not in ("recent", "not recent", "this", "is null", "is not null")
            and not f.op.startswith("month")
            and any(isinstance(v, int | float) for v in f.values)
        ) + sum(
            1
            for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if m.agg in ("SUM", "AVG")
            and m.column is not None
            and m.since is None
            and m.column.kind != "numeric"
        )
        agg_cues = [c for c in self.cues if c.kind == "agg"]
        aggregated = any(m.agg not in (None, "COUNT") for m in intent.select)
        aggregated = (
            aggregated
            or any(isinstance(f.column, Measure) and f.column.agg for f in intent.having)
            or any(f.subquery_agg for f in intent.filters)
            or any(m.agg not in (None, "COUNT") for m, _ in intent.order_by)
        )
        lost_aggregate = bool(agg_cues) and not aggregated
        intent.date_choices = self._ambiguous_dates(intent)
        group_cues = [c for c in self.cues if c.kind in ("group", "by")]
        by_value = sum(
            1
            for c in group_cues
            for m in self.mentions
            if m.kind == "value" and 0 <= m.start - c.end <= 1
            and any(g.column is not None and g.column in m.columns for g in intent.group_by)
        )  # fmt: skip
        lost_grouping = (
            any(c.kind in ("group", "bucket") for c in self.cues)
            and not intent.group_by
            and not intent.order_by
        )
        # "came in by phone": a column of another table, or the focus table's value 'phone'?
        focus = intent.table.lower()
        value_or_column = 0
        for k in self.used:
            m = self.mentions[k]
            if m.kind != "column" or any(c.table.lower() == focus for c in m.columns):
                continue
            phrase = tuple(t.lemma for t in self.tokens[m.start : m.end])
            if any(c.table.lower() == focus for c, _ in self.index.values.get(phrase, [])):
                value_or_column += 1
        intent.column_choices = self._column_choices(intent)
        return {
            "tied_links": float(
                sum(
                    1
                    for chosen, others in intent.column_choices
                    if any(o.table in (chosen.table, intent.table) for o in others)
                )
            ),
            "late_shown": float(self._late_shown(intent)),
            "unanswered_when": float(self._unanswered_when(intent)),
            "counted_rows": float(self._counted_rows(intent)),
            "value_or_column": float(value_or_column),
            "grouped_by_value": float(by_value),
            "lost_grouping": float(lost_grouping),
            "inferred_measures": float(self.inferred_measures > 0),
            "type_mismatches": float(mismatched),
            "lost_aggregate": float(lost_aggregate),
            "ambiguous_dates": float(len(intent.date_choices)),
            "far_weak_links": float(far_weak),
            "contradictions": float(contradictions),
            "ranked_by_text": float(ranked_by_text),
            "summed_keys": float(summed_keys),
            "content_words": float(self.content_words),
            "unknown_words": float(self.unknown_words),
            "weak_links": float(
                sum(1 for m in used if m.kind not in ("value", "spent") and m.score < 2.0)
            ),
            "strong_links": float(sum(1 for m in used if m.score >= 2.5)),
            "links": float(len(used)),
            "unused_mentions": float(len(unused)),
            "lost_negation": float(max(0, negated - negations)),
            "unasked_grouping": float(
                bool(intent.group_by)
                and not grouping_words
                and not any(c.kind in ("super", "top") for c in self.cues)
            ),
            "subject_named": float(intent.subject_named),
            "key_literals": float(key_literals),
            "lost_qualifiers": float(self.lost_qualifiers),
            "guessed_values": float(guessed),
            "unseen_names": float(
                len(
                    {
                        f.column.table
                        for f in intent.filters
                        if f.op == "ieq" and isinstance(f.column, ColumnRef)
                    }
                )
            ),
            "asks_everything": float(self._asks_for_everything()),
            "borrowed_label": float(borrowed),
            "borrowed_reference": float(borrowed_reference),
        }

    def _borrowed_labels(self, intent: Intent) -> list[ColumnRef]:
        """Shown name columns of the table read whose name says they name something else
        (`customer_name` of `jobs`), picked as its label though no word named them."""
        own_words = self.index.table(intent.table).words
        own_key = self.index.table(intent.table).primary_key
        if own_key is None or len(own_key.name) <= 3:
            return []
        return [
            m.column
            for m in intent.select
            if m.column is not None
            and m.agg is None
            and m.column.table.lower() == intent.table.lower()
            and m.column.words[-1:] in (("name",), ("title",))
            and len(m.column.words) > 1
            and m.column.words[:-1] != own_words
            and m.column.words[:-1] not in (("first",), ("last",), ("full",))
            and not (self.layer_labels_rows(m.column) and self._rows_listed_once(intent))
            and not (names_its_rows(self.index, m.column) and self._ranked_by_an_action(intent))
            and not any(
                mm.start <= t.index < mm.end
                for mm in self.mentions
                for t in self.tokens
                if mm.kind == "column" and m.column in mm.columns
            )
        ]

    def _ranked_by_an_action(self, intent: Intent) -> bool:
        """Whether the reading ranks its rows by what a verb of the question did to related
        rows ("billed the most": see `ranks_by_action.py`)."""
        return False

    def _refers_out(self, col: ColumnRef) -> bool:
        """Whether `col` (not its table's key) holds another table's key."""
        if col.is_primary_key:
            return False
        return any(
            own.lower() == col.name.lower()
            and (ref := self.index.column(other, theirs)) is not None
            and ref.is_primary_key
            for other, own, theirs in self.index.edges.get(col.table.lower(), [])
        )

    def _rows_listed_once(self, intent: Intent) -> bool:
        """Whether each row of the focus table shows at most once: grouped by, or no table
        joined in on the many side of it (related rows tested in subqueries repeat nothing)."""
        if intent.group_by:
            return True
        joined = {c.table for c in _reading_columns(intent)} | set(intent.extra_tables)
        joined |= {t for c in intent.conditions for t in c.tables}
        joined -= {a.table for a in intent.anti_joins}
        focus = intent.table.lower()
        return not any(t.lower() != focus and self._fans_out(t) for t in joined)

    def _column_choices(self, intent: Intent) -> list[tuple[ColumnRef, list[ColumnRef]]]:
        """Words the reading linked to one of several columns that fit them equally well
        ("name" when the table has `first_name` and `last_name`, "revenue" for
        `invoices.amount` and `subscriptions.mrr`): (chosen, the others), the competing readings
        of the question. A tie within the table read (or the focus table) is a real doubt; one
        across tables is often settled by what else the question names."""
        chosen_columns = _reading_columns(intent)
        out: list[tuple[ColumnRef, list[ColumnRef]]] = []
        for k in sorted(self.used):
            m = self.mentions[k]
            if m.kind != "column" or len(m.columns) < 2:
                continue
            chosen = [c for c in m.columns if c in chosen_columns]
            if len(chosen) != 1:
                continue  # none used (a label), or all of them (shown side by side)
            others = [
                c
                for c in m.columns
                if c != chosen[0] and c not in chosen_columns and not self._same_fact(chosen[0], c)
            ]
            if others and (chosen[0], others) not in out:
                out.append((chosen[0], others))
        return out

    def _same_fact(self, a: ColumnRef, b: ColumnRef) -> bool:
        """Two columns that hold the same fact: one refers to the other (`orders.customer_id`,
        `customers.customer_id`), or both are keys."""
        if is_key(a) and is_key(b):
            return True
        return any(
            other.lower() == b.table.lower()
            and own.lower() == a.name.lower()
            and theirs.lower() == b.name.lower()
            for other, own, theirs in self.index.edges.get(a.table.lower(), [])
        )

    def _late_shown(self, intent: Intent) -> int:
        """Columns shown because a word named them in the part of the question that says which
        rows ("... of students *who* took courses *with* scores over 90"), not what to show: a
        condition the reading could not express, shown instead of applied."""
        late = {id(m) for pos, m in self.projection if self._named_in_condition(pos, m)}
        grouped = {id(m) for m in intent.group_by}
        return sum(
            1
            for m in intent.select
            if id(m) in late
            and id(m) not in grouped
            and not (
                m.column is not None
                and is_flag(m.column)
                and any(same_measure(m, g) for g in intent.group_by)
            )
        )  # (a flag grouped by, "escalated versus non-escalated": a figure for each side)

    def _condition_start(self) -> int:
        """Where the part of the question saying which rows begins (its first clause word)."""
        return next(
            (
                t.index
                for t in self.tokens[2:]
                if t.kind == "word" and t.lemma in _CLAUSE_WORDS and t.index > self._first_content()
            ),
            len(self.tokens),
        )

    def _named_in_condition(self, pos: int, m: Measure) -> bool:
        """A plain column named at `pos` in the part that says which rows, not asked to be
        shown there ("with their hire dates", "..., and on what date?")."""
        return (
            pos >= self._condition_start()
            and m.agg is None
            and m.column is not None
            and self.tokens[pos - 1].lemma not in ("their", "its")  # "with their hire dates"
            and not self._asked_to_show(pos)
        )

    def _asked_to_show(self, pos: int) -> bool:
        """ "..., and on what date?", "...: ticket id and when it was opened": the column is
        asked for in a part of its own after the condition."""
        before = [t.lemma for t in self.tokens[max(0, pos - 4) : pos]]
        if "and" in before and ("what" in before or "which" in before):
            return True
        if any(t.lemma in SHOWN_WORDS for t in self.tokens[pos + 1 : pos + 4]):
            return True  # "..., with the price shown"
        return any(t.text == ":" for t in self.tokens[:pos])

    def _counted_rows(self, intent: Intent) -> bool:
        """ "How many cities have airports": counts something the question names as a column
        (cities), while the reading counts rows of the table (airports)."""
        if not any(m.agg == "COUNT" and m.column is None for m in intent.select):
            return False
        for cue in self.cues:
            if cue.kind != "count":
                continue
            k = next((j for j, m in enumerate(self.mentions) if 0 <= m.start - cue.end <= 1), None)
            if k is None or self.mentions[k].kind != "column":
                continue
            if not any(c.is_primary_key for c in self.mentions[k].columns):
                return True  # counting the keys of the table is counting its rows
        return False

    def _unanswered_when(self, intent: Intent) -> bool:
        """ "When did ...": asks for a time, and the reading shows none."""
        words = [t for t in self.tokens if t.kind == "word"]
        if not words or words[0].lemma != "when":
            return False
        return not any(
            m.column is not None and (m.column.kind == "date" or m.bucket is not None)
            for m in intent.select
        )

    def _first_content(self) -> int:
        return next(
            (t.index for t in self.tokens if t.kind == "word" and t.lemma not in STOP_WORDS),
            len(self.tokens),
        )

    def _check_coverage(self) -> None:
        """Decline when too many content words of the question were not understood."""
        covered: set[int] = set(self.used_tokens)
        for m in self.mentions:
            covered.update(range(m.start, m.end))
        for c in self.cues:
            covered.update(range(c.start, c.end))
        if self.refinement_from:
            self._check_follow_up(self.refinement_from[-1])
        unknown_tokens = [
            t
            for t in self.tokens
            if t.kind == "word"
            and t.index not in covered
            and t.lemma not in STOP_WORDS
            and t.lemma not in _HARMLESS
        ]
        unknown = [t.text for t in unknown_tokens]
        self.lost_qualifiers = sum(
            1
            for t in self.tokens
            if t.kind == "word"
            and t.index not in covered
            and (t.lemma in QUALIFIER_WORDS or is_superlative(t.lemma))
            and not self._restates(t, covered)
        )
        content = [t for t in self.tokens if t.kind == "word" and t.lemma not in STOP_WORDS]
        self.content_words, self.unknown_words = len(content), len(unknown)
        if unknown:
            self.note("unknown_words", ", ".join(unknown))
        if len(unknown) >= 2 and len(unknown) > 0.5 * max(len(content), 1):
            raise self.decline("too many words of the question did not match this database")

    def _restates(self, tok: Token, covered: set[int]) -> bool:
        """A qualifier that only restates what the reading expresses: "ever" after a ranking
        ("the biggest invoice we've ever issued"), or "still"/"currently" before a state the
        reading applies as a value or a condition ("still active", "currently open"), not
        before a column or a verb it has no condition for ("current MRR", "still running")."""
        if tok.lemma == "ever":
            ranked = any(
                c.kind in ("super", "top") or (c.kind == "agg" and c.payload in ("MAX", "MIN"))
                for c in self.cues
                if c.end <= tok.index
            )
            return ranked or any(
                is_superlative(t.lemma) and t.index in covered for t in self.tokens[: tok.index]
            )
        if tok.lemma not in _STATE_LEADS:
            return False
        nxt = next((t for t in self.tokens[tok.index + 1 :] if t.kind == "word"), None)
        if nxt is None or nxt.index not in covered:
            return False
        named = [m for m in self.mentions if m.start <= nxt.index < m.end]
        return all(m.kind == "value" for m in named)

    def _check_follow_up(self, cut: int) -> None:
        """A follow-up must change something: words of its own that the reading gave a role.
        "tell me a joke" after a question is not a refinement of it (and must not repeat its
        answer)."""
        own = [
            t
            for t in self.tokens[cut:]
            if t.kind in ("word", "number", "quoted", "date")
            and t.lemma not in STOP_WORDS
            and t.lemma not in REFINEMENT_WORDS
            and t.lemma not in _HARMLESS
        ]
        roles = set(self.used_tokens)
        for c in self.cues:
            roles.update(range(c.start, c.end))
        for k in self.used:
            roles.update(range(self.mentions[k].start, self.mentions[k].end))
        if not any(t.index in roles for t in own):
            raise self.decline("the follow-up does not say what to change in the previous question")
