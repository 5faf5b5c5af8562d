"""Negation and NULL meaning: "never", "without", "not yet shipped", "still unpaid", "has
no manager" (IS NULL, anti-joins, != filters)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.event_links import IRREGULAR_PARTICIPLES, event_dates
from backend.nl2sql.engines.builtin.grouping import GroupingReading
from backend.nl2sql.engines.builtin.intents import AntiJoin, Filter, Literal
from backend.nl2sql.engines.builtin.lexicon import EVENT_NOUNS, EVENT_WORDS, Token
from backend.nl2sql.engines.builtin.linking import GENERIC_WORDS, ColumnRef

_STATE_ANTONYMS = {"open": "closed", "outstanding": "paid", "owed": "paid", "running": "ended",
                   "employed": "left", "pending": "resolved", "unresolved": "resolved"}  # fmt: skip
"""State words that mean an event column is still empty ("open" = not closed)."""


_LIMIT_WORDS = {"limit": "maximum", "cap": "maximum", "ceiling": "maximum", "floor": "minimum"}
"""Words for a bound that columns name `max_...`/`min_...` (`max_seats` = "seat limit")."""


_UNBOUNDED = frozenset({"unlimited", "uncapped"})
"""Negation cues that deny a bound: "unlimited seats" is an empty `max_seats`."""


_CURRENT_WORDS = frozenset({"current", "currently", "existing", "remaining"})


_END_WORDS = EVENT_WORDS["lose"]
"""First words of the dates that end a row's life (`left_on`, `churned_at`, `end_date`)."""


_NOW_WORDS = frozenset({"current", "currently", "now", "presently", "existing", "remaining"})
"""Words that say a state still holds, which an event not (yet) happened already says."""


_RELATIVE_FILLERS = frozenset(
    {"anyone", "anybody", "everyone", "those", "one", "ones", "who", "that", "which", "whose"}
)
"""Words of a relative clause between a negation and the state it denies."""


_PARTICIPLES = frozenset({"paid", "left", "sold", "shipped", "closed", "ended", "built"})


_EVENT_SUFFIXES = frozenset({"at", "on", "date", "time", "to", "by"})
"""Second words of event columns: `churned_at`, `left_on`, `paid_date`, `assigned_to`."""


