"""Time in a question: "last 3 months", "this year", "before 2020", "in May 2023", durations
("took more than 30 days to close"), and which date column a period applies to."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import TIME_UNITS, Cue, cadence_values
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.intervals import CREATION_WORDS, START_WORDS, IntervalReading
from backend.nl2sql.engines.builtin.joinplan import stem
from backend.nl2sql.engines.builtin.lexicon import (
    EVENT_NOUNS,
    EVENT_WORDS,
    MONTHS,
    STOP_WORDS,
    Token,
)
from backend.nl2sql.engines.builtin.linking import ColumnRef, verb_stems

_DURATION_UNITS = {"day": "day", "hour": "hour", "week": "week"}
_LATENESS = frozenset({"late", "early", "overdue", "promptly", "quickly"})
"""Words between an event's verb and a period that only qualify the event."""
_AUXILIARIES = frozenset({"get", "be", "being", "getting", "gets", "become"})
"""Words between "take to" and the event's verb ("take to get paid", "to be resolved")."""
_QUESTION_WORDS = frozenset({"which", "what", "who", "whom", "whose", "list", "show", "name"})
_TIME_CUES = frozenset({"last", "this", "period", "day", "skip"})
_TIME_GLUE = frozenset({"in", "during", "for", "of", "so", "far", "since", "the", "new"})


def _a_year(tok: Token) -> bool:
    return tok.kind == "number" and tok.lemma.isdigit() and 1900 <= int(tok.lemma) <= 2100


_JOIN_LEAVE_VERBS = frozenset(
    {"leave", "left", "leaving", "quit", "quitting", "join", "joined", "joining", "rejoin"}
)
_EMPLOYER_NOUNS = frozenset(
    {"company", "firm", "business", "organisation", "organization", "team"}
)  # fmt: skip
_ORDER_WORDS = frozenset({"before", "after", "than", "earlier", "later", "sooner"})
_TENURE_VERBS = frozenset({"been", "stayed", "worked", "served", "remained"})
_TENURE_FILLERS = frozenset(
    {"with", "us", "we", "the", "company", "firm", "business", "here", "around", "at", "for", "our",
     "a", "an", "customer", "client", "member", "on", "board"}
)  # fmt: skip
"""Words between "been" and "the longest" of a tenure ("been with us", "been a customer")."""
_LIFE_NOUNS = frozenset({"lifetime", "tenure", "lifespan", "longevity"})
"""Nouns for the time from a row's start to its end ("customer lifetime", "tenure")."""
MONEY_IN = frozenset(
    {"revenue", "income", "earn", "earned", "earning", "earnings", "brought", "bring",
     "generate", "generated", "generating", "turnover", "takings"}
)  # fmt: skip
"""Words for money the business takes in (not what it bills or what is owed)."""


def revenue_dates(
    columns: list[ColumnRef],
) -> tuple[ColumnRef, ColumnRef | None] | None:
    """(the one nullable payment date, the one billing date or None) among a table's columns:
    the rows revenue is counted from and the day they are dated by."""
    dates = [c for c in columns if c.kind == "date" and c.words]
    paid = [c for c in dates if c.nullable and c.words[0] in EVENT_WORDS["pay"]]
    billed = [c for c in dates if not c.nullable and c.words[0] in EVENT_WORDS["bill"]]
    if len(paid) != 1:
        return None
    return paid[0], billed[0] if len(billed) == 1 else None


