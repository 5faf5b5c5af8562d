"""Amounts of time between two events of one row, and days inside a row's validity interval.

* "resolved within 24 hours of being opened", "churned less than four months after signing
  up", "left within a year of being hired": the time from the date of the event named after
  the amount to the date of the event named before it, compared with the amount (days and
  hours as a difference, months and years as calendar steps from the start date).
* "paid more than two weeks late": from the row's due date to the date of the event.
* "more than 60 days overdue": the due date lies further back than the amount from today (the
  layer's `today`, else the latest start date of the table's rows) and the event that would
  settle it has not happened.
* "an active subscription on 31 December 2023": started by that day and not ended by it.
* "rated 1 star", "on the 1-5 survey": a value of the row's rating column, and a scale that
  only describes it.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.definitions import DefinitionReading
from backend.nl2sql.engines.builtin.intents import Filter, Literal, Measure
from backend.nl2sql.engines.builtin.lexicon import ACRONYMS, EVENT_WORDS, STOP_WORDS, Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, verb_stems

GAP_UNITS = {"minute": "minute", "min": "minute", "hour": "hour", "hr": "hour", "day": "day",
             "week": "week", "month": "month", "year": "year"}  # fmt: skip
"""Units an amount of time between two events is written in."""

IRREGULAR_PAST = {"pay": "paid", "payment": "paid", "leave": "left", "sell": "sold",
                  "send": "sent", "resolve": "resolved", "close": "closed"}  # fmt: skip

START_WORDS = frozenset(
    {"created", "opened", "issued", "issue", "start", "started", "submitted", "placed",
     "registered", "signup", "hire", "hired", "ordered", "requested", "received", "booked"}
)  # fmt: skip
"""First words of date columns a row's life starts from (`opened_at`, `issue_date`)."""

CREATION_WORDS = frozenset({"created", "creation", "registered", "registration", "signup"})

_DUE_WORDS = frozenset({"due", "deadline", "expected", "scheduled", "promised", "target",
                        "planned", "committed"})  # fmt: skip
"""Words of a date column holding when something should happen (`due_date`)."""

_END_WORDS = frozenset({"end", "ended", "ending", "expiry", "expires", "expiration", "expired",
                        "until", "stop", "stopped", "finish", "finished"})  # fmt: skip
"""Words of a date column closing a validity interval (`end_date`, `valid_until`)."""

_VALID_FROM_WORDS = frozenset({"start", "started", "begin", "began", "from", "effective",
                               "joined", "enrolled", "activated", "subscribed"})  # fmt: skip

_STATE_WORDS = frozenset({"active", "current", "valid", "live", "running", "ongoing",
                          "open", "subscribed", "employed", "enrolled", "effective"})  # fmt: skip
"""Words that say a row's interval covers a day ("an active subscription on ...")."""

_BETWEEN_STATE_AND_DAY = frozenset(
    {"was", "were", "is", "are", "be", "been", "still", "any", "there", "had", "have", "has"}
)
"""Words that may stand between the state word and the day ("subscriptions were active on")."""

_SCORE_WORDS = frozenset({"rating", "rate", "rated", "score", "scored", "star", "stars",
                          "satisfaction", "promoter", "grade", "review"})  # fmt: skip
"""Words of a column holding a rating on a scale."""

_SCALE_NOUNS = frozenset({"scale", "survey", "rating", "score", "point", "star", "questionnaire"})
_RATED_VERBS = frozenset({"rated", "scored", "graded"})
_OPEN_ENDS = {
    **{("or", w): ">=" for w in ("more", "higher", "greater", "above", "better", "over", "up")},
    **{("and", w): ">=" for w in ("more", "higher", "above", "over", "up")},
    **{("or", w): "<=" for w in ("less", "lower", "fewer", "below", "worse", "under")},
    **{("and", w): "<=" for w in ("less", "lower", "below", "under")},
}
"""A value with one open end: "4 stars or higher", "2 or below"."""
_WITHIN = frozenset({"within", "inside"})
_GAP_LINKS = frozenset({"of", "after", "from", "since"})
_AUXILIARIES = frozenset(
    {"being", "been", "be", "was", "were", "is", "are", "having", "first", "their", "its",
     "the", "a", "an", "his", "her", "they", "it", "up"}
)  # fmt: skip


