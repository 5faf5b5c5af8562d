"""Rankings by an action over related rows: "which five wards have we billed the most", "who's
our biggest patient by total billed", "the nurse who discharged the most".

A verb right before the superlative ("billed the most") names the related table whose rows
carry the action (`bills`, linked from the verb) or whose date records it (`discharged_at`);
the ranking is by the rows' one amount of money where they have one (what was billed), else by
how many of them there are (what was discharged). "the biggest <rows> by <related table>" ranks
the rows named by the amount of the related table's rows, not by the rows themselves. "over
time", "all time" or "in total" right after the superlative only say the ranking spans every
row (no period, no comparison).
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.assembly import AssemblyReading
from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.identifiers import identifier_column
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.joinplan import stem
from backend.nl2sql.engines.builtin.linking import ColumnRef, Mention, verb_stems
from backend.nl2sql.engines.builtin.reading import is_key
from backend.nl2sql.engines.builtin.temporal import MONEY_IN

_WHOLE_SPAN = (("over", "time"), ("of", "all", "time"), ("all", "time"), ("in", "total"),
               ("to", "date"), ("overall",), ("ever",))  # fmt: skip
"""Words after a superlative saying the ranking spans every row."""
_PARTICIPLES = frozenset(
    {"made", "sold", "paid", "sent", "held", "done", "won", "built", "bought", "brought",
     "given", "taken", "written", "shipped", "seen", "run", "charged", "billed", "closed"}
)  # fmt: skip
_SUBJECTS = frozenset({"we", "they", "you", "i", "he", "she"})
"""A pronoun before a word makes it a verb ("did we bill the most": not a bill)."""
_RANKED = frozenset({"desc", "asc", "n_desc", "n_asc"})
_AGG_SPELLINGS = {"maximum": "max", "minimum": "min", "average": "avg", "mean": "avg"}
"""An aggregate's word as column names spell it (`max_seats`, `minPrice`, `avg_score`)."""
_NAMED_EXTREMES = {"max": "desc", "min": "asc"}
_QUANTITY_SUPERLATIVES = frozenset({"most", "least", "fewest"})
"""Superlatives of a quantity ("the most revenue"), not of a single row ("the biggest")."""
_TOTAL_WORDS = frozenset({"total", "lifetime", "cumulative", "overall", "combined"})


def _is_verb_form(text: str) -> bool:
    word = text.lower()
    return word.endswith("ed") or word in _PARTICIPLES