class NegationReading(GroupingReading):
    """Passes: state words over nullable event columns, then negations."""

    def _null_states(self) -> None:
        self._event_states()
        self._current_rows()
        self._active_rows()

    def _active_rows(self) -> None:
        """ "active customers" where the customers' own table records when a row ended
        (`churned_at`, one nullable end date) and holds no 'active' of its own (no status
        value, no column so named): the rows whose end has not happened. A status value
        'active' stored in another table (a subscription's) is not the rows' own state; where
        the own table has both, the reading stays with the value and `activity.py` doubts it."""
        if any(c.kind == "share" for c in self.cues):
            return  # "what share of active accounts ...": the share pass reads the base rows
        for tok in self.tokens:
            if tok.lemma != "active" or tok.index in self.used_tokens:
                continue
            spans = [k for k, m in enumerate(self.mentions) if m.start <= tok.index < m.end]
            if any(self.mentions[k].end - self.mentions[k].start > 1 for k in spans):
                continue  # "active users": a column's own name
            after = [
                m for m in self.mentions
                if m.start > tok.index and m.kind == "table"
                and self.gap(tok.index + 1, m.start) == 0
            ][:1]  # fmt: skip
            table = after[0].tables[0].name if after and after[0].tables else self.intent.table
            if not table:
                continue
            own = self.index.columns_of.get(table.lower(), [])
            if any("active" in c.words for c in own):
                continue  # an `active` flag or `is_active`: the column says it
            if any(
                c.table.lower() == table.lower() for c, _ in self.index.values.get(("active",), [])
            ):
                continue  # the table's own status holds 'active'
            ends = [
                c for c in own
                if c.kind == "date" and c.nullable and c.words and c.words[0] in _END_WORDS
            ]  # fmt: skip
            if len(ends) != 1:
                continue
            for k in spans:
                self._use(k)
            self._use_token(tok)
            if not any(isinstance(f.column, ColumnRef) and f.column == ends[0]
                       for f in self.intent.filters):  # fmt: skip
                self.intent.filters.append(Filter(ends[0], "is null"))
                self.note("filters", f"{ends[0].name} is null")

    def _event_states(self) -> None:
        """ "haven't churned", "still unpaid", "open tickets", "not yet shipped": NULL means
        the event has not happened (IS NULL); the bare event word means it has."""
        for tok in self.tokens:
            if tok.kind != "word" or tok.index in self.used_tokens:
                continue
            if not (tok.lemma.endswith("ed") or tok.lemma.startswith("un")
                    or tok.lemma in _STATE_ANTONYMS or tok.lemma in _PARTICIPLES
                    or tok.lemma in IRREGULAR_PARTICIPLES):  # fmt: skip
                continue
            spans = [
                (k, m) for k, m in enumerate(self.mentions) if m.start <= tok.index < m.end
            ]  # fmt: skip
            if spans and (spans[0][1].end - spans[0][1].start > 1 or spans[0][0] in self.used):
                continue  # "paid date" names the column itself
            if spans and spans[0][1].kind == "value":
                continue
            found = self._state_column(tok.lemma) or self._event_synonym(tok)
            if found is None:
                continue
            col, denied = found
            before = [t for t in self.tokens[max(0, tok.index - 3) : tok.index] if t.kind == "word"]
            if any(t.lemma in ("when", "date") for t in before):
                continue  # "when did they churn": the date is asked for
            neg = next(
                (c for c in self.cues
                 if c.kind == "neg" and c.end <= tok.index
                 and self._words_apart(c.end, tok.index) <= 2 and c.payload != "used"),
                None,
            )  # fmt: skip
            if neg is not None:
                denied = not denied
                neg.payload = "used"
                self.used_tokens.update(range(neg.start, neg.end))
                self.state_negations += 1
            for k, _ in spans:
                self._use(k)
            self._use_token(tok)
            for t in before:
                if t.lemma in ("still", "yet", "already", "ever"):
                    self._use_token(t)
            if tok.index + 1 < len(self.tokens) and self.tokens[tok.index + 1].lemma == "yet":
                self._use_token(self.tokens[tok.index + 1])
            op = "is null" if denied else "is not null"
            self.intent.filters.append(Filter(col, op))
            self.note("filters", f"{col.name} {op}")
            if denied:
                for t in self.tokens:
                    if t.lemma in _NOW_WORDS:
                        self._use_token(t)  # "current ... who haven't churned": the same state

    def _current_rows(self) -> None:
        """ "current employees", "our current account managers": rows whose ending event has
        not happened, when their table records one ending date (`left_on`, `churned_at`,
        `ended_at`) that can be empty."""
        for tok in self.tokens:
            if tok.lemma not in _CURRENT_WORDS or tok.index in self.used_tokens:
                continue
            after = [
                m for m in self.mentions
                if m.start > tok.index and m.kind in ("table", "value", "column")
                and self.gap(tok.index + 1, m.start) == 0
            ][:1]  # fmt: skip
            if not after:
                continue
            m = after[0]
            tables = [t.name for t in m.tables] or [c.table for c in m.columns]
            if not tables:
                continue
            ends = [
                c for c in self.index.columns_of.get(tables[0].lower(), [])
                if c.kind == "date" and c.nullable and c.words and c.words[0] in _END_WORDS
            ]  # fmt: skip
            if len(ends) != 1:
                continue
            if any(isinstance(f.column, ColumnRef) and f.column == ends[0]
                   for f in self.intent.filters):  # fmt: skip
                continue
            self._use_token(tok)
            self.intent.filters.append(Filter(ends[0], "is null"))
            self.note("filters", f"{ends[0].name} is null")

    def _words_apart(self, start: int, stop: int) -> int:
        """Tokens between, not counting who-clause fillers ("leaving out anyone who has")."""
        return sum(1 for t in self.tokens[start:stop] if t.lemma not in _RELATIVE_FILLERS)

    def _state_column(self, lemma: str) -> tuple[ColumnRef, bool] | None:
        """A nullable column that records an event a word names, and whether the word denies
        it: "churned" -> (churned_at, False), "unpaid" -> (paid_date, True), "open" ->
        (closed_at, True). Only columns of the tables the question is about count."""
        candidates: list[tuple[str, bool]] = [(lemma, False)]
        if lemma.startswith("un") and len(lemma) > 5:
            candidates.append((lemma[2:], True))
        if lemma in _STATE_ANTONYMS:
            candidates.append((_STATE_ANTONYMS[lemma], True))
        tables = [self.intent.table, *self.mentioned_tables()]
        for word, denied in candidates:
            stems = set()
            if word.endswith("ed") and len(word) > 4:
                stems = {word[:-2], word[:-1]}  # "ended" -> `end_date`, "closed" -> `close_date`
            for table in dict.fromkeys(t.lower() for t in tables):
                # the stem only on the rows' own table: "books never loaned" is about loans
                # that do not exist, not an empty `loan_date`
                forms = {word} | (stems if table == self.intent.table.lower() else set())
                for col in self.index.columns_of.get(table, []):
                    if (
                        col.nullable
                        and len(col.words) == 2
                        and col.words[0] in forms
                        and (col.kind == "date" or col.words[1] in _EVENT_SUFFIXES)
                    ):
                        return col, denied
        return None

    def _event_synonym(self, tok: Token) -> tuple[ColumnRef, bool] | None:
        """ "accounts we lost" -> `churned_at`, "tickets that were fixed" -> `closed_at`: a
        verb of the event whose date has another word (see `event_links`), said of the rows'
        own table, whose date the question does not name otherwise ("lost ... to churn")."""
        if not self.intent.table or not self._said_of_focus(tok.index):
            return None
        focus = self.intent.table.lower()
        synonyms = [c for c in event_dates(self.index, tok.lemma) if c.table.lower() == focus]
        named = {c for m in self.mentions for c in m.columns}
        if len(synonyms) != 1 or synonyms[0] in named:
            return None
        return synonyms[0], False

    def _said_of_focus(self, pos: int) -> bool:
        """Whether the word at `pos` is said of the rows' own table: right after it ("lost
        customers") or a few words after its name ("accounts that were fixed", "members we
        lost", "its accounts have we lost")."""
        focus = self.intent.table.lower()
        for k, m in enumerate(self.mentions):
            if m.kind != "table" or (self.table_of(k) or "").lower() != focus:
                continue
            if m.start == pos + 1 or 0 <= pos - m.end <= 3:
                return True
        return False

    def _missing_attribute(self, cue: Cue) -> bool:
        """ "without a manager", "has no phone number", "no seat limit recorded": a nullable
        column of the focus table left empty (IS NULL), when no related table is meant."""
        words: list[Token] = []
        for tok in self.tokens[cue.end : cue.end + 5]:
            if tok.kind != "word" or tok.index in self.used_tokens:
                break
            if tok.lemma in ("a", "an", "any", "the", "have", "has", "had", "got", "their", "its"):
                if words:
                    break
                continue
            words.append(tok)
            if len(words) == 2:
                break
        if not words:
            return False
        tables = [self.intent.table.lower()]
        for k, m in enumerate(self.mentions):
            if m.kind == "table" and cue.start - 1 <= m.end <= cue.start:
                # "accounts with a contact with no job title": the table named right before
                owner = (self.table_of(k) or "").lower()
                if owner and owner not in tables:
                    tables.append(owner)
        return any(self._missing_in(cue, words, table) for table in tables)

    def _missing_in(self, cue: Cue, words: list[Token], table: str) -> bool:
        """`_missing_attribute` over the columns of one table."""
        for n in (2, 1):
            phrase = tuple(t.lemma for t in words[:n])
            if len(phrase) < n:
                continue
            event = (
                self._event_column(table, EVENT_NOUNS.get(phrase[0], phrase[0])) if n == 1 else None
            )
            for col in self.index.columns_of.get(table, []):
                named = col.words == phrase or (
                    col.words[:-1] == phrase and col.words[-1] in ("id", "code", "number")
                )
                named = named or col == event  # "no payment recorded": `paid_date` is empty
                named = named or (n == 1 and self._linked_to(words[0], col))  # "no boss"
                limit = {_LIMIT_WORDS.get(w, w) for w in phrase}
                named = named or (n == 2 and limit == set(col.words))  # "no seat limit"
                unbounded = self.tokens[cue.start].lemma in _UNBOUNDED
                if unbounded:  # "unlimited seats": no seat limit
                    named = n == 1 and {"maximum", *phrase} == set(col.words)
                if not named or not col.nullable or col.is_primary_key:
                    continue
                related = n == 1 and not unbounded and [
                    m for m in self.mentions
                    if m.start == words[0].index and m.kind == "table"
                    and (self.table_of(self.mentions.index(m)) or "").lower() != table
                    and col.words[-1] not in ("id", "code", "number")
                ]  # fmt: skip
                if related:
                    return False  # "customers with no orders": rows of another table
                taken = words[:n]
                if n == 1 and len(words) == 2 and words[1].lemma in GENERIC_WORDS:
                    taken = words  # "no phone number": the number is the phone
                for k, m in enumerate(self.mentions):
                    if taken[-1].index >= m.start >= words[0].index:
                        self._use(k)
                for t in taken:
                    self._use_token(t)
                self.used_tokens.update(range(cue.start, cue.end))
                cue.payload = "used"
                self.state_negations += 1
                self.intent.filters.append(Filter(col, "is null"))
                self.note("filters", f"{col.name} is null")
                return True
        return False

    def _linked_to(self, tok: Token, col: ColumnRef) -> bool:
        """Whether the one word `tok` is linked to `col` alone by a synonym ("supervisor" for
        `manager_id`), not by a word of its name."""
        return tok.lemma not in col.words and any(
            m.start == tok.index and m.end == tok.index + 1 and m.kind == "column"
            and m.columns == [col]
            for m in self.mentions
        )  # fmt: skip

    def _negations(self) -> None:
        self._negated_comparisons()
        self._negate_related_rows()
        self._conditions_into_anti_joins()

    def _one_value_but_not_another(self, cue: Cue, k: int, col: ColumnRef) -> None:
        """ "courses offered by Statistics but not Psychology": the rows hold one value of the
        column (their own, or the key naming the other table's row), so "not" the other value
        either adds nothing about the rows or excludes what the rows show that the other
        value's rows show too (EXCEPT over the titles): declined, the two readings named."""
        focus = self.intent.table
        own = self.index.column(focus, col.name) if focus.lower() in self.index.tables else None
        columns = {c for c in (col, own) if c is not None}
        if own is None and col.table.lower() != focus.lower():
            return
        for j, other in enumerate(self.mentions):
            if j == k or other.kind != "value" or other.end > cue.start:
                continue
            if columns & set(other.columns) and other.value != self.mentions[k].value:
                raise self.decline(
                    f"could not tell whether 'not {self.mentions[k].text}' excludes rows (each "
                    f"has one {col.name}) or what {other.text}'s rows share with "
                    f"{self.mentions[k].text}'s"
                )

    def _negated_comparisons(self) -> None:
        """ "stations that never had a bike availability above 10", "artists who have never
        received a rating higher than 8": a negation right before a comparison on a column of
        a related table is about the related rows: none of them passes the comparison (an
        anti-join holding it), not the rows that have one related row failing it. A NULL
        value is not a row that passes, so rows whose related values are all NULL are kept
        (NOT IN over the related keys, NULL keys left out)."""
        focus = self.intent.table.lower()
        for cue in self.cues:
            if cue.kind != "neg" or cue.payload == "used":
                continue
            for f in list(self.intent.filters):
                col = f.column
                if (
                    not isinstance(col, ColumnRef)
                    or f.op not in (">", ">=", "<", "<=")
                    or f.subquery_agg
                    or col.table.lower() == focus
                    or not self.index.join_path(self.intent.table, col.table)
                ):
                    continue
                at = next(
                    (
                        m.start for m in self.mentions
                        if m.kind == "column" and col in m.columns and m.start >= cue.end
                    ),
                    None,
                )  # fmt: skip
                if at is None or self._words_apart(cue.end, at) > 3:
                    continue
                between = self.tokens[cue.end : at]
                if any(t.kind != "word" or t.lemma in ("and", "or", "but") for t in between):
                    continue
                self.intent.filters.remove(f)
                self.intent.anti_joins.append(AntiJoin(col.table, [f]))
                cue.payload = "used"
                self.used_tokens.update(range(cue.start, cue.end))
                self.used_tokens.update(t.index for t in between)
                self.note("negation", f"without {col.table} where {col.name} {f.op} {f.values}")
                break

    def _conditions_into_anti_joins(self) -> None:
        """ "patients who never had an appointment cancelled late": a named condition on the
        negated table's rows belongs inside the anti-join, not on the outer rows."""
        for anti in self.intent.anti_joins:
            if anti.exists or anti.table.lower() == self.intent.table.lower():
                continue
            for c in list(self.intent.conditions):
                own = c.tables and all(t.lower() == anti.table.lower() for t in c.tables)
                if own and c.position >= 0:
                    self.intent.conditions.remove(c)
                    anti.conditions.append(c.sql)

    def _negate_related_rows(self) -> None:
        for cue in self.cues:
            if cue.kind != "neg" or cue.payload == "used":
                continue
            if self._missing_attribute(cue):
                continue
            if self.tokens[cue.start].lemma in _UNBOUNDED:
                continue  # no bound column for it: left unexpressed (a lost negation)
            k = self.mention_after(cue.end, max_gap=2)
            if k is None:
                continue
            m = self.mentions[k]
            if m.kind == "table":
                table = self.table_of(k) or ""
                if table.lower() == self.intent.table.lower():
                    continue
                self._use(k)
                anti = AntiJoin(table)
                self.intent.anti_joins.append(anti)
                self.note("negation", f"without {table}")
                t = self.mention_after(m.end, max_gap=1, kinds=("table",))
                if t is not None and (self.table_of(t) or "").lower() != self.intent.table.lower():
                    self._use(t)  # "didn't teach any courses": still inside the negation
                j = self.mention_after(m.end, max_gap=2, kinds=("value",))
                if j is not None and self.mentions[j].columns:
                    cols = self.mentions[j].columns
                    own = [c for c in cols if c.table.lower() == table.lower()]
                    other = [c for c in cols if c.table.lower() != self.intent.table.lower()]
                    candidates = own or other
                    if candidates:
                        pick = candidates[0]
                        self._use(j)
                        anti.filters.append(Filter(pick, "=", [self.mentions[j].value or ""]))
            elif m.kind in ("value", "column"):
                if m.kind == "column":
                    # "not living in the city HKG": the column names the value's column
                    j = self.mention_after(m.end, max_gap=0, kinds=("value",))
                    if j is None or not set(self.mentions[j].columns) & set(m.columns):
                        # "students who don't play sports": no related row at all
                        col = self.column_of(k)
                        if (
                            j is None
                            and col is not None
                            and col.table.lower() != self.intent.table.lower()
                            and self.index.are_joinable(self.intent.table, col.table)
                        ):
                            self._use(k)
                            self.intent.anti_joins.append(AntiJoin(col.table))
                            self.note("negation", f"without {col.table}")
                            t = self.mention_after(m.end, max_gap=1, kinds=("table",))
                            if (
                                t is not None
                                and (self.table_of(t) or "").lower() == col.table.lower()
                            ):
                                self._use(t)  # "never opened a support ticket": still negated
                        continue
                    self._use(k)
                    k, m = j, self.mentions[j]
                nxt = self.mention_after(m.end, max_gap=0, kinds=("table",))
                col = self.column_of(k)
                if col is None:
                    continue
                self._one_value_but_not_another(cue, k, col)
                self._use(k)
                values: list[Literal] = [m.value or ""]
                j = k + 1
                while (
                    j < len(self.mentions)
                    and self.mentions[j].kind == "value"
                    and col in self.mentions[j].columns
                    and all(
                        t.kind == "punct" or t.lemma in ("or", "and", "nor")
                        for t in self.tokens[self.mentions[j - 1].end : self.mentions[j].start]
                    )
                ):
                    self._use(j)
                    values.append(self.mentions[j].value or "")
                    j += 1
                named = self.mention_after(self.mentions[j - 1].end, max_gap=0, kinds=("column",))
                if named is not None and col in self.mentions[named].columns:
                    self._use(named)  # "did not get a Ph.D. degree": the value's column restated
                op = "in" if len(values) > 1 else "="
                if (
                    nxt is not None
                    and (self.table_of(nxt) or "").lower() != self.intent.table.lower()
                ):
                    self._use(nxt)
                    table = self.table_of(nxt) or col.table
                    self.intent.anti_joins.append(AntiJoin(table, [Filter(col, op, values)]))
                    self.note("negation", f"without {table} where {col.name} {op} {values}")
                elif col.table.lower() != self.intent.table.lower() and self.index.are_joinable(
                    self.intent.table, col.table
                ):
                    # "movies not reviewed by X": no related row with the value, not a row
                    # related to some other value
                    self.intent.anti_joins.append(AntiJoin(col.table, [Filter(col, op, values)]))
                    self.note("negation", f"without {col.table} where {col.name} {op} {values}")
                else:
                    self.intent.filters.append(Filter(col, "!=" if op == "=" else "not in", values))
                    self.note("filters", f"{col.name} not {values}")