class TimeReading(IntervalReading):
    """Pass: relative periods and durations; helpers for dates and years."""

    def _periods(self) -> None:
        """Calendar periods ("between 10 and 16 March 2024", "Q3 2024", "before 1 June 2025")
        as a half-open range on the date column named before them, else the table's date."""
        for cue in self.cues:
            if cue.kind not in ("period", "day"):
                continue
            self.used_tokens.update(range(cue.start, cue.end))
            k = self.mention_before(cue.start, max_gap=2, kinds=("column",))
            named = self.column_of(k) if k is not None else None
            if cue.kind == "day" and (named is None or named.kind != "date"):
                raise self.decline("a day was named but not which of the dates it applies to")
            col = self._date_target(cue.start)
            if col is None:
                raise self.decline("a period was asked for but no date column was found")
            start, end = cue.payload.split("|")
            if start:
                self.intent.filters.append(Filter(col, ">=", [start]))
            if end:
                self.intent.filters.append(Filter(col, "<", [end]))
            self.note("filters", f"{col.name} from {start or '...'} to before {end or '...'}")

    def _event_bucket_dates(self) -> None:
        """ "for each purchase year": the words before the unit name the date bucketed (a
        date column of its own), read as that, not as one more column to show."""
        for cue in self.cues:
            if cue.kind != "bucket":
                continue
            for k, m in enumerate(self.mentions):
                col = self.column_of(k) if m.kind == "column" and m.end == cue.start else None
                if col is None or col.kind != "date" or not self._event_said(m.start, cue.start):
                    continue
                m.kind = "spent"
                self._use(k)
                self.bucket_dates.append(col)

    def _event_said(self, start: int, end: int) -> bool:
        """Whether the words name an event ("purchase", "sign up") right after a bucket's
        lead ("for each", "per", "by")."""
        lead = next((c for c in self.cues if c.kind == "skip" and c.end == start), None)
        words = [t for t in self.tokens[start:end] if t.lemma != "up"]
        return lead is not None and len(words) == 1 and words[0].lemma in EVENT_WORDS

    def _cadences(self) -> None:
        """ "active subscriptions billed annually": the adverb is a value of the column that
        records how often ('annual'), and the verb before it only says what happens so."""
        for tok in self.tokens:
            if tok.index in self.used_tokens:
                continue
            hits = cadence_values(self.tokens, tok.index, self.index)
            if not hits:
                continue
            col, stored = hits[0]
            self.intent.filters.append(Filter(col, "=", [stored]))
            verb = self.tokens[tok.index - 1]
            self.used_tokens.update({tok.index, verb.index})
            for k, m in enumerate(self.mentions):
                if m.start <= verb.index < m.end and m.kind in ("table", "column"):
                    m.kind = "spent"  # "billed": how the rows are billed, not the bills
                    self._use(k)
                elif m.start <= tok.index < m.end:
                    m.kind = "spent"  # "monthly" linked as the value itself: read here
                    self._use(k)
            self.note("filters", f"{col.name} = {stored} ('{verb.text} {tok.text}')")

    def _elapsed_times(self) -> None:
        """ "created more than three years ago", "been with us for over five years", "joined
        less than 6 months ago": a date compared with today (the layer's `today`, else the
        clock) moved back by the amount."""
        for cue in list(self.cues):
            if cue.kind != "cmp" or cue.payload not in (">", ">=", "<", "<="):
                continue
            pos = cue.end
            amount = 1
            if pos < len(self.tokens) and self.tokens[pos].kind == "number":
                amount = int(float(self.tokens[pos].lemma))
                pos += 1
            elif pos < len(self.tokens) and self.tokens[pos].lemma in ("a", "an", "one"):
                pos += 1
            if pos >= len(self.tokens) or self.tokens[pos].lemma not in TIME_UNITS:
                continue
            unit = TIME_UNITS[self.tokens[pos].lemma]
            ago = pos + 1 < len(self.tokens) and self.tokens[pos + 1].lemma == "ago"
            tenure = cue.start > 0 and self.tokens[cue.start - 1].lemma == "for"
            if not ago and not tenure:
                continue
            col = self._date_target(cue.start) if ago else self._start_date()
            if col is None:
                raise self.decline("an elapsed time was asked for but no date column was found")
            if not ago:
                self.named_dates[cue.start] = col  # the rows' own start, not a guess
                self._company_idiom(cue.start - 1)
            longer = cue.payload in (">", ">=")
            # longer ago / longer tenure: the date lies before today minus the amount
            op = "not recent" if longer else "recent"
            self.cues.remove(cue)
            end = pos + 2 if ago else pos + 1
            self.used_tokens.update(range(cue.start - (0 if ago else 1), end))
            self.intent.filters.append(Filter(col, op, [amount], unit=unit))
            self.note(
                "filters", f"{col.name} {'over' if longer else 'within'} {amount} {unit}(s) ago"
            )

    def _event_fragment_count(self) -> bool:
        """ "Sign-ups last month?", "Hires in 2024?", "Orders this year?": a question that is
        only the plural noun of an event and a period asks how many times the event happened
        in it (a count of the focus table's rows), not for a list of them. Read only when
        nothing else is asked: no wh-word, no other measure, breakdown or ranking."""
        words = [t for t in self.tokens if t.kind == "word"]
        if not words or words[0].lemma in _QUESTION_WORDS or self.measures:
            return False
        if any(c.kind not in _TIME_CUES for c in self.cues):
            return False
        timed = {i for c in self.cues if c.kind != "skip" for i in range(c.start, c.end)}
        timed |= {t.index for t in self.tokens if _a_year(t) or t.lemma in MONTHS}
        if not timed:
            return False
        lead = next((t for t in words if t.lemma != "new"), words[0])  # "New sign-ups"
        head = next((m for m in self.mentions if m.start == lead.index), None)
        if head is None or head.kind not in ("table", "column") or head.end - head.start > 2:
            return False
        if head.kind == "column" and not all(c.kind == "date" for c in head.columns):
            return False
        first = self.tokens[head.start]
        last = self.tokens[head.end - 1].text.lower()
        if first.lemma not in EVENT_WORDS and first.lemma not in EVENT_NOUNS:
            return False
        if not last.endswith("s") or last.endswith("ss"):
            return False  # not a plural noun ("Revenue last month" is another question)
        own = {stem(w) for w in self.index.table(self.intent.table).words}
        if (
            head.kind == "table"
            and {stem(t.lemma) for t in self.tokens[head.start : head.end]} & own
        ):
            return False  # "orders in the last 30 days": the table's own rows, listed
        for t in self.tokens:
            inside = head.start <= t.index < head.end or t.index in timed
            if not inside and t.kind != "punct" and t.lemma not in _TIME_GLUE:
                return False
        self.measures.append((head.start, Measure(None, "COUNT", count_table=self.intent.table)))
        self.note(
            "aggregates",
            f"count (how many '{' '.join(t.text for t in self.tokens[head.start : head.end])}')",
        )
        return True

    def _tenure_rank(self, cue: Cue) -> Measure | None:
        """ "which customer has been with us the longest", "who has worked here the shortest":
        the rows ranked by how long ago they started, the earliest start first for "longest"
        (a `Measure` of the start date; the caller orders it ascending for "longest")."""
        if not cue.payload.startswith("length"):
            return None
        before = self.tokens[max(0, cue.start - 6) : cue.start]
        verb = next((t for t in reversed(before) if t.lemma in _TENURE_VERBS), None)
        if verb is None:
            return None
        between = self.tokens[verb.index + 1 : cue.start]
        if any(t.lemma not in _TENURE_FILLERS for t in between if t.kind == "word"):
            return None
        col = self._start_date()
        if col is None:
            return None
        spent = range(verb.index, cue.start)
        self.used_tokens.update(spent)
        for k, m in enumerate(self.mentions):
            if m.start in spent:  # "with the company": an idiom, not the `company_name` column
                m.kind = "spent"
                self._use(k)
        self.note("order", f"{col.name}, the earliest first (the longest-standing rows)")
        return Measure(col)

    def _employer_idioms(self) -> None:
        """ "left the company", "joined the firm", "quit the business": the employer the rows
        leave or join (their own date says when), not a table or a `company_name` column."""
        for tok in self.tokens:
            if tok.lemma not in _JOIN_LEAVE_VERBS or tok.index + 2 >= len(self.tokens):
                continue
            the, noun = self.tokens[tok.index + 1], self.tokens[tok.index + 2]
            if the.lemma not in ("the", "our", "this") or noun.lemma not in _EMPLOYER_NOUNS:
                continue
            if any(c.table.lower() == self.intent.table.lower() for c in self._linked(noun.index)):
                continue  # the rows asked about are the companies themselves
            if any(t.lemma in _ORDER_WORDS for t in self.tokens[noun.index + 1 :]):
                continue  # "joined the company before their manager did": a comparison to read
            self.used_tokens.update({the.index, noun.index})
            for k, m in enumerate(self.mentions):
                if m.start <= noun.index < m.end:
                    m.kind = "spent"
                    self._use(k)

    def _linked(self, pos: int) -> list[ColumnRef]:
        return [c for m in self.mentions if m.start <= pos < m.end for c in m.columns]

    def _company_idiom(self, pos: int) -> None:
        """ "been with the company / with us for over five years": an idiom of tenure, not a
        mention of a table that happens to be called `company`."""
        words = self.tokens[max(0, pos - 4) : pos]
        at = next((t.index for t in reversed(words) if t.lemma == "with"), None)
        if at is None:
            return
        self.used_tokens.update(range(at, pos))
        for k, m in enumerate(self.mentions):
            if at <= m.start < pos:
                self._use(k)

    def _start_date(self) -> ColumnRef | None:
        """The date a row of the focus table starts from: sign-up, hire, creation."""
        dates = [
            c for c in self.index.columns_of.get(self.intent.table.lower(), []) if c.kind == "date"
        ]
        starts = [
            c for c in dates
            if set(c.words) & (START_WORDS | CREATION_WORDS | {"hire", "joined", "since"})
        ]  # fmt: skip
        if len(starts) == 1:
            return starts[0]
        return dates[0] if len(dates) == 1 else None

    def _relative_times(self) -> None:
        for cue in self.cues:
            if cue.kind not in ("last", "this"):
                continue
            amount = 1
            if self.tokens[cue.start + 1].kind == "number":
                amount = int(float(self.tokens[cue.start + 1].lemma))
            unit = TIME_UNITS[self.tokens[cue.end - 1].lemma]
            self.used_tokens.update(range(cue.start, cue.end))
            col = self._date_target(cue.start)
            if col is None:
                raise self.decline("a time range was asked for but no date column was found")
            if cue.kind == "this":
                self.intent.filters.append(Filter(col, "this", [], unit=unit))
            elif cue.payload == "calendar" and unit in ("month", "quarter", "year"):
                # "revenue last quarter": the whole calendar quarter before the current one
                self.intent.filters.append(Filter(col, "previous", [], unit=unit))
                self.note("filters", f"{col.name} in the previous calendar {unit}")
                continue
            else:
                self.intent.filters.append(Filter(col, "recent", [amount], unit=unit))
            self.note("filters", f"{col.name} in the last {amount} {unit}(s)")

    def _date_target(self, pos: int) -> ColumnRef | None:
        verb = self._date_of_verb(pos)
        if verb is not None:
            return verb
        end = next((c.end for c in self.cues if c.start == pos), pos + 1)
        measured = self.measure_date_near(pos, end)
        if measured is not None:
            return measured  # "2024 revenue": the measure's own date
        billed = self._money_date()
        if billed is not None:
            return billed  # "our 2024 revenue came from ...": the day the money was billed
        k = self.mention_before(pos, max_gap=2, kinds=("column",))
        if k is not None:
            col = self.column_of(k)
            if col is not None and col.kind == "date":
                self._use(k)
                return col
        for d in self.definitions:
            if d.start in self.named_dates and d.end <= pos and self.gap(d.end, pos) <= 1:
                return self.named_dates[d.start]  # "accounts churned between ..."
        return self._default_date([t for _, m in self.measures for t in m.tables])

    def _money_date(self) -> ColumnRef | None:
        """The billing date of the one table whose amount a word for revenue names, when that
        table records payments ("2024 revenue", "revenue earned in 2024")."""
        found: list[ColumnRef] = []
        for m in self.mentions:
            if m.kind != "column" or not any(
                t.lemma in MONEY_IN for t in self.tokens[m.start : m.end]
            ):
                continue
            for table in dict.fromkeys(c.table.lower() for c in m.columns if c.kind == "numeric"):
                dates = revenue_dates(self.index.columns_of.get(table, []))
                if dates is not None and dates[1] is not None and dates[1] not in found:
                    found.append(dates[1])
        return found[0] if len(found) == 1 else None

    def _default_date(self, prefer: list[str]) -> ColumnRef | None:
        """The date a period or bucket applies to when no word next to it names one: the
        event the question names elsewhere, else the first date of the preferred tables
        (remembered, so the assembly can move it to the rows a measure aggregates)."""
        if len(set(self.bucket_dates)) == 1:
            return self.bucket_dates[0]  # "for each purchase year"
        event = self._date_of_event()
        if event is not None:
            return event
        col = self.date_column(prefer)
        if col is not None and not self.time_preference:
            self.default_dates.append(col)
        return col

    def _redate_by_measure(self, intent: Intent) -> None:
        """ "2024 revenue by plan tier": a period put on the focus table's first date for want
        of a better one belongs to the rows the measure adds up (the invoices' date, not the
        plans' launch date), when all the aggregated columns come from one table with dates."""
        moved = list(dict.fromkeys(self.default_dates))
        if not moved:
            return
        measured = {
            m.column.table.lower()
            for m in intent.select
            if m.agg in ("SUM", "AVG", "MIN", "MAX") and m.column is not None
        }
        if len(measured) != 1:
            return
        table = next(iter(measured))
        dates = [
            c for c in self.index.columns_of.get(table, []) if c.kind == "date" and c.words
        ]  # fmt: skip
        if not dates:
            return
        found: list[ColumnRef] = []
        for tok in self.tokens:
            if tok.kind == "word" and tok.lemma not in STOP_WORDS:
                hits = self._event_dates(tok, dates)
                if len(hits) == 1 and hits[0] not in found:
                    found.append(hits[0])
        target = found[0] if len(found) == 1 else dates[0]
        for old in moved:
            if old.table.lower() == table:
                continue
            for f in intent.filters:
                if f.column == old:
                    f.column = target
            for m in [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]:
                if m.column == old and m.bucket is not None:
                    m.column = target
            if table not in {t.lower() for t in intent.extra_tables}:
                intent.extra_tables.append(target.table)

    def _event_dates(self, tok: Token, dates: list[ColumnRef]) -> list[ColumnRef]:
        """Dates among `dates` that record the event a word names: by spelling (`issued` ->
        `issue_date`) or by the event's usual column words ("lose" -> `churned_at`)."""
        forms = {tok.lemma, *verb_stems(tok.lemma)}
        hits = [c for c in dates if c.words[0] in forms]
        if hits:
            return hits
        events: set[str] = set()
        for form in forms:
            events |= EVENT_WORDS.get(form, frozenset())
        return [c for c in dates if c.words[0] in events]

    def _date_of_event(self) -> ColumnRef | None:
        """ "How many customers did we lose in 2023", "2024 sign-ups": a word anywhere in the
        question names the event whose date the period applies to (one date of the focus
        table), when no word next to the period did."""
        dates = [
            c for c in self.index.columns_of.get(self.intent.table.lower(), [])
            if c.kind == "date" and c.words
        ]  # fmt: skip
        if len(dates) < 2:
            return None
        found: list[ColumnRef] = []
        words: list[Token] = []
        named = {i for d in self.definitions for i in range(d.start, d.end)}
        for tok in self.tokens:
            if tok.kind != "word" or tok.lemma in STOP_WORDS or self._names_a_column(tok):
                continue  # "shipping cost" names a column, not the shipping event
            if tok.index in named and self.time_preference:
                continue  # "returned loans": a layer measure, dated by its own time column
            hits = self._event_dates(tok, dates)
            if len(hits) == 1:
                words.append(tok)
                if hits[0] not in found:
                    found.append(hits[0])
        if len(found) != 1:
            return None
        for tok in words:
            self._use_token(tok)  # the word is read: it named the event
        return found[0]

    def _names_a_column(self, tok: Token) -> bool:
        """Whether a word is part of a link to a column that is not a date."""
        return any(
            m.start <= tok.index < m.end and m.columns[0].kind != "date"
            for m in self.mentions
            if m.kind == "column" and m.columns
        )

    def _date_of_verb(self, pos: int) -> ColumnRef | None:
        """ "invoices we issued between ...", "tickets opened in 2024": the word right before
        names a date column of the focus table by its first word (issue_date, opened_at)."""
        dates = [
            c for c in self.index.columns_of.get(self.intent.table.lower(), [])
            if c.kind == "date" and c.words
        ]  # fmt: skip
        late = [t.index for t in self.tokens[max(0, pos - 2) : pos] if t.lemma in _LATENESS]
        start = max(0, pos - 2 - len(late))  # "paid late in 2024": the payment's date
        for tok in reversed(self.tokens[start:pos]):
            if tok.kind != "word" or tok.lemma in STOP_WORDS or tok.index in late:
                continue
            hits = self._event_dates(tok, dates)
            if len(hits) == 1:
                self._use_token(tok)
                for k, m in enumerate(self.mentions):
                    if m.start <= tok.index < m.end:
                        self._use(k)
                return hits[0]
            return None
        return None

    def _date_comparison(self, cue: Cue, lits: list[Token]) -> None:
        op = cue.payload
        tok = lits[0]
        if op in ("before", "after", "since"):
            mapped = {"before": "<", "after": ">", "since": ">="}[op]
        else:
            mapped = op
        k = self.mention_before(cue.start, max_gap=2, kinds=("column",))
        col = None
        if k is not None:
            cand = self.column_of(k)
            if cand is not None and (cand.kind == "date" or cand.words[-1:] == ("year",)):
                col = cand
                self._use(k)
        is_year = tok.kind == "number" and 1800 <= float(tok.lemma) <= 2200
        if col is None and is_year:
            col = self.year_column([]) or self.date_column([])
        elif col is None:
            col = self.date_column([])
        if col is None:
            raise self.decline("a date comparison was asked for but no date column was found")
        if tok.kind == "word" and tok.lemma in MONTHS:
            month = MONTHS[tok.lemma]
            year_tok = self.tokens[tok.index + 1] if tok.index + 1 < len(self.tokens) else None
            if year_tok is not None and year_tok.kind == "number":
                self._use_token(year_tok)
                year = int(float(year_tok.lemma))
                start = f"{year:04d}-{month:02d}-01"
                end = f"{year + (month == 12):04d}-{month % 12 + 1:02d}-01"
                value = start if mapped in ("<", ">=") else end
                self.intent.filters.append(Filter(col, mapped if mapped != ">" else ">=", [value]))
            else:
                self.intent.filters.append(Filter(col, "month" + mapped, [month]))
        elif is_year and col.kind == "date":
            year = int(float(tok.lemma))
            if mapped == "<":
                self.intent.filters.append(Filter(col, "<", [f"{year:04d}-01-01"]))
            elif mapped == ">":
                self.intent.filters.append(Filter(col, ">=", [f"{year + 1:04d}-01-01"]))
            elif mapped == "between" and len(lits) == 2:
                end_year = int(float(lits[1].lemma))
                self.intent.filters.append(Filter(col, ">=", [f"{year:04d}-01-01"]))
                self.intent.filters.append(Filter(col, "<", [f"{end_year + 1:04d}-01-01"]))
            else:
                self.intent.filters.append(Filter(col, ">=", [f"{year:04d}-01-01"]))
        else:
            values = [self._literal_value(t) for t in lits]
            self.intent.filters.append(Filter(col, mapped, values))
        self.note("filters", f"{col.name} {op} {tok.text}")

    def _month_before(self, tok: Token) -> int | None:
        """The month named right before a year ("May 2023"), unless something else used it."""
        if tok.index == 0:
            return None
        prev = self.tokens[tok.index - 1]
        if prev.kind != "word" or prev.index in self.used_tokens or prev.lemma not in MONTHS:
            return None
        if len(prev.lemma) <= 3 and not prev.text[:1].isupper():
            return None  # "may", "mar": only as a capitalised name
        return MONTHS[prev.lemma]

    def _durations(self) -> None:
        """ "took more than 30 days to close", "average days to pay", "avg hours to resolve",
        "average resolution time in hours", "avg hours from open to close", "how many days
        after an invoice is issued do we get paid": the time between the row's start date
        (or the date of the first event named) and the date of the event the verb names."""
        for tok in self.tokens:
            unit = _DURATION_UNITS.get(tok.lemma)
            if tok.kind != "word" or tok.index in self.used_tokens:
                continue
            if unit is None and tok.lemma == "time":
                found = self._event_noun_span(tok)
            elif unit is None and tok.lemma in _LIFE_NOUNS:
                found = self._lifetime_span(tok)
            elif unit is None and tok.lemma == "long" and tok.index > 0:
                found = self._how_long_span(tok)
            elif unit is not None:
                found = self._verb_span(tok)
            else:
                continue
            if found is None:
                continue
            span, consumed = found
            self._read_duration(tok, span, consumed)

    def _verb_span(self, tok: Token) -> tuple[Measure, list[Token]] | None:
        """ "days to close", "hours from open to close", "days after ... issued ... paid"."""
        unit = _DURATION_UNITS[tok.lemma]
        table = self.intent.table
        after = [t for t in self.tokens[tok.index + 1 : tok.index + 10] if t.kind == "word"]
        if len(after) >= 4 and after[0].lemma == "from" and after[2].lemma in ("to", "until"):
            start = self._event_column(table, after[1].lemma)
            end = self._event_column(table, after[3].lemma)
            if start is not None and end is not None and start != end:
                return Measure(end, since=start, unit=unit), [tok, *after[:4]]
        if after and after[0].lemma == "after":
            events = [
                (t, c) for t in after[1:]
                if not self._names_rows(t) and (c := self._event_column(table, t.lemma)) is not None
            ]  # fmt: skip  # ("after an invoice is issued": the noun is the rows, not an event)
            if len(events) >= 2 and events[0][1] != events[1][1]:
                (first, start), (second, end) = events[:2]
                return Measure(end, since=start, unit=unit), [tok, after[0], first, second]
        if after and after[0].lemma == "late":
            due = self._due_column(table)  # "average number of days late"
            settled = self._settled_column(table, due) if due is not None else None
            if due is not None and settled is not None:
                self.named_dates[tok.index] = settled
                return Measure(settled, since=due, unit=unit), [tok, after[0]]
        near = after[:3] if not self._takes(after) else after[:8]
        verb_at = next(
            (
                i for i, t in enumerate(near[:-1])
                if t.lemma in ("to", "until", "before")
                and self._event_column(table, near[i + 1].lemma) is not None
            ),
            None,
        )  # fmt: skip
        if verb_at is None:
            return None
        verb = near[verb_at + 1]
        end = self._event_column(table, verb.lemma)
        if end is None:
            return None
        start = self._start_column(table, end)
        if start is None:
            raise self.decline(
                f"could not tell from which date the time to '{verb.text}' is counted"
            )
        consumed = [tok, *near[verb_at : verb_at + 2]]
        if self._takes(after):
            obj = next((m for m in self.mentions if m.start > verb.index), None)
            if (
                obj is not None
                and obj.kind in ("table", "column")
                and self.gap(verb.index + 1, obj.start) == 0
            ):
                consumed += self.tokens[obj.start : obj.end]  # "to close a ticket": the rows
        return Measure(end, since=start, unit=unit), consumed

    def _how_long_span(self, tok: Token) -> tuple[Measure, list[Token]] | None:
        """ "how long do tickets take to be resolved", "how long does it take to close a
        ticket (in hours)": the time from the row's start to the event the verb after
        "take ... to" names, in days unless the question says another unit."""
        how = self.tokens[tok.index - 1]
        if how.lemma != "how":
            return None
        after = [t for t in self.tokens[tok.index + 1 : tok.index + 10] if t.kind == "word"]
        take = next((t for t in after[:5] if t.lemma in ("take", "took", "taken", "taking")), None)
        if take is None:
            return None
        rest = [t for t in after if t.index > take.index]
        to = next((i for i, t in enumerate(rest[:4]) if t.lemma in ("to", "until", "before")), None)
        if to is None:
            return None
        skipped = [t for t in rest[to + 1 : to + 3] if t.lemma in _AUXILIARIES]
        if to + 1 + len(skipped) >= len(rest):
            return None
        verb = rest[to + 1 + len(skipped)]
        table = self.intent.table
        end = self._event_column(table, verb.lemma)
        if end is None:
            # "how long do customers take to pay": the one table recording that event
            hits = [
                c for name in self.index.tables
                if (c := self._event_column(name, verb.lemma)) is not None
            ]  # fmt: skip
            if len(hits) != 1:
                return None
            end = hits[0]
            table = end.table
        start = self._start_column(table, end)
        if start is None or start == end:
            return None
        unit, consumed = "day", [how, tok, take, rest[to], *skipped, verb]
        for a, b in zip(self.tokens, self.tokens[1:], strict=False):
            if a.lemma == "in" and b.lemma in _DURATION_UNITS and b.index not in self.used_tokens:
                unit = _DURATION_UNITS[b.lemma]  # "..., in hours"
                consumed += [a, b]
                break
        return Measure(end, since=start, unit=unit), consumed

    def _lifetime_span(self, tok: Token) -> tuple[Measure, list[Token]] | None:
        """ "the average lifetime in days of customers who churned", "tenure of staff who
        left": from the row's start to the date its life ended, when the question names that
        ending (a lifetime still running has no end date to count to)."""
        table = self.intent.table
        ends = [
            c for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "date" and c.words and c.words[0] in EVENT_WORDS["lose"]
        ]  # fmt: skip
        if len(ends) != 1:
            return None
        end = ends[0]
        ended = any(
            t.index != tok.index and self._event_date(table, t) == end
            for t in self.tokens if t.kind == "word"
        )  # fmt: skip
        start = self._start_column(table, end)
        if not ended or start is None:
            return None
        unit, consumed = "day", [tok]
        rest = self.tokens[tok.index + 1 : tok.index + 3]
        if len(rest) == 2 and rest[0].lemma == "in" and rest[1].lemma in _DURATION_UNITS:
            unit = _DURATION_UNITS[rest[1].lemma]
            consumed += rest
        return Measure(end, since=start, unit=unit), consumed

    @staticmethod
    def _takes(after: list[Token]) -> bool:
        """ "how many hours on average does it take us to close a ticket": a time taken."""
        return any(t.lemma in ("take", "took", "taken", "taking") for t in after[:6])

    def _event_noun_span(self, tok: Token) -> tuple[Measure, list[Token]] | None:
        """ "average resolution time in hours": the event named by a noun before "time"."""
        if tok.index == 0:
            return None
        noun = self.tokens[tok.index - 1]
        verb = EVENT_NOUNS.get(noun.lemma)
        if noun.kind != "word" or verb is None:
            return None
        end = self._event_column(self.intent.table, verb)
        if end is None:
            return None
        start = self._start_column(self.intent.table, end)
        if start is None:
            return None
        unit, consumed = "day", [noun, tok]
        rest = self.tokens[tok.index + 1 : tok.index + 3]
        if len(rest) == 2 and rest[0].lemma == "in" and rest[1].lemma in _DURATION_UNITS:
            unit = _DURATION_UNITS[rest[1].lemma]
            consumed += rest
        return Measure(end, since=start, unit=unit), consumed

    def _read_duration(self, tok: Token, span: Measure, consumed: list[Token]) -> None:
        start, end, unit = span.since, span.column, span.unit
        if start is None or end is None:
            return
        first = min(t.index for t in consumed)
        number = self.tokens[first - 1] if first > 0 else None
        cmp_cue = None
        if number is not None and number.kind == "number":
            cmp_cue = next(
                (c for c in self.cues if c.kind == "cmp" and c.end == number.index), None
            )
        agg_cue = next(
            (c for c in self.cues
             if c.kind == "agg" and c.end <= first and first - c.end <= 3),
            None,
        )  # fmt: skip
        if agg_cue is None:
            last = max(t.index for t in consumed)
            agg_cue = self._average_said_apart(first) or self._average_said_apart(last)
        if cmp_cue is not None and number is not None:
            self.cues.remove(cmp_cue)
            self.used_tokens.update(range(cmp_cue.start, cmp_cue.end))
            consumed.append(number)
            op = cmp_cue.payload if cmp_cue.payload in (">", "<", ">=", "<=") else ">"
            self.intent.filters.append(Filter(span, op, [self._literal_value(number)]))
            self.note("filters", f"{unit}s from {start.name} to {end.name} {op} {number.text}")
        elif agg_cue is not None and agg_cue.payload in ("AVG", "SUM", "MIN", "MAX"):
            self.cues.remove(agg_cue)
            self.used_tokens.update(range(agg_cue.start, agg_cue.end))
            span.agg = agg_cue.payload
            for c in [c for c in self.cues if c.kind == "count"]:
                if c.end <= first and first - c.end <= 1 or agg_cue.end <= c.start < first:
                    self.cues.remove(c)  # "average number of days", "how many hours"
                    self.used_tokens.update(range(c.start, c.end))
            self.measures.append((tok.index, span))
            self.note("aggregates", f"{span.agg} {unit}s from {start.name} to {end.name}")
        else:
            return
        for t in consumed:
            self._use_token(t)
        for k, m in enumerate(self.mentions):
            if any(m.start <= t.index < m.end for t in consumed):
                m.kind = "spent"  # read as part of the duration, not as a link
                self._use(k)

    def _average_said_apart(self, pos: int) -> Cue | None:
        """ "On average, how many days ...", "how many hours on average does it take": an
        "average" that qualifies no column of its own."""
        for c in self.cues:
            if c.kind != "agg" or c.payload != "AVG":
                continue
            nxt = next((m for m in self.mentions if m.start >= c.end), None)
            qualifies = nxt is not None and nxt.kind == "column" and self.gap(c.end, nxt.start) == 0
            if not qualifies and abs(c.start - pos) <= 8:
                return c
        return None

    def _ambiguous_dates(self, intent: Intent) -> list[tuple[ColumnRef, list[ColumnRef]]]:
        """Date columns the reading chose without the question naming them, in tables that
        have other dates too ("lost in 2023": created, churned?): (chosen, alternatives)."""
        lemmas = {t.lemma for t in self.tokens if t.kind == "word"}
        lemmas |= {stem for lemma in list(lemmas) for stem in verb_stems(lemma)}
        used: list[ColumnRef] = [
            f.column for f in intent.filters
            if isinstance(f.column, ColumnRef) and f.column.kind == "date"
            and f.op not in ("is null", "is not null")
        ]  # fmt: skip
        buckets = [m.column for m in intent.group_by if m.bucket and m.column is not None]
        measured = {
            m.column.table.lower()
            for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if m.agg in ("SUM", "AVG", "MIN", "MAX") and m.column is not None and m.since is None
        }  # the rows a figure of theirs is taken over (not a count: which event was counted?)
        out: list[tuple[ColumnRef, list[ColumnRef]]] = []
        for col in dict.fromkeys([*used, *buckets]):
            if (
                col in self.time_preference
                or col in self.named_dates.values()
                or col == self.layer_time_column(col.table)
            ):
                continue  # the layer says what the measure, the filter or the rows are dated by
            named = set(col.words) - {"date", "at", "on", "time", "timestamp", "day"}
            if named & lemmas:
                continue
            if col.words and any(
                tok.kind == "word"
                and tok.lemma not in STOP_WORDS
                and not self._names_a_column(tok)
                and self._event_dates(tok, [col])
                for tok in self.tokens
            ):
                continue  # "customers we lost in 2023": the question names the event
            own = self.index.table(col.table).words
            if set(own) & named or (named & CREATION_WORDS and col not in used):
                continue  # `order_date` of orders; `created_at` for "per month": the row's date
            others = [
                c for c in self.index.columns_of.get(col.table.lower(), [])
                if c.kind == "date" and c != col
            ]  # fmt: skip
            if _own_date(col, others) and col.table.lower() in measured:
                continue  # `opened_at` beside a `closed_at` that may be empty: the row's date
            if others:
                out.append((col, others))
        return out


def _scheduled(col: ColumnRef) -> bool:
    """A date set ahead for something due (`due_date`, `expires_on`), not an event's day."""
    return bool(col.words) and col.words[0] in EVENT_WORDS["due"]


def _own_date(col: ColumnRef, others: list[ColumnRef]) -> bool:
    """Whether `col` is the one date every row has (the day it came into being) and the
    table's other dates record later events that may not have happened (empty when not) or
    days scheduled ahead: periods and buckets of the rows go on it."""
    if col.nullable or _scheduled(col):
        return False
    return all(c.nullable or _scheduled(c) for c in others)