class ActionRankReading(AssemblyReading):
    """Pass (inside the superlatives): what a ranking by an action or a related amount ranks."""

    _owner_ranking = False
    """Set when the rows asked about are ranked by an amount of related rows added up."""

    def _owner_of_ranked_rows(self) -> str:
        """ "which support agent closed the most tickets": the rows asked about are named by a
        value of another table's column (a role of `staff`) right after "which", and the
        table named after the superlative holds the rows counted for each of them; the
        question is about the value's table. '' when the question is not of that shape."""
        words = [t for t in self.tokens if t.kind == "word"]
        if len(words) < 2 or words[0].lemma not in ("which", "what"):
            return ""
        first = next((m for m in self.mentions if m.start == words[1].index), None)
        if first is None or first.kind != "value" or not first.columns:
            return ""
        owners = {c.table.lower() for c in first.columns}
        if len(owners) != 1:
            return ""
        owner = first.columns[0].table
        cue = next((c for c in self.cues if c.kind == "super" and c.payload in _RANKED), None)
        if cue is None:
            return ""
        verb = next((m for m in self.mentions if m.start == first.end), None)
        if verb is None or verb.end - verb.start != 1 or not _is_verb_form(verb.text):
            return ""
        if self.gap(verb.end, cue.start) > 1:
            return ""
        counted = next((m for m in self.mentions if m.start == cue.end), None)
        if counted is None or counted.kind != "table" or len(counted.tables) != 1:
            return ""
        rows = counted.tables[0].name
        related = {other.lower() for other, _, _ in self.index.edges.get(rows.lower(), [])}
        if rows.lower() == owner.lower() or owner.lower() not in related:
            return ""
        return self.index.table(owner).name

    def _superlative_target(self, cue: Cue) -> tuple[Measure, bool] | None:
        self._spend_whole_span(cue)
        tenure = self._tenure_rank(cue)
        if tenure is not None:  # the longest tenure: the earliest start
            return tenure, cue.payload.endswith("asc")
        self._action_on_counted_rows(cue)
        if cue.payload in _RANKED and not self._other_breakdown():
            desc = not cue.payload.endswith("asc")
            related = self._ranked_by_related(cue)
            if related is not None:
                return related, desc
        found = super()._superlative_target(cue)
        if found is not None:
            return self._owners_total(cue, found)
        if cue.payload not in _RANKED or self._other_breakdown():
            return found
        action = self._ranked_by_action(cue)
        if action is None:
            return None
        return action, not cue.payload.endswith("asc")

    def _owners_total(self, cue: Cue, found: tuple[Measure, bool]) -> tuple[Measure, bool]:
        """ "which plan generated the most revenue", "which customers used the most storage":
        "the most" of an amount of another table's rows ranks the rows asked about by that
        amount added up over their related rows, not by their single biggest row."""
        measure, desc = found
        col = measure.column
        if measure.agg is not None or col is None or col.kind != "numeric" or is_key(col):
            return found
        if self.tokens[cue.start].lemma not in _QUANTITY_SUPERLATIVES or cue.payload not in _RANKED:
            return found
        if col.table.lower() == self.intent.table.lower() or self._other_breakdown():
            return found
        self._spend_money_verb(cue)
        self._owner_ranking = True
        self.note("order", f"the total {col.name} of the {col.table} rows")
        return Measure(col, "SUM"), desc

    def _spend_money_verb(self, cue: Cue) -> None:
        """ "generated (the most revenue)", "made (the most calls)": the verb of the action
        is read with the amount, not as a loose link to a date (~ `created_at`) to show."""
        k = self._action_before(cue)
        if k is None:
            return
        m = self.mentions[k]
        dated = m.kind == "column" and bool(m.columns) and all(c.kind == "date" for c in m.columns)
        if self.tokens[m.start].lemma not in MONEY_IN and not dated:
            return  # ("made the most calls": the verb, not `created_at` to show)
        m.kind = "spent"
        self._use(k)

    def _counts_and_aggregates(self) -> None:
        self._employer_idioms()
        self._aggregate_words_in_names()
        self._superlatives_in_names()
        self._identifier_numbers()
        self._participle_adjectives()
        super()._counts_and_aggregates()
        self._event_fragment_count()
        self._verb_totals()

    def _aggregate_words_in_names(self) -> None:
        """ "the max seats of every plan" where plans have `max_seats`, "maximum occupancy"
        where rooms have `maxOccupancy`: the aggregate's word is part of a column's name (of
        the table asked about) and names that column, not an aggregate of another one."""
        for cue in list(self.cues):
            if cue.kind != "agg" or cue.end - cue.start != 1:
                continue
            k = next((k for k, m in enumerate(self.mentions) if m.start == cue.end), None)
            if k is None or k in self.used or self.mentions[k].kind not in ("column", "table"):
                continue
            m = self.mentions[k]
            lead = _AGG_SPELLINGS.get(self.tokens[cue.start].lemma, self.tokens[cue.start].lemma)
            said = [lead, *(stem(t.lemma) for t in self.tokens[m.start : m.end])]
            named = self._named_with(lead, said[1:], [self.intent.table])
            if not named:  # "the max crew of the Osprey": the table of the row named
                named = self._named_with(lead, said[1:], self._tables_named())
            if len(named) != 1:
                continue
            self.cues.remove(cue)
            m.kind, m.columns, m.start = "column", named, cue.start
            self.note("columns", f"{named[0].name} (a column named with '{lead}')")
            if not self._focus_named_apart_from(m):
                self.intent.table = self.index.table(named[0].table).name

    def _focus_named_apart_from(self, mention: Mention) -> bool:
        """Whether a mention other than `mention` names the focus table or one of its columns
        (else the focus came from that mention's first link only)."""
        focus = self.intent.table.lower()
        for k, m in enumerate(self.mentions):
            if m is mention:
                continue
            if m.kind == "table" and (self.table_of(k) or "").lower() == focus:
                return True
            if m.kind in ("column", "value") and any(c.table.lower() == focus for c in m.columns):
                return True
        return False

    def _named_with(self, lead: str, rest: list[str], tables: list[str]) -> list[ColumnRef]:
        """Columns of `tables` named by an aggregate's word and then `rest` (`max_crew`)."""
        return [
            c
            for table in dict.fromkeys(t.lower() for t in tables)
            for c in self.index.columns_of.get(table, [])
            if len(c.words) == len(rest) + 1
            and _AGG_SPELLINGS.get(c.words[0], c.words[0]) == lead
            and [stem(w) for w in c.words[1:]] == rest
        ]

    def _tables_named(self) -> list[str]:
        """The tables the question names, by a table's noun or a value of its column."""
        found: list[str] = []
        for k, m in enumerate(self.mentions):
            if m.kind == "table" and (table := self.table_of(k)):
                found.append(table)
            elif m.kind == "value":
                found += [c.table for c in m.columns]
        return found

    def _superlatives_in_names(self) -> None:
        """ "the room with the maximum occupancy" where rooms have `maxOccupancy`: after "with
        the" / "has the" the word is both part of the column's name and the ranking by it
        (the room whose maximum occupancy is the highest), not a column to show."""
        for m in self.mentions:
            if m.kind != "column" or len(m.columns) != 1 or m.end - m.start < 2 or m.start < 2:
                continue
            word = self.tokens[m.start].lemma
            direction = _NAMED_EXTREMES.get(_AGG_SPELLINGS.get(word, word))
            col = m.columns[0]
            if direction is None or _AGG_SPELLINGS.get(col.words[0], col.words[0]) not in (
                "max",
                "min",
            ):
                continue
            before = [t.lemma for t in self.tokens[m.start - 2 : m.start]]
            if before[1] != "the" or before[0] not in ("with", "has", "have", "had"):
                continue
            if any(c.kind in ("super", "top", "agg") for c in self.cues):
                continue
            self.cues.append(Cue("super", m.start, m.start + 1, direction))
            self.cues.sort(key=lambda c: c.start)
            m.start += 1

    def _identifier_numbers(self) -> None:
        """ "the employee number of Omar Larsen": a table's noun right before "number" names
        the row's identifier (see `identifiers.py`), not a count of the rows."""
        for cue in list(self.cues):
            if cue.kind != "count" or self.tokens[cue.start].lemma != "number" or cue.start == 0:
                continue
            if self.tokens[cue.start - 1].kind != "word":
                continue
            k = next((k for k, m in enumerate(self.mentions) if m.end == cue.start), None)
            if k is None or k in self.used or self.mentions[k].kind != "table":
                continue
            m = self.mentions[k]
            table = self.table_of(k)
            if not table or m.end - m.start != 1:
                continue
            col = identifier_column(self.index, table, self.tokens[m.start].lemma)
            if col is None:
                continue
            self.cues.remove(cue)
            self.used_tokens.update(range(cue.start, cue.end))
            self.projection.append((cue.start, Measure(col)))
            self.note("columns", f"{col.name} (the {m.text} number)")

    def _participle_adjectives(self) -> None:
        """ "by invoiced amount", "the billed total": a verb naming a table right before a
        column of that same table describes the column; it is not a second link."""
        for k, m in enumerate(self.mentions):
            if m.kind != "table" or m.end - m.start != 1 or k in self.used:
                continue
            if not _is_verb_form(self.tokens[m.start].text):
                continue
            nxt = next((j for j, n in enumerate(self.mentions) if n.start == m.end), None)
            if nxt is None or self.mentions[nxt].kind != "column":
                continue
            table = (self.table_of(k) or "").lower()
            if not any(c.table.lower() == table for c in self.mentions[nxt].columns):
                continue
            own = [c for c in self.mentions[nxt].columns if c.table.lower() == table]
            self.mentions[nxt].columns = own  # "invoiced amount": the invoices' amount
            m.kind = "spent"
            self._use(k)

    def _verb_totals(self) -> None:
        """ "total invoiced", "the sum billed": a total of rows a verb names is their amount of
        money where they have one (what was invoiced), not how many there are; and that
        amount is named by the verb, not guessed from the table."""
        for i, (pos, measure) in enumerate(self.measures):
            table = measure.count_table or (measure.column.table if measure.column else "")
            if measure.agg not in ("COUNT", "SUM") or not table:
                continue
            if self.tokens[pos].lemma not in _TOTAL_WORDS | {"sum"}:
                continue
            k = next((k for k, m in enumerate(self.mentions) if pos < m.start <= pos + 2), None)
            if k is None or self.mentions[k].kind != "table":
                continue
            m = self.mentions[k]
            if m.end - m.start != 1 or not _is_verb_form(self.tokens[m.start].text):
                continue
            if (self.table_of(k) or "").lower() != table.lower():
                continue
            money = self._money_column(table)
            if money is None:
                continue
            if measure.agg == "COUNT" and measure.column is None:
                self.measures[i] = (pos, Measure(money, "SUM"))
                self.note("aggregates", f"sum({money.name}) (what was {m.text})")

    def _sole_measure(self, table: str) -> ColumnRef | None:
        """The one number of a table a verb names ("total billed": the bills' amount) is named
        by the verb, not inferred from the table."""
        col = super()._sole_measure(table)
        if col is None or col != self._money_column(table):
            return col
        for k, m in enumerate(self.mentions):
            verb = m.kind == "table" and m.end - m.start == 1 and _is_verb_form(m.text)
            if verb and (self.table_of(k) or "").lower() == table.lower():
                self.inferred_measures -= 1
                break
        return col

    def _redate_by_measure(self, intent: Intent) -> None:
        """ "which driver delivered the most in 2024": a period put on the ranked rows' first
        date for want of a better one belongs to the related rows the ranking counts or adds
        up, on the date a word of the question names (`delivered_at`), when one does."""
        super()._redate_by_measure(intent)
        focus = intent.table.lower()
        moved = [c for c in dict.fromkeys(self.default_dates) if c.table.lower() == focus]
        ranked = {
            (m.column.table if m.column is not None else m.count_table or "").lower()
            for m, _ in intent.order_by
            if m.agg is not None
        } - {""}
        if not moved or len(ranked) != 1 or focus in ranked or not intent.group_by:
            return
        table = next(iter(ranked))
        dates = [c for c in self.index.columns_of.get(table, []) if c.kind == "date" and c.words]
        found = {
            hit
            for tok in self.tokens
            if tok.kind == "word"
            for hit in self._event_dates(tok, dates)
        }
        if not found and len(dates) == 1 and self._owner_ranking:
            found = set(dates)  # "made the most calls in 2025": the calls' one date
        if len(found) != 1:
            return
        target = next(iter(found))
        for f in intent.filters:
            if f.column in moved:
                f.column = target
        self.default_dates = [c for c in self.default_dates if c not in moved]
        self.note("filters", f"the period applies to {target.table}.{target.name}")

    def _other_breakdown(self) -> bool:
        """ "per region, which client was billed the most": a breakdown other than "in each"
        (which ranks within each group, see `ranks.py`) would rank the groups instead of
        the rows asked about; left to decline."""
        for c in self.cues:
            if c.kind not in ("group", "bucket"):
                continue
            words = {t.lemma for t in self.tokens[c.start : c.end]}
            if not words & {"each", "every"}:
                return True
        return False

    def _spend_whole_span(self, cue: Cue) -> None:
        """ "invoiced the most over time", "the biggest of all time": no period is meant, and
        "over" compares nothing."""
        words = [t.lemma for t in self.tokens[cue.end : cue.end + 3]]
        for phrase in _WHOLE_SPAN:
            if tuple(words[: len(phrase)]) != phrase:
                continue
            span = range(cue.end, cue.end + len(phrase))
            if any(i in self.used_tokens for i in span):
                return
            if any(m.start in span for m in self.mentions if m.kind != "spent"):
                return  # "over time" names a column of this database
            self.used_tokens.update(span)
            self.cues = [c for c in self.cues if c is cue or c.start not in span]
            return

    def _action_before(self, cue: Cue) -> int | None:
        """The mention of a verb right before the superlative ("billed (the) most")."""
        pos = cue.start
        if pos > 0 and self.tokens[pos - 1].lemma == "the":
            pos -= 1
        k = next((k for k, m in enumerate(self.mentions) if m.end == pos), None)
        if k is None or k in self.used:
            return None
        m = self.mentions[k]
        if m.end - m.start != 1:
            return None
        acted = m.start > 0 and self.tokens[m.start - 1].lemma in _SUBJECTS  # "did we bill"
        if not acted and not _is_verb_form(self.tokens[m.start].text):
            return None
        return k

    def _action_on_counted_rows(self, cue: Cue) -> None:
        """ "which client signed the most contracts", "which agent closed the most tickets": the
        verb names the date of the rows counted after the superlative (`signed_on`,
        `closed_at`): what was done to them, not a value to group or show. A date that may be
        missing (the event has not happened to every row) keeps the rows it happened to."""
        k = self._action_before(cue)
        if k is None:
            return
        m = self.mentions[k]
        if m.kind != "column" or not m.columns or not all(c.kind == "date" for c in m.columns):
            return
        tables = {c.table.lower() for c in m.columns}
        after = next((j for j, n in enumerate(self.mentions) if n.start == cue.end), None)
        if after is None or self.mentions[after].kind != "table" or len(tables) != 1:
            return
        if (self.table_of(after) or "").lower() not in tables:
            return
        if self.intent.table.lower() in tables:
            return  # "which tickets were closed the most ...": the rows themselves
        col = m.columns[0]
        self._use(k)
        m.kind = "spent"
        if col.nullable:
            self.intent.filters.append(Filter(col, "is not null", []))
            self.note("filters", f"{col.name} is recorded")

    def _ranked_by_action(self, cue: Cue) -> Measure | None:
        """ "which five wards have we billed the most": the bills' amount added up per ward;
        "which nurse discharged the most": the discharged rows counted per nurse."""
        k = self._action_before(cue)
        if k is None:
            return None
        m = self.mentions[k]
        focus = self.intent.table.lower()
        if m.kind == "table":
            table = self.table_of(k)
            if not table or table.lower() == focus or self._names_the_actors(k, table):
                return None
            self._use(k)
            money = self._money_column(table)
            if money is not None and not self._counts_asked():
                self.note("order", f"the total {money.name} of the {table} rows")
                return Measure(money, "SUM")
            return Measure(None, "COUNT", count_table=table)
        if m.kind == "column" and m.columns and all(c.kind == "date" for c in m.columns):
            tables = {c.table.lower() for c in m.columns}
            if len(tables) != 1 or focus in tables:
                return None
            self._use(k)
            return Measure(None, "COUNT", count_table=m.columns[0].table)
        if m.kind == "column" and m.columns and all(c.kind == "numeric" for c in m.columns):
            return self._amount_of_action(k)
        return None

    def _amount_of_action(self, k: int) -> Measure | None:
        """ "which guests paid the most", "which boats earned the most": a verb linked to an
        amount of another table's rows (what was paid) ranks the rows asked about by that
        amount added up over their related rows. Where the verb fits several amounts of the
        table, the table's one amount of money is meant (what was paid, not the tax on it)."""
        m = self.mentions[k]
        tables = {c.table.lower() for c in m.columns}
        if len(tables) != 1 or self.intent.table.lower() in tables:
            return None
        table = m.columns[0].table
        money = self._money_column(table)
        if len(m.columns) == 1:
            col = m.columns[0]
        elif money is not None and money in m.columns:
            col = money
        else:
            return None
        self._use(k)
        self._owner_ranking = True
        m.kind, m.columns = "spent", [col]
        self._keep_rows_acted_on(k, table)
        self.note("order", f"the total {col.name} of the {table} rows")
        return Measure(col, "SUM")

    def _keep_rows_acted_on(self, k: int, table: str) -> None:
        """ "paid the most": where the table records the day of that event in a date that may
        be missing (`paid_on`), only the rows it happened to count."""
        dates = [c for c in self.index.columns_of.get(table.lower(), []) if c.kind == "date"]
        found = set(self._event_dates(self.tokens[self.mentions[k].start], dates))
        if len(found) != 1:
            return
        col = next(iter(found))
        if col.nullable:
            self.intent.filters.append(Filter(col, "is not null", []))
            self.note("filters", f"{col.name} is recorded")

    def _names_the_actors(self, k: int, table: str) -> bool:
        """ "the movie reviewed the most" linked to `reviewers`: a table named by the verb's
        agent noun (review -> reviewer, drive -> driver) holds who acts, not the acts; counting
        them is another question (how many reviewers, or how many reviews)."""
        words = self.index.table(table).words
        if not words:
            return False
        noun = words[-1][:-1] if words[-1].endswith("s") else words[-1]
        lemma = self.tokens[self.mentions[k].start].lemma
        stems = [lemma, *verb_stems(lemma)]
        return any(noun in (f"{s}er", f"{s}r", f"{s}or") for s in stems)

    def _counts_asked(self) -> bool:
        words = [t.lemma for t in self.tokens if t.kind == "word"]
        return any(words[i : i + 2] == ["how", "many"] for i in range(len(words)))

    def _ranked_by_related(self, cue: Cue) -> Measure | None:
        """ "who's our biggest patient by total billed": the superlative's rows are those
        asked about, and what follows "by" (the related table's amount) ranks them."""
        k = next((k for k, m in enumerate(self.mentions) if m.start == cue.end), None)
        if k is None or self.mentions[k].kind != "table":
            return None
        if (self.table_of(k) or "").lower() != self.intent.table.lower():
            return None
        end = self.mentions[k].end
        by = next((c for c in self.cues if c.kind == "by" and c.start == end), None)
        if by is None:
            return None
        pos = by.end
        total = next((c for c in self.cues if c.kind == "agg" and c.start == pos), None)
        if total is not None and total.payload != "SUM":
            return None
        if total is not None:
            pos = total.end
        elif pos < len(self.tokens) and self.tokens[pos].lemma in _TOTAL_WORDS:
            pos += 1
        j = next((j for j, m in enumerate(self.mentions) if m.start == pos), None)
        if j is None:
            return None
        measure = self._read_amount(by.end, j) if j in self.used else self._related_amount(j)
        if measure is None:
            return None
        self._use(k)
        self._use(j)
        self.used_tokens.update(range(by.start, pos))
        self.cues = [c for c in self.cues if c is not by and c is not total]
        return measure

    def _related_amount(self, j: int) -> Measure | None:
        """The amount a mention after "by" names, of a table other than the rows ranked."""
        m = self.mentions[j]
        focus = self.intent.table.lower()
        if m.kind == "table":
            table = self.table_of(j)
            if not table or table.lower() == focus:
                return None
            money = self._money_column(table)
            return Measure(money, "SUM") if money is not None else None
        if m.kind == "column":
            col: ColumnRef | None = self.column_of(j)
            if col is None or col.kind != "numeric" or col.table.lower() == focus:
                return None
            return Measure(col, "SUM")
        return None

    def _read_amount(self, start: int, j: int) -> Measure | None:
        """The aggregate an earlier pass read right after "by" ("by total billed", see
        `_verb_totals`), taken as the ranking when it is of another table's rows."""
        m = self.mentions[j]
        read = next(((pos, x) for pos, x in self.measures if start <= pos <= m.start), None)
        if read is None:
            return None
        measure = read[1]
        table = measure.count_table or (measure.column.table if measure.column else "")
        if not table or table.lower() == self.intent.table.lower():
            return None
        self.measures.remove(read)
        return measure

    def _ranked_by_an_action(self, intent: Intent) -> bool:
        """A ranking of the rows asked about, one row each (grouped), by an aggregate of the
        rows of a table the question names by a verb ("invoiced", "did we bill")."""
        if not intent.group_by or intent.limit is None:
            return False
        if self._owner_ranking:
            return True
        focus = intent.table.lower()
        ranked = {
            (m.column.table if m.column is not None else m.count_table or "").lower()
            for m, _ in intent.order_by
            if m.agg is not None
        } - {focus, ""}
        for k, m in enumerate(self.mentions):
            if m.kind not in ("table", "spent") or m.end - m.start != 1 or k not in self.used:
                continue
            named = {t.name.lower() for t in m.tables}
            named |= {c.table.lower() for c in m.columns if c.kind in ("date", "numeric")}
            if not named & ranked:
                continue
            word = self.tokens[m.start]
            before = self.tokens[m.start - 1].lemma if m.start > 0 else ""
            if _is_verb_form(word.text) or before in _SUBJECTS:
                return True
        return False