class IntervalReading(DefinitionReading):
    """Passes: time between two events, validity on a day, ratings; event-date helpers."""

    # -- event dates -------------------------------------------------------------------------

    def _event_column(self, table: str, verb: str) -> ColumnRef | None:
        """The date column recording when `verb` happened: close -> closed_at, pay -> paid_date."""
        forms = {verb, verb + "ed", verb + "d", verb + verb[-1:] + "ed"}
        forms.add(IRREGULAR_PAST.get(verb, verb))
        if verb.endswith("y"):
            forms.add(verb[:-1] + "ied")
        dates = [c for c in self.index.columns_of.get(table.lower(), []) if c.kind == "date"]
        for col in dates:
            if col.words and col.words[0] in forms:
                return col
        events = EVENT_WORDS.get(verb, frozenset())
        hits = [c for c in dates if c.words and c.words[0] in events]
        return hits[0] if len(hits) == 1 else None

    def _event_date(self, table: str, tok: Token) -> ColumnRef | None:
        """`_event_column` for a word as written or its verb stem ("signing" -> sign)."""
        if tok.kind != "word" or tok.lemma in STOP_WORDS:
            return None
        for form in (tok.lemma, *verb_stems(tok.lemma)):
            col = self._event_column(table, form)
            if col is not None:
                return col
        return None

    def _start_column(self, table: str, end: ColumnRef) -> ColumnRef | None:
        """The date a row starts from: the table's only other date, or its creation-like one."""
        others = [
            c for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "date" and c != end
        ]  # fmt: skip
        if len(others) == 1:
            return others[0]
        own = set(self.index.table(table).words)
        starts = [
            c for c in others if c.words and (c.words[0] in START_WORDS or own & set(c.words))
        ]
        return starts[0] if len(starts) == 1 else None

    def _dates_of(self, table: str) -> list[ColumnRef]:
        return [c for c in self.index.columns_of.get(table.lower(), []) if c.kind == "date"]

    def _due_column(self, table: str) -> ColumnRef | None:
        hits = [c for c in self._dates_of(table) if set(c.words) & _DUE_WORDS]
        return hits[0] if len(hits) == 1 else None

    def _settled_column(self, table: str, due: ColumnRef) -> ColumnRef | None:
        """The date of the event a due date waits for (`paid_date` for `due_date`): the one
        nullable date of the table that is neither the due date nor where a row starts."""
        hits = [
            c for c in self._dates_of(table)
            if c != due and c.nullable and not set(c.words) & (START_WORDS | CREATION_WORDS)
        ]  # fmt: skip
        return hits[0] if len(hits) == 1 else None

    def _anchor_date(self, table: str, due: ColumnRef, settled: ColumnRef) -> ColumnRef | None:
        """The date whose latest value stands for today without the layer's `today`: when the
        rows start (an invoice's issue date, a loan's borrowing date), which a table keeps
        recording up to its last day."""
        layer = self.index.semantic
        if layer is not None and layer.today is not None:
            return None  # the layer says what today is
        others = [c for c in self._dates_of(table) if c not in (due, settled)]
        if len(others) == 1:
            return others[0]
        start = self._start_column(table, settled)
        return start if start != due else None

    # -- the amount of time ------------------------------------------------------------------

    def _amount_at(self, pos: int, post: Cue | None = None) -> tuple[Literal, str, int] | None:
        """ "24 hours", "two weeks", "a year", "3 or more days" (`post`: the "or more") at
        `pos`: (amount, unit, index after the unit)."""
        if pos >= len(self.tokens):
            return None
        tok = self.tokens[pos]
        amount: Literal
        if tok.kind == "number":
            try:
                value = float(tok.lemma)
            except ValueError:
                return None
            if value < 0:
                return None
            amount = int(value) if value == int(value) else value
        elif tok.lemma in ("a", "an", "one"):
            amount = 1
        else:
            return None
        unit_at = post.end if post is not None else pos + 1
        if unit_at < len(self.tokens) and self.tokens[unit_at].lemma == "-":
            unit_at += 1
        if unit_at >= len(self.tokens) or self.tokens[unit_at].lemma not in GAP_UNITS:
            return None
        unit = GAP_UNITS[self.tokens[unit_at].lemma]
        if unit in ("month", "year") and not isinstance(amount, int):
            return None  # "1.5 months": no calendar step to take
        return amount, unit, unit_at + 1

    def _end_event_before(self, pos: int) -> tuple[Token, ColumnRef] | None:
        """The event named right before an amount ("resolved within ...", "paid more than")."""
        table = self.intent.table
        for tok in reversed(self.tokens[max(0, pos - 4) : pos]):
            if tok.kind != "word" or self._names_rows(tok):
                return None
            col = self._event_date(table, tok)
            if col is not None:
                return tok, col
            if tok.lemma not in STOP_WORDS and tok.lemma not in _AUXILIARIES:
                return None
        return None

    def _names_rows(self, tok: Token) -> bool:
        """Whether a word is part of a table's name ("invoices are ...": not the event)."""
        named = {(d.start, d.end) for d in self.definitions}  # a named filter's rows: a verb
        return any(
            m.start <= tok.index < m.end and m.kind == "table" and (m.start, m.end) not in named
            for m in self.mentions
        )

    def _start_event_after(self, pos: int) -> tuple[list[Token], ColumnRef] | None:
        """The event named after "of"/"after" ("of being opened", "after signing up")."""
        table = self.intent.table
        read: list[Token] = []
        for tok in self.tokens[pos : pos + 4]:
            read.append(tok)
            col = self._event_date(table, tok)
            if col is not None:
                nxt = tok.index + 1
                if nxt < len(self.tokens) and self.tokens[nxt].lemma == "up":
                    read.append(self.tokens[nxt])
                return read, col
            if tok.kind != "word" or tok.lemma not in _AUXILIARIES:
                return None
        return None

    def _event_gaps(self) -> None:
        """ "within 24 hours of being opened", "less than four months after signing up",
        "more than two weeks late", "more than 60 days overdue"."""
        for i, tok in enumerate(self.tokens):
            if i in self.used_tokens:
                continue
            if tok.lemma in ("late", "overdue") and self._late_by(i):
                continue
            cue = next(
                (c for c in self.cues if c.kind == "cmp" and c.start == i
                 and c.payload in (">", ">=", "<", "<=")),
                None,
            )  # fmt: skip
            post = self._or_more_after(i) if cue is None else None
            if cue is None and post is None and tok.lemma not in _WITHIN:
                continue
            after = cue.end if cue is not None else i if post is not None else i + 1
            found = self._amount_at(after, post)
            if found is None:
                continue
            amount, unit, pos = found
            op = cue.payload if cue is not None else post.payload if post is not None else "<="
            if pos < len(self.tokens) and self.tokens[pos].lemma in ("late", "overdue", "past"):
                done = self._late_or_overdue(i, pos, amount, unit, op)
            elif pos < len(self.tokens) and self.tokens[pos].lemma in _GAP_LINKS:
                done = self._between_events(i, pos, amount, unit, op)
            else:
                continue
            for used in (cue, post):
                if done and used is not None:
                    self.cues.remove(used)
        self._late_without_amount()

    def _or_more_after(self, i: int) -> Cue | None:
        """ "3 or more days late": a number followed by "or more" / "or less"."""
        if self.tokens[i].kind != "number":
            return None
        return next(
            (c for c in self.cues if c.kind == "postcmp" and c.start == i + 1
             and c.payload in (">=", "<=")),
            None,
        )  # fmt: skip

    def _late_by(self, word: int) -> bool:
        """ "overdue by more than 30 days", "returned late by over a week"."""
        by = word + 1
        if by >= len(self.tokens) or self.tokens[by].lemma != "by":
            return False
        cue = next(
            (c for c in self.cues if c.kind == "cmp" and c.start == by + 1
             and c.payload in (">", ">=", "<", "<=")),
            None,
        )  # fmt: skip
        found = self._amount_at(cue.end if cue is not None else by + 1)
        if found is None:
            return False
        amount, unit, stop = found
        op = cue.payload if cue is not None else ">="
        done = self._late_or_overdue(word, word, amount, unit, op, upto=stop)
        if done and cue is not None:
            self.cues.remove(cue)
        return done

    def _late_without_amount(self) -> None:
        """ "invoices paid late": the event after its due date; "overdue invoices", "past due":
        the due date passed (today: the layer's, else the data's latest) and not settled."""
        table = self.intent.table
        for tok in self.tokens:
            if tok.index in self.used_tokens or tok.lemma not in ("late", "overdue", "due"):
                continue
            if any(d.start <= tok.index < d.end for d in self.definitions):
                continue  # the layer says what "overdue" means here
            if tok.lemma == "due" and (
                tok.index == 0 or self.tokens[tok.index - 1].lemma != "past"
            ):
                continue
            due = self._due_column(table)
            if due is None:
                return
            words = [tok] if tok.lemma != "due" else [self.tokens[tok.index - 1], tok]
            first = words[0].index
            if first > 0 and self.tokens[first - 1].lemma in GAP_UNITS:
                continue  # "days late": a duration measure (temporal.py)
            end_found = self._end_event_before(first)
            if end_found is not None and end_found[1] != due and not _starts(end_found[1]):
                verb, end = end_found
                self.intent.filters.append(Filter(Measure(end, since=due), ">", [0]))
                self.named_dates[first] = end
                self._read_span([verb, *words])
                self.note("filters", f"{end.name} after {due.name}")
                continue
            if tok.lemma == "late":
                continue  # late without the event: still open, or settled late?
            settled = self._settled_column(table, due)
            if settled is None:
                continue
            anchor = self._anchor_date(table, due, settled)
            self.intent.filters.append(Filter(due, "not recent", [0], unit="day", anchor=anchor))
            self.intent.filters.append(Filter(settled, "is null"))
            self.named_dates[first] = due
            self.named_dates[_aside(tok.index)] = settled
            self._read_span(words)
            self.note("filters", f"{due.name} passed and {settled.name} unset")

    def _between_events(self, at: int, link: int, amount: Literal, unit: str, op: str) -> bool:
        start_found = self._start_event_after(link + 1)
        end_found = self._end_event_before(at)
        if start_found is None or end_found is None:
            return False
        read, start = start_found
        verb, end = end_found
        if start == end:
            return False
        if unit in ("month", "year") and op == "<=":
            op = "<"  # "within a year": before the anniversary, a calendar day of its own
        amount, unit = _in_days(amount, unit)
        span = Measure(end, since=start, unit=unit)
        self.intent.filters.append(Filter(span, op, [amount]))
        self._read_span([verb, *self.tokens[at : link + 1], *read])
        self.named_dates[at] = end
        self.note("filters", f"{end.name} {op} {amount} {unit}(s) after {start.name}")
        return True

    def _late_or_overdue(
        self, at: int, word: int, amount: Literal, unit: str, op: str, *, upto: int = 0
    ) -> bool:
        table = self.intent.table
        due = self._due_column(table)
        if due is None:
            return False
        consumed = list(self.tokens[at : max(word + 1, upto)])
        if self.tokens[word].lemma == "past":
            if word + 1 >= len(self.tokens) or self.tokens[word + 1].lemma != "due":
                return False
            consumed.append(self.tokens[word + 1])
        end_found = self._end_event_before(at)
        if end_found is not None and end_found[1] != due and not _starts(end_found[1]):
            verb, end = end_found  # "paid more than two weeks late": the event vs its due date
            amount, unit = _in_days(amount, unit)
            self.named_dates[at] = end
            self.intent.filters.append(Filter(Measure(end, since=due, unit=unit), op, [amount]))
            self._read_span([verb, *consumed])
            self.note("filters", f"{end.name} {op} {amount} {unit}(s) after {due.name}")
            return True
        if (
            self.tokens[word].lemma == "late"
            or op not in (">", ">=")
            or not isinstance(amount, int)
        ):
            return False  # "more than a week late" without the event: settled late, or open?
        if unit in ("hour", "minute"):
            return False  # due dates are days: "36 hours overdue" is not read
        settled = self._settled_column(table, due)
        if settled is None:
            return False
        # "more than 60 days overdue": due further back than the amount, still not settled
        anchor = self._anchor_date(table, due, settled)
        self.intent.filters.append(Filter(due, "not recent", [amount], unit=unit, anchor=anchor))
        self.intent.filters.append(Filter(settled, "is null"))
        self.named_dates[at] = due
        self.named_dates[_aside(word)] = settled
        self._read_span(consumed)
        self.note("filters", f"{due.name} over {amount} {unit}(s) ago and {settled.name} unset")
        return True

    def _read_span(self, tokens: list[Token]) -> None:
        for t in tokens:
            self._use_token(t)
        spots = {t.index for t in tokens}
        for d in [d for d in self.definitions if spots & set(range(d.start, d.end))]:
            # "signing up" inside "less than four months after signing up" is an event of the
            # span, not the layer's sign-ups measure (a named filter, "paid late", "overdue",
            # still holds: the span only narrows it)
            if d.definition.kind == "measure":
                self.definitions.remove(d)
        for k, m in enumerate(self.mentions):
            if any(m.start <= s < m.end for s in spots):
                m.kind = "spent"  # read as part of the time span, not as a link
                self._use(k)

    # -- a day inside a validity interval ----------------------------------------------------

    def _valid_on_day(self) -> None:
        """ "accounts with an active subscription on 31 December 2023": the rows whose
        interval (start date, end date or none yet) covers the day."""
        for cue in list(self.cues):
            if cue.kind != "day":
                continue
            state = next(
                (t for t in reversed(self.tokens[max(0, cue.start - 4) : cue.start])
                 if t.lemma in _STATE_WORDS),
                None,
            )  # fmt: skip
            if state is None:
                continue
            named = next(
                (d for d in self.definitions
                 if d.definition.kind == "filter" and d.start <= state.index < d.end),
                None,
            )  # fmt: skip  # "active subscription" a named filter: running today, not that day
            table = (
                named.definition.table if named else self._interval_table(state.index, cue.start)
            )
            if table is None or table.lower() not in self.index.tables:
                continue
            span = range(named.start, named.end) if named is not None else range(0)
            between = [t for t in self.tokens[state.index + 1 : cue.start] if t.index not in span]
            if not all(t.lemma in _BETWEEN_STATE_AND_DAY or self._names_rows(t) for t in between):
                continue  # "active customers who ordered on 1 March": the day is the order's
            bounds = self._interval_bounds(table)
            if bounds is None:
                continue
            if named is not None:
                self.definitions.remove(named)
                self._read_span(list(self.tokens[named.start : named.end]))
            start, end = bounds
            first, after = cue.payload.split("|")
            self.cues.remove(cue)
            self.intent.filters.append(Filter(start, "valid on", [first, after], until=end))
            self.named_dates[cue.start] = start
            self.named_dates[_aside(cue.start)] = end
            self._read_span([state, *self.tokens[cue.start : cue.end]])
            self._at_least_one_before(state.index, table)
            self.note("filters", f"{start.name} on or before {first}, {end.name} unset or later")

    def _at_least_one_before(self, state: int, table: str) -> None:
        """ "accounts with at least one active subscription on ...": having one such row is the
        join to it, not a count of them per account."""
        one = state - 1
        if one < 0 or self.tokens[one].kind != "number" or self.tokens[one].lemma != "1":
            return
        cue = next(
            (c for c in self.cues if c.kind == "cmp" and c.payload == ">=" and c.end == one), None
        )
        if cue is None or table.lower() == self.intent.table.lower():
            return
        self.cues.remove(cue)
        self._read_span(list(self.tokens[cue.start : one + 1]))

    def _interval_table(self, state: int, day: int) -> str | None:
        """The table whose rows the state word qualifies: named between it and the day, else
        the focus table."""
        for m in self.mentions:
            if state <= m.start < day and m.kind == "table" and m.tables:
                return m.tables[0].name
        return self.intent.table or None

    def _interval_bounds(self, table: str) -> tuple[ColumnRef, ColumnRef] | None:
        dates = self._dates_of(table)
        ends = [c for c in dates if c.nullable and set(c.words) & (_END_WORDS | _lost_words())]
        starts = [c for c in dates if set(c.words) & (_VALID_FROM_WORDS | START_WORDS)]
        if len(ends) != 1:
            return None
        if len(starts) != 1:
            starts = [c for c in dates if c != ends[0] and set(c.words) & CREATION_WORDS]
        if len(starts) != 1 or starts[0] == ends[0]:
            return None
        return starts[0], ends[0]

    # -- ratings and scales ------------------------------------------------------------------

    def _rating_scales(self) -> None:
        """ "rated 1 star", "a rating below 3", "on the 1-5 survey", "on a scale of 1 to 5"."""
        for tok in self.tokens:
            if tok.kind != "number" or tok.index in self.used_tokens:
                continue
            if self._scale_at(tok.index):
                continue
            self._rating_value(tok)

    def _scale_at(self, i: int) -> bool:
        """A scale written out ("1-5", "1 to 5", "out of 5") next to a word for a scale: only
        a description of the rating, read and set aside."""
        toks = self.tokens
        end = None
        if i + 1 < len(toks) and toks[i + 1].kind == "number" and toks[i + 1].text.startswith("-"):
            end = i + 2
        elif (
            i + 2 < len(toks) and toks[i + 1].lemma in ("to", "-") and toks[i + 2].kind == "number"
        ):
            end = i + 3
        begin = i
        if end is None:
            if i >= 2 and toks[i - 1].lemma == "of" and toks[i - 2].lemma == "out":
                begin, end = i - 2, i + 1  # "out of 5"
            else:
                return False
        near = [t.lemma for t in toks[max(0, begin - 3) : end + 2]]
        if not set(near) & _SCALE_NOUNS:
            return False
        lead = begin
        while lead > 0 and toks[lead - 1].lemma in ("on", "the", "a", "an", "of", "scale"):
            lead -= 1
        stop = end
        while stop < len(toks) and toks[stop].lemma in ("point", "scale", "survey", "star"):
            stop += 1
        self._read_span(list(toks[lead:stop]))
        return True

    def _rating_value(self, tok: Token) -> None:
        toks = self.tokens
        nxt = toks[tok.index + 1].lemma if tok.index + 1 < len(toks) else ""
        if nxt == "-" and tok.index + 2 < len(toks):
            nxt = toks[tok.index + 2].lemma
        before = [t for t in toks[max(0, tok.index - 3) : tok.index] if t.kind == "word"]
        starred = nxt in ("star", "stars")
        rated = any(t.lemma in _RATED_VERBS for t in before)
        if not starred and not rated:
            return
        col = self._rating_column(tok.index)
        if col is None:
            return
        denied = any(c.kind == "neg" and c.end <= tok.index for c in self.cues)
        if denied and col.table.lower() != self.intent.table.lower():
            return  # "never had a ticket rated 1 star": the related rows' condition, not read here
        cue: Cue | None = next(
            (c for c in self.cues if c.kind == "cmp" and c.end == tok.index), None
        )
        op = "="
        consumed = [tok]
        if cue is not None and cue.payload not in (">", ">=", "<", "<=", "=", "!="):
            return  # "rated between 2 and 4": read by the comparisons
        if cue is not None:
            op = cue.payload
            self.cues.remove(cue)
            consumed += toks[cue.start : cue.end]
        after = tok.index + 1
        if starred:
            stars = [t for t in toks[after : after + 2] if t.lemma in ("-", "star", "stars")]
            consumed += stars
            after += len(stars)
        tail = [t.lemma for t in toks[after : after + 2]]
        if tail[:1] and tail[0] in ("or", "and", "to", "through", "-", "+"):
            bound = _OPEN_ENDS.get((tail[0], tail[1])) if len(tail) == 2 else None
            if bound is None or cue is not None:
                if cue is not None:
                    self.cues.append(cue)
                return  # "rated 4 or 5", "1 to 3 stars": not one value; left to the others
            op = bound
            consumed += toks[after : after + 2]
            self.cues = [c for c in self.cues if not (c.kind == "postcmp" and c.start == after)]
        consumed += [t for t in before if t.lemma in _RATED_VERBS or t.lemma in ("of", "with")]
        value: Literal = self._literal_value(tok)
        self.intent.filters.append(Filter(col, op, [value]))
        self._read_span(consumed)
        self.note("filters", f"{col.name} {op} {tok.text}")

    def _rating_column(self, pos: int) -> ColumnRef | None:
        """The one numeric rating column among the tables named before `pos` and the focus
        table, the nearest named table first."""
        named = [
            m.tables[0].name for m in reversed(self.mentions)
            if m.kind == "table" and m.tables and m.start < pos
        ]  # fmt: skip
        for table in dict.fromkeys([*named, self.intent.table]):
            hits = [
                c for c in self.index.columns_of.get(table.lower(), [])
                if c.kind == "numeric" and not c.is_primary_key and _score_words(c) & _SCORE_WORDS
            ]  # fmt: skip
            if len(hits) == 1:
                return hits[0]
            if hits:
                return None
        return None


def _score_words(col: ColumnRef) -> set[str]:
    words = set(col.words)
    for w in col.words:
        words.update(ACRONYMS.get(w, "").split())
    return words


def _aside(pos: int) -> int:
    """A key of `named_dates` for a second date one word names (no span starts there)."""
    return -1 - pos


def _in_days(amount: Literal, unit: str) -> tuple[Literal, str]:
    """Weeks as days: "more than two weeks late" compares whole days with 14."""
    if unit == "week" and isinstance(amount, int | float):
        return amount * 7, "day"
    return amount, unit


def _starts(col: ColumnRef) -> bool:
    return bool(set(col.words) & (START_WORDS | CREATION_WORDS))


def _lost_words() -> frozenset[str]:
    return EVENT_WORDS.get("lose", frozenset())
