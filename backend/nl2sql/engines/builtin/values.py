"""Values: linked stored values, quoted strings, numbers, years, names, patterns ("starts
with"), and yes/no flags ("discontinued")."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import PLACE_WORDS, Cue, opposite_by_prefix
from backend.nl2sql.engines.builtin.indexed_values import IndexedValueReading
from backend.nl2sql.engines.builtin.intents import AntiJoin, Filter, Literal, Measure
from backend.nl2sql.engines.builtin.lexicon import MONTHS, STOP_WORDS, Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, Mention
from backend.nl2sql.engines.builtin.reading import is_filler, is_flag, month_range

_ELSEWHERE = frozenset({"at", "to", "with"})
"""Words between rows and a name that put the name on another row ("a contact at Acme")."""


class ValueReading(IndexedValueReading):
    """Passes: value mentions, leftover literals, pattern words and flag columns."""

    def _values(self) -> None:
        for k, m in enumerate(self.mentions):
            if (
                m.kind == "column"
                and k not in self.used
                and m.start > 0
                and self.tokens[m.start - 1].lemma in ("by", "via", "through", "over")
            ):
                self._value_of_focus(k)  # "repairs reported by phone": the channel, not a column
        pending: list[tuple[int, Filter]] = []
        for k, m in enumerate(self.mentions):
            if m.kind != "value" or k in self.used:
                continue
            like = next(
                (
                    c
                    for c in self.cues
                    if c.kind == "like" and c.end <= m.start and self.gap(c.end, m.start) == 0
                ),
                None,
            )
            col: ColumnRef | None = None
            adjacent = [
                j
                for j in (k - 1, k + 1)
                if 0 <= j < len(self.mentions)
                and j not in self.used
                and self.mentions[j].kind == "column"
                and self.gap(min(m.end, self.mentions[j].end), max(m.start, self.mentions[j].start))
                == 0
                and (
                    set(self.mentions[j].columns) & set(m.columns)
                    or self._describes_value_column(self.mentions[j], m)
                )
            ]
            previous = pending[-1][1] if pending else None
            joined_to_previous = (
                previous is not None
                and isinstance(previous.column, ColumnRef)
                and previous.column in m.columns
                and k > 0
                and self.mentions[k - 1].kind == "value"
                and all(
                    t.kind == "punct" or t.lemma in ("or", "and")
                    for t in self.tokens[self.mentions[k - 1].end : m.start]
                )
            )
            if (
                joined_to_previous
                and previous is not None
                and isinstance(previous.column, ColumnRef)
            ):
                col = previous.column
            elif adjacent and like is None:
                shared = [c for c in self.mentions[adjacent[0]].columns if c in m.columns]
                col = shared[0] if shared else self.column_of(k)
                self._use(adjacent[0])
            elif m.columns and like is None:
                col = self.column_of(k)
            else:
                col = self._column_for_literal(m.start)
            if col is None and like is None and not m.columns and m.pattern is None:
                indexed = self.indexed_filters((m.value or m.text).strip("'\""), m.start, m.end)
                if indexed is not None:  # "flights of 'Air Comet'": a value the index holds
                    self._use(k)
                    pending.extend((m.start, f) for f in indexed)
                    continue
                unseen = self._unseen_name(m.start, (m.value or m.text).strip("'\""))
                if unseen is not None:  # "tickets of 'Harbor Homes'": a name never sampled
                    self._use(k)
                    self.intent.filters.extend(unseen)
                    continue
            if col is None:
                raise self.decline(f"could not tell which column '{m.text}' belongs to")
            self._use(k)
            value = m.value or m.text
            if like is not None:
                pattern = {"contains": f"%{value}%", "starts": f"{value}%", "ends": f"%{value}"}
                op = "not like" if self._negated_before(like.start) else "like"
                pending.append((m.start, Filter(col, op, [pattern[like.payload]])))
            elif m.pattern is not None:  # h-lexical hook: a value written as part of one
                pending.append((m.start, Filter(col, "like", [m.pattern])))
            else:
                pending.append((m.start, Filter(col, "=", [value])))
            self.note("values", f"{col.name} = {value}")
        merged: list[Filter] = []
        first_at: dict[int, int] = {}
        compared: list[tuple[int, Filter]] = []
        for pos, flt in pending:
            same = next(
                (
                    f
                    for f in merged
                    if f.column == flt.column and f.op in ("=", "in") and flt.op == "="
                ),
                None,
            )
            if same is not None:
                if flt.values[0] not in same.values:
                    same.op = "in"
                    same.values.extend(flt.values)
                    if self._compares_values(first_at[id(same)], pos):
                        compared.append((first_at[id(same)], same))
            else:
                merged.append(flt)
                first_at[id(flt)] = pos
        self.intent.filters.extend(merged)
        for pos, flt in {id(f): (p, f) for p, f in compared}.values():
            if isinstance(flt.column, ColumnRef):
                # "the average age of male and female students": one figure for each value
                self._asks_breakdown()
                self.group_keys.append((pos, Measure(flt.column)))
                self.projection.append((pos, Measure(flt.column)))
                self.note("grouping", flt.column.name)

    def _asks_breakdown(self) -> None:
        """Note that the question asked for a figure per value ("versus", "and"), as a
        grouping cue of no width at the end, so the evidence knows the breakdown was asked
        for without reading any word twice."""
        end = len(self.tokens)
        if not any(c.payload == "compare" for c in self.cues):
            self.cues.append(Cue("group", end, end, "compare"))

    def _compares_values(self, first: int, pos: int) -> bool:
        """Whether values of one column joined by "and"/"versus" ask for a figure each: the
        question aggregates and does not say "both" or "either ... or"."""
        between = {t.lemma for t in self.tokens[first:pos] if t.kind == "word"}
        if "or" in between or not between & {"and", "versus", "vs", "v"}:
            return False
        if any(c.kind == "both" for c in self.cues):
            return False
        if any(c.kind == "share" for c in self.cues) and not between & {"versus", "vs", "v"}:
            return False  # "the share of sales from South and Coast customers": one part
        return bool(self.measures) or any(c.kind == "count" for c in self.cues)

    def _describes_value_column(self, column_mention: Mention, value: Mention) -> bool:
        """ "king bed" for a value of `bedType`: the noun right after names the value's column."""
        if column_mention.start != value.end or not self._counting_words():
            return False
        words = {t.lemma for t in self.tokens[column_mention.start : column_mention.end]}
        return any(words & set(c.words) for c in value.columns)

    def _column_for_literal(self, pos: int) -> ColumnRef | None:
        """The column a value without a stored sample belongs to: named just before it."""
        named = any(c.kind == "named" and c.end <= pos and pos - c.end <= 1 for c in self.cues)
        k = self.mention_before(pos, max_gap=0)
        if k is not None:
            m = self.mentions[k]
            if m.kind == "column":
                col = self.column_of(k)
                if col is not None and col.kind == "text":
                    self._use(k)
                    return col
            if m.kind == "table":
                labels = self.index.label_columns(self.table_of(k) or "")
                if labels:
                    return labels[0]
        own = self._own_column_before_like(pos)
        if own is not None:
            return own
        if named:
            k = self.mention_before(pos, max_gap=2, kinds=("table",))
            table = (self.table_of(k) if k is not None else None) or self.intent.table
            labels = self.index.label_columns(table)
            if labels:
                return labels[0]
        return None

    def _own_column_before_like(self, pos: int) -> ColumnRef | None:
        """ "airports whose name contains 'International'": a word the linker left alone
        (one many tables' columns share) between a table and "contains" / "starts with" names
        that table's own text column of that name."""
        like = next(
            (
                c
                for c in self.cues
                if c.kind == "like" and c.end <= pos and self.gap(c.end, pos) == 0
            ),
            None,
        )
        if like is None or like.start < 1:
            return None
        word = self.tokens[like.start - 1]
        if word.kind != "word" or word.index in self.used_tokens or self.is_cue(word.index):
            return None
        k = next(
            (
                j
                for j, m in enumerate(self.mentions)
                if m.kind == "table" and m.end <= word.index and self.gap(m.end, word.index) == 0
            ),
            None,
        )  # (the table may be the focus already: its mention is then spent)
        table = self.table_of(k) if k is not None else None
        if table is None:
            return None
        own = [
            c
            for c in self.index.columns_of[table.lower()]
            if c.kind == "text" and c.words[-1:] == (word.lemma,)
        ]
        if len(own) != 1:
            return None
        self._use_token(word)
        return own[0]

    def _leftover_literals(self) -> None:
        for tok in self.tokens:
            if tok.index in self.used_tokens or self.is_cue(tok.index):
                continue
            if tok.kind == "quoted":
                continue
            prev_filter = self.intent.filters[-1] if self.intent.filters else None
            if (
                tok.kind == "number"
                and prev_filter is not None
                and prev_filter.op in ("=", "in")
                and tok.index >= 2
                and self.tokens[tok.index - 1].lemma in ("or", "and")
                and self.tokens[tok.index - 2].kind == "number"
                and self.tokens[tok.index - 2].index in self.used_tokens
                and all(isinstance(v, int | float) for v in prev_filter.values)
            ):
                prev_filter.op = "in"
                prev_filter.values.append(self._literal_value(tok))
                self._use_token(tok)
                continue
            if tok.kind == "number" and tok.text.lower() == "one":
                # "the youngest one": a pronoun, unless a comparison or a column claimed it
                continue
            if tok.kind == "number":
                value = self._literal_value(tok)
                k = self.mention_before(tok.index, max_gap=0, kinds=("column",))
                prev = self.tokens[tok.index - 1] if tok.index > 0 else None
                year_like = (
                    isinstance(value, int)
                    and 1800 <= value <= 2200
                    and prev is not None
                    and prev.lemma in ("in", "during", "for", "of", "from")
                )
                if k is not None and year_like:
                    col = self.column_of(k)
                    if col is None or "year" not in col.words:
                        k = None
                if k is not None:
                    col = self.column_of(k)
                    if col is not None:
                        self._use(k)
                        self._use_token(tok)
                        self.intent.filters.append(Filter(col, "=", [value]))
                        self.note("filters", f"{col.name} = {value}")
                        continue
                if isinstance(value, int) and 1800 <= value <= 2200:
                    col = self.year_column([t for _, m in self.measures for t in m.tables])
                    if col is not None:
                        self.intent.filters.append(Filter(col, "=", [value]))
                    else:
                        date = self._date_target(tok.index)
                        if date is None:
                            raise self.decline(f"no date column for the year {value}")
                        month = self._month_before(tok)
                        if month is not None:
                            # "in February 2024": that month, not the whole year
                            self._use_token(self.tokens[tok.index - 1])
                            start, end = month_range(value, month)
                            self.intent.filters.append(Filter(date, ">=", [start]))
                            self.intent.filters.append(Filter(date, "<", [end]))
                            self._use_token(tok)
                            self.note("filters", f"month {start[:7]}")
                            continue
                        self.intent.filters.append(Filter(date, ">=", [f"{value:04d}-01-01"]))
                        self.intent.filters.append(Filter(date, "<", [f"{value + 1:04d}-01-01"]))
                    self._use_token(tok)
                    self.note("filters", f"year {value}")
                    continue
                k = self.mention_before(tok.index, max_gap=0, kinds=("table",))
                col = self._column_for_table_number(k) if k is not None else None
                if col is not None:
                    self._use_token(tok)
                    self.intent.filters.append(Filter(col, "=", [value]))
                    self.note("filters", f"{col.name} = {value}")
                    continue
                raise self.decline(f"could not tell what the number {tok.text} refers to")
            if tok.kind == "date":
                k = self.mention_before(tok.index, max_gap=1, kinds=("column",))
                col = self.column_of(k) if k is not None else self.date_column([])
                if col is None:
                    raise self.decline(f"could not tell which column the date {tok.text} is for")
                if k is not None:
                    self._use(k)
                self.intent.filters.append(Filter(col, "=", [tok.text]))
                self._use_token(tok)
        self._like_words()
        pos = 1
        previous: tuple[Token, Filter] | None = None
        while pos < len(self.tokens):
            run: list[Token] = []
            while pos < len(self.tokens) and (
                self._is_unknown_name(self.tokens[pos])
                or (run and self._continues_name(self.tokens[pos]))
            ):
                run.append(self.tokens[pos])
                pos += 1
            while run and not self._is_unknown_name(run[-1]):
                pos -= 1
                run.pop()
            if not run:
                pos += 1
                continue
            nxt = self.tokens[pos] if pos < len(self.tokens) else None
            if (
                nxt is not None
                and nxt.is_capitalised
                and any(
                    m.kind == "table" and m.start == pos and m.end == pos + 1 for m in self.mentions
                )
            ):
                # "John F Kennedy International Airport": a capitalised table word ends a name
                run.append(nxt)
                pos += 1
            if previous is not None and all(
                t.kind == "punct" or t.lemma in ("or", "and")
                for t in self.tokens[previous[0].index + 1 : run[0].index]
            ):
                # "in Cuba or Argentina": the same column as the name before
                flt = previous[1]
                flt.op = "in"
                flt.values.append(" ".join(t.text for t in run))
                for t in run:
                    self._use_token(t)
                previous = (run[-1], flt)
                continue
            like = next(
                (
                    c for c in self.cues
                    if c.kind == "like" and c.end <= run[0].index
                    and all(is_filler(t) for t in self.tokens[c.end : run[0].index])
                ),
                None,
            )  # fmt: skip
            if like is None and len(run) >= 2 and self.intent.table:
                by_verb = self._place_by_verb(self.intent.table, run[0].index, run[-1].index + 1)
                if by_verb is not None:  # "the accounts that Aisha Adams manages"
                    named = self._compare_name(by_verb, self.name_text(run[0].index, pos))
                    if named:
                        for t in run:
                            self._use_token(t)
                        self.intent.filters.extend(named)
                        previous = None
                        continue
            if like is None and len(run) >= 2 and self._rows_of_a_name(run[0].index):
                # "the contact of Harbor Homes": a contact belongs to Harbor Homes, it is not
                # one (read as first name 'Harbor', last name 'Homes' it was a wrong answer)
                attached = self._attached_name(
                    run[0].index, self.name_text(run[0].index, run[-1].index + 1)
                )
                if attached is not None:
                    for t in run:
                        self._use_token(t)
                    self.intent.filters.extend(attached)
                    previous = None
                    continue
            col = self._label_next_to(run[0].index, run[-1].index + 1)
            used_before = set(self.used)
            elsewhere = (
                like is None and len(run) >= 2 and self.tokens[run[0].index - 1].lemma in _ELSEWHERE
            )  # "the primary contact at Harbor Homes": a row of another table
            if elsewhere:
                col = None
            elif col is None or like is not None:
                anchor = like.start if like is not None else run[0].index
                col = self._column_for_literal(anchor) or col
                before = self.tokens[run[0].index - 1].lemma
                if like is None and before in ("in", "from") and col is not None:
                    col = self._place_column(col.table)
            text = self.name_text(run[0].index, run[-1].index + 1)  # "O'Neil", not "O Neil"
            if like is None:
                first = run[0].index
                stop = self.indexed_end(first, run[-1].index + 1)
                placed, self.used = self.used, used_before  # (read with col not yet placed)
                indexed = self.indexed_filters(self.name_text(first, stop), first, stop, col)
                if indexed is None and len(run) == 1:
                    indexed = self.demonym_filters(first, col)  # "Bangladeshi artists"
                if indexed is None or any(f.column == col for f in indexed):
                    self.used |= placed  # else "which town does Ada Quist live in": town asked
                if indexed is not None:  # "airports in Cuba": a value the index holds
                    for t in self.tokens[first:stop]:
                        self._use_token(t)
                    pos = max(pos, stop)
                    self.intent.filters.extend(indexed)
                    last = self.tokens[stop - 1]
                    previous = (last, indexed[0]) if len(indexed) == 1 else None
                    continue
            if col is None and like is None:
                stop = run[-1].index + 1
                name = self.name_text(run[0].index, stop)
                unseen = self._unseen_name(run[0].index, name, end=stop)
                if unseen is not None:
                    for t in run:
                        self._use_token(t)
                    self.intent.filters.extend(unseen)
                    previous = None
                    continue
            if col is None:
                raise self.decline(f"did not recognise '{run[0].text}' in this database")
            for t in run:
                self._use_token(t)
            if like is not None:
                pattern = {"contains": f"%{text}%", "starts": f"{text}%", "ends": f"%{text}"}
                op = "not like" if self._negated_before(like.start) else "like"
                flt = Filter(col, op, [pattern[like.payload]])
            else:
                flt = Filter(col, "=", [text])
            split = self._split_person_name(col, text) if like is None else None
            if split is not None:
                self.intent.filters.extend(split)  # "written by Lena Varga": first and last
                previous = None
                continue
            self.intent.filters.append(flt)
            previous = (run[-1], flt)
            self.note("values", f"{col.name} = {text}")

    def _both(self) -> None:
        """ "customers who use both Slack and Jira", "accounts with tickets in both the billing
        and the outage categories": a related row for each value, not one row with both."""
        cue = next((c for c in self.cues if c.kind == "both"), None)
        if cue is None:
            return
        listed = [
            f
            for f in self.intent.filters
            if isinstance(f.column, ColumnRef) and f.op == "in" and len(f.values) >= 2
        ]
        if len(listed) != 1:
            raise self.decline("could not tell which values 'both' refers to")
        flt = listed[0]
        col = flt.column
        if not isinstance(col, ColumnRef):
            raise self.decline("could not tell which values 'both' refers to")
        focus = self.intent.table
        path = (
            self.index.join_path(focus, col.table) if col.table.lower() != focus.lower() else None
        )
        if not path:
            raise self.decline("a row has one value of a column, never both")
        self.intent.filters.remove(flt)
        on_path = {step[2].lower() for step in path}
        inside = [
            c for c in self.intent.conditions
            if c.tables and all(t.lower() in on_path for t in c.tables)
        ]  # fmt: skip
        for c in inside:
            self.intent.conditions.remove(c)  # "use" = enabled: true of each related row
        for value in flt.values:
            semi = AntiJoin(col.table, [Filter(col, "=", [value])], exists=True)
            semi.conditions = [c.sql for c in inside]
            self.intent.anti_joins.append(semi)
        for k, m in enumerate(self.mentions):
            if m.kind == "table" and any(t.name.lower() in on_path for t in m.tables):
                self._use(k)  # "the Slack and Jira integrations": inside the subqueries
        self.used_tokens.update(range(cue.start, cue.end))
        self.note("both", f"{col.name} = each of {flt.values}")

    def _negated_before(self, pos: int) -> bool:
        """ "without the letter M", "not containing": a negation right before a pattern."""
        return any(
            c.kind == "neg" and c.end <= pos and pos - c.end <= 2
            and all(is_filler(t) for t in self.tokens[c.end : pos])
            for c in self.cues
        )  # fmt: skip

    def _place_column(self, table: str) -> ColumnRef | None:
        """ "airports in Cuba": the table's one place-like column, if it has exactly one."""
        places = [
            c
            for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "text" and set(c.words) & PLACE_WORDS
        ]
        return places[0] if len(places) == 1 else None

    def _like_words(self) -> None:
        """ "names that end with the letter m": an unquoted word after a pattern cue."""
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        for cue in self.cues:
            if cue.kind != "like":
                continue
            pos = cue.end
            names_a_letter = any(t.lemma == "letter" for t in self.tokens[cue.start : cue.end])
            while not names_a_letter and pos < len(self.tokens) and is_filler(self.tokens[pos]):
                pos += 1
            if pos >= len(self.tokens):
                continue
            tok = self.tokens[pos]
            if tok.kind != "word" or tok.index in covered or tok.index in self.used_tokens:
                continue
            if (tok.is_capitalised and not names_a_letter) or self.is_cue(tok.index):
                continue
            after = self.mention_after(tok.index + 1, max_gap=0, kinds=("column",))
            col = self.column_of(after) if after is not None else None
            if after is not None and col is not None and col.kind == "text":
                self._use(after)  # "the letter a in their last name"
            else:
                col = self._column_for_literal(cue.start)
            if col is None:
                continue
            self._use_token(tok)
            text = tok.text
            pattern = {"contains": f"%{text}%", "starts": f"{text}%", "ends": f"%{text}"}
            op = "not like" if self._negated_before(cue.start) else "like"
            self.intent.filters.append(Filter(col, op, [pattern[cue.payload]]))
            self.note("values", f"{col.name} like {pattern[cue.payload]}")

    def _column_for_table_number(self, k: int) -> ColumnRef | None:
        """ "room 112": a column named like the table in the focus, else the table's key."""
        table = self.table_of(k)
        if table is None:
            return None
        words = self.index.table(table).words
        for col in self.index.columns_of[self.intent.table.lower()]:
            if col.words == words:
                return col
        for other, own_col, _ in self.index.edges.get(self.intent.table.lower(), []):
            if other.lower() == table.lower():
                fk = self.index.column(self.intent.table, own_col)
                if fk is not None and fk.kind == "numeric" and not fk.is_primary_key:
                    self._use(k)
                    return fk
        pk = self.index.table(table).primary_key
        if pk is not None and pk.kind == "numeric":
            self._use(k)
            return pk
        return None

    def _continues_name(self, tok: Token) -> bool:
        """Capitalised small words inside a name ("Computer Information Systems")."""
        return (
            tok.is_capitalised
            and tok.index not in self.used_tokens
            and not any(m.start <= tok.index < m.end for m in self.mentions)
        )

    def _is_unknown_name(self, tok: Token) -> bool:
        return (
            tok.is_capitalised
            and tok.index not in self.used_tokens
            and not self.is_cue(tok.index)
            and not any(m.start <= tok.index < m.end for m in self.mentions)
            and tok.lemma not in STOP_WORDS
            and tok.lemma not in MONTHS
        )

    def _rows_of_a_name(self, start: int) -> bool:
        """ "the contact of <name>", "the invoices for <name>": rows named right before "of" or
        "for" belong to the name's row, which is a row of another table (the rows' own names
        follow their table without a preposition: "course Mobile Computing")."""
        if start < 2 or self.tokens[start - 1].lemma not in ("of", "for"):
            return False
        k = self.mention_before(start - 1, max_gap=0, kinds=("table",))
        return k is not None and self.table_of(k) is not None

    def _label_next_to(self, start: int, end: int) -> ColumnRef | None:
        """ "the Art department", "course Mobile Computing": a name beside its table."""
        for k, m in enumerate(self.mentions):
            if m.kind != "table":
                continue
            if m.start == end or m.end == start:
                labels = self.index.label_columns(self.table_of(k) or "")
                if len(labels) == 1:
                    return labels[0]
        return None

    def _flag_against_its_opposite(self, k: int, col: ColumnRef) -> bool:
        """ "escalated versus non-escalated tickets", "remote and non-remote staff": a
        figure for each side of the flag, grouped by it."""
        m = self.mentions[k]
        for j in range(k + 1, len(self.mentions)):
            other = self.mentions[j]
            if j in self.used or other.columns != m.columns:
                continue
            between = [t.lemma for t in self.tokens[m.end : other.start] if t.kind == "word"]
            if not between or between[-1] not in ("non", "not", "un"):
                return False
            if not set(between[:-1]) & {"versus", "vs", "v", "and", "or", "against"}:
                return False
            self._use(k)
            self._use(j)
            self.used_tokens.update(range(m.end, other.start))
            self._asks_breakdown()
            self.group_keys.append((m.start, Measure(col)))
            self.projection.append((m.start, Measure(col)))
            self.note("grouping", col.name)
            return True
        return False

    def _states_a_flag(self, pos: int) -> bool:
        """ "contacts who have opted in", "managers that work remotely": the flag's word is
        said of the rows (after a relative or auxiliary word, or a verb of their own), not
        asked for or broken down by ("by escalated", "whether it is premium")."""
        before = [t for t in self.tokens[:pos] if t.kind == "word"]
        if not before:
            return False
        prev = before[-1]
        if prev.lemma in ("have", "has", "had", "who", "that", "which", "do", "does", "did"):
            return True
        if prev.lemma in STOP_WORDS or prev.index in self.used_tokens or self.is_cue(prev.index):
            return False
        linked = any(mm.start <= prev.index < mm.end for mm in self.mentions)
        subject = any(
            mm.end <= prev.index and mm.kind in ("table", "value") for mm in self.mentions
        )
        return not linked and subject

    def _names_the_flag(self, pos: int, col: ColumnRef) -> bool:
        """ "the primary contact", "remote staff", "legacy plans": the word is the flag's own
        name after its `is_`/`has_` prefix (`is_primary`), said of the rows as an adjective."""
        words = col.words
        return (
            len(words) == 2
            and words[0] in ("is", "has")
            and self.tokens[pos].lemma == words[1]
            and self.tokens[pos].text.lower() == words[1]
        )

    def _flag_columns(self) -> None:
        """ "products that are discontinued": a yes/no column after "is/are" is a filter."""
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or m.start == 0:
                continue
            col = self.column_of(k)
            if col is None or not is_flag(col):
                continue
            if self._flag_against_its_opposite(k, col):
                continue
            said = [t.lemma for t in self.tokens[m.start : m.end]]
            opposite = opposite_by_prefix(said, col.words)
            before = [t for t in self.tokens[: m.start] if t.kind == "word"][-2:]
            lemmas = [t.lemma for t in before]
            describes_rows = any(
                o.kind == "table" and o.start == m.end and self.table_of(j) == col.table
                for j, o in enumerate(self.mentions)
            )  # "cancelled appointments", "premium integrations": rows that are so
            if (
                describes_rows
                and m.end - m.start == 1
                and (
                    self.tokens[m.start].lemma.endswith("ed")
                    or opposite
                    or self._names_the_flag(m.start, col)
                )
            ):  # ("available rooms" read against `unavailable`: rooms that are not)
                lemmas = [*lemmas, "is"]
            if not lemmas:
                continue
            if lemmas[-1] not in ("is", "are", "was", "were", "be", "not", "never") and not (
                self._states_a_flag(m.start)
            ):
                if opposite:
                    # "room types available" linked to `unavailable`: the word names the
                    # flag's opposite; shown or grouped by, it would answer the reverse
                    self._use(k)
                continue
            negated = ("not" in lemmas or "never" in lemmas) != opposite
            self._use(k)
            for j, other in enumerate(self.mentions):
                if j not in self.used and other.kind == "column" and other.columns == [col]:
                    self._use(j)  # "opted in to marketing": one flag named by two words
            value: Literal = 0 if negated else 1
            self.intent.filters.append(Filter(col, "=", [value]))
            self.note("filters", f"{col.name} = {'no' if negated else 'yes'}")
