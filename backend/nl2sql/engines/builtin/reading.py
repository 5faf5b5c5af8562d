"""The state of one question's reading, and the helpers every pass of the interpretation uses.

The interpretation (`interpret.py`) reads a question in passes, one stage module each, in this
order: the semantic layer's named measures and filters (`definitions.py`), time words
(`temporal.py`), comparisons (`comparisons.py`), counts, aggregates and
rankings (`measures.py`), grouping and ordering (`grouping.py`), negation and NULL meaning
(`negation.py`), values and literals (`values.py`), then the assembly of the `Intent`
(`assembly.py`) with the evidence its confidence rests on (`signals.py`). Each stage is a class
that extends the one before it, so a pass may use what earlier stages define; `Reading` is
the root: the tokens, cues and linked mentions of the question, and what has been decided.
"""

from __future__ import annotations

from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.cues import Cue, scan_cues
from backend.nl2sql.engines.builtin.definition_links import (
    rows_in_role,
    stored_value_over_role_synonym,
)
from backend.nl2sql.engines.builtin.intents import Intent, Literal, Measure
from backend.nl2sql.engines.builtin.lexicon import MONTHS, STOP_WORDS, Token, tokenise
from backend.nl2sql.engines.builtin.linking import (
    ColumnRef,
    Mention,
    SchemaIndex,
    link,
    link_definitions,
)


class Reading:
    """Tokens, cues and schema mentions of one question, and the slots filled so far."""

    def __init__(self, question: str, index: SchemaIndex, refinement_from: list[int]) -> None:
        self.question = question
        self.index = index
        self.tokens = tokenise(question)
        self.cues, skip = scan_cues(self.tokens, index)
        self.definitions = link_definitions(index, self.tokens)
        """Spans naming the semantic layer's measures and filters: they win over cue words
        and over schema links inside them ("average revenue per account" is ARPA)."""
        taken = {i for d in self.definitions for i in range(d.start, d.end)}
        self.cues = [c for c in self.cues if not taken & set(range(c.start, c.end))]
        self.mentions = link(index, self.tokens, skip=skip | taken)
        for d in self.definitions:
            if d.definition.kind == "filter" and d.definition.table.lower() in index.tables:
                # "active customers" names rows of `accounts` as well as a condition on them
                table = index.table(d.definition.table)
                self.mentions.append(
                    Mention(d.start, d.end, "table", tables=[table], score=d.score, text=d.text)
                )
        self.mentions.sort(key=lambda m: m.start)
        stored_value_over_role_synonym(index, self.tokens, self.mentions, self.definitions)
        rows_in_role(index, self.tokens, self.mentions)
        self.restated: set[int] = set()
        """Tokens that only restate what a cue says ("..., as a percentage")."""
        self._bucket_or_value()
        self._share_of_named_measure()
        self._referred_subjects()
        self.named_dates: dict[int, ColumnRef] = {}
        """Start of a named filter's span -> the date column its condition tests."""
        self.default_dates: list[ColumnRef] = []
        """Date columns a period was put on for want of a better one (the focus table's first
        date): the assembly moves them to the date of the rows a measure aggregates."""
        self.time_preference: list[ColumnRef] = []
        """Date columns the question's measures are dated by (a layer measure's time column)."""
        self.bucket_dates: list[ColumnRef] = []
        """Date columns a bucket names by its event ("for each purchase year")."""
        self.refinement_from = refinement_from
        self.used: set[int] = set()
        """ids (positions in self.mentions) of mentions given a role."""
        self.used_tokens: set[int] = set(self.restated)
        self.recognised: dict[str, list[str]] = {}
        self.intent = Intent(table="")
        self.extra_tables: list[str] = []
        self.table_group_projection: list[int] = []
        self.breakdown = False
        self.order_by_projection = False
        self.content_words = 0
        self.unknown_words = 0
        self.lost_qualifiers = 0
        self.state_negations = 0
        self.inferred_measures = 0
        self.measures: list[tuple[int, Measure]] = []
        self.projection: list[tuple[int, Measure]] = []
        self.order_keys: list[tuple[int, Measure, bool]] = []
        self.group_keys: list[tuple[int, Measure]] = []
        self.limit: int | None = None
        self.top_mode = False
        self.argmax: list[Measure] = []
        """Superlative rankings ("which X has the highest Y"): ordered by, not shown."""
        self._aggregate_named_columns()
        self._split_column_names()
        self._unit_modifiers()
        self._measure_nouns()
        self._sign_ups()
        self._role_references()

    def _role_references(self) -> None:
        """ "accounts per account manager": where a table the question names refers to rows of
        another by a key named for the role (`accounts.account_manager_id` -> staff), the role
        words mean the rows in that role, reached through that key, rather than a job title
        stored in the other table ('Account Manager')."""
        named = {t.name.lower() for m in self.mentions if m.kind == "table" for t in m.tables}
        for m in self.mentions:
            if m.kind != "value":
                continue
            phrase = tuple(t.lemma for t in self.tokens[m.start : m.end])
            for table in named:
                for other, own, _ in self.index.edges.get(table, []):
                    col = self.index.column(table, own)
                    if col is None or col.words[-1:] != ("id",) or col.words[:-1] != phrase:
                        continue
                    if not any(c.table.lower() == other.lower() for c in m.columns):
                        continue
                    m.kind, m.columns, m.value = "table", [], None
                    m.tables = [self.index.table(other)]
                    break
                if m.kind == "table":
                    break

    def _measure_nouns(self) -> None:
        """ "satisfaction rating", "csat score": a word for a measurement right after a
        column's link is part of it."""
        for m in self.mentions:
            if m.kind != "column" or m.end >= len(self.tokens):
                continue
            nxt = self.tokens[m.end]
            if nxt.lemma in _MEASURE_NOUNS and not any(
                o.start <= nxt.index < o.end for o in self.mentions
            ):
                self.used_tokens.add(nxt.index)

    def _sign_ups(self) -> None:
        """ "2024 sign-ups", "new registrations": when no table is named, the rows signed up
        are those of the one table whose creation date records a sign-up."""
        if any(m.kind == "table" for m in self.mentions):
            return
        at = [
            t for t in self.tokens
            if t.lemma in ("signup", "registration", "registrant")
            or (t.lemma == "sign" and t.index + 1 < len(self.tokens)
                and self.tokens[t.index + 1].lemma in ("up", "ups", "upp"))
        ]  # fmt: skip
        if not at:
            return
        tables = [
            t for t in self.index.tables.values()
            if any(
                c.kind == "date" and c.words and c.words[0] in _SIGN_UP_DATES
                for c in self.index.columns_of.get(t.name.lower(), [])
            )
        ]  # fmt: skip
        if len(tables) != 1:
            return
        tok = at[0]
        end = tok.index + (2 if tok.lemma == "sign" else 1)
        self.mentions.append(
            Mention(tok.index, end, "table", tables=[tables[0]], score=2.0, text=tok.text)
        )
        self.mentions.sort(key=lambda x: x.start)

    def _unit_modifiers(self) -> None:
        """ "seat price", "unit cost": a word naming a column of another table right before a
        price word of a table is the unit the price is per, not a column of its own."""
        for m in list(self.mentions):
            if m.kind != "column" or m.end - m.start != 1 or not m.columns:
                continue
            word = self.tokens[m.end] if m.end < len(self.tokens) else None
            if word is None or word.lemma not in _PRICE_WORDS:
                continue
            priced = [
                c for c in self.index.columns if c.words and c.words[-1] == word.lemma
            ]  # fmt: skip
            if not priced or {c.table for c in m.columns} & {c.table for c in priced}:
                continue
            nxt = next((o for o in self.mentions if o.start == m.end), None)
            if nxt is not None and nxt.kind == "column":
                nxt.columns = [c for c in nxt.columns if c in priced] or nxt.columns
            elif nxt is None:
                self.mentions.append(
                    Mention(m.end, m.end + 1, "column", columns=priced, score=1.4, text=word.text)
                )
                self.mentions.sort(key=lambda x: x.start)
            self.mentions.remove(m)
            self.used_tokens.update(range(m.start, m.end))

    def _split_column_names(self) -> None:
        """ "monthly per-seat price" for `monthly_price`: a word a few words before a column's
        mention that completes the column's name belongs to that name, not to a value stored
        in another table ('monthly' billing)."""
        for m in list(self.mentions):
            if m.kind != "value" or m.end - m.start != 1:
                continue
            word = self.tokens[m.start].lemma
            for other in self.mentions:
                if other.kind != "column" or not 0 < other.start - m.end <= 2:
                    continue
                said = {word} | {t.lemma for t in self.tokens[other.start : other.end]}
                own = [c for c in other.columns if word in c.words and set(c.words) <= said]
                if own and not any(c.table == v.table for c in own for v in m.columns):
                    other.columns = own
                    other.score = max(other.score, 3.0 * len(own[0].words))
                    self.mentions.remove(m)
                    self.used_tokens.add(m.start)  # read as part of the column's name
                    break

    def _aggregate_named_columns(self) -> None:
        """ "mean temperature", "max gust speed": an aggregate word right before a column
        whose own name holds it (`mean_temperature_f`, `max_gust_speed_mph`) is part of the
        column's name, not an aggregate over it; and never the column of another aggregate
        (`max_temperature_f` for "mean temperature")."""
        for cue in list(self.cues):
            words = _AGGREGATE_NAME_WORDS.get(cue.payload) if cue.kind == "agg" else None
            if words is None or cue.end - cue.start != 1:
                continue
            if self.tokens[cue.start].lemma not in words | {"avg", "max", "min"}:
                continue
            m = next((m for m in self.mentions if m.start == cue.end and m.kind == "column"), None)
            if m is None:
                continue
            own = [c for c in m.columns if set(c.words) & words]
            if not own:
                continue
            m.columns = own
            if len(own) == 1 and set(own[0].words) <= words | {
                t.lemma for t in self.tokens[m.start : m.end]
            }:
                m.score = max(m.score, 3.0 * len(own[0].words) + 0.5)  # the whole name
            m.start = cue.start
            m.text = f"{self.tokens[cue.start].text} {m.text}"
            self.cues.remove(cue)

    def note(self, key: str, value: str) -> None:
        bucket = self.recognised.setdefault(key, [])
        if value not in bucket:
            bucket.append(value)

    def decline(self, message: str) -> QuestionNotUnderstood:
        return QuestionNotUnderstood(message, recognised=dict(self.recognised))

    def gap(self, a: int, b: int) -> int:
        """Content tokens strictly between positions a and b (filler words are free)."""
        lo, hi = min(a, b), max(a, b)
        if any(t.kind == "punct" and t.text in "?;!" for t in self.tokens[lo:hi]):
            return 99
        return sum(
            1
            for t in self.tokens[lo:hi]
            if not is_filler(t) and t.index not in self.used_tokens and not self.is_cue(t.index)
        )

    def is_cue(self, pos: int) -> bool:
        return any(c.start <= pos < c.end for c in self.cues)

    def mention_after(
        self, pos: int, *, max_gap: int = 1, kinds: tuple[str, ...] = ()
    ) -> int | None:
        for k, m in enumerate(self.mentions):
            if k in self.used or m.start < pos or (kinds and m.kind not in kinds):
                continue
            if self.gap(pos, m.start) <= max_gap and not self._crosses_cue(pos, m.start):
                return k
            return None
        return None

    def mention_before(
        self, pos: int, *, max_gap: int = 1, kinds: tuple[str, ...] = ()
    ) -> int | None:
        for k in range(len(self.mentions) - 1, -1, -1):
            m = self.mentions[k]
            if k in self.used or m.end > pos or (kinds and m.kind not in kinds):
                continue
            if self.gap(m.end, pos) <= max_gap:
                return k
            return None
        return None

    def _crosses_cue(self, a: int, b: int) -> bool:
        return any(a <= c.start < b and c.kind in ("cmp", "neg") for c in self.cues)

    def literal_after(self, pos: int, max_gap: int = 1) -> Token | None:
        for tok in self.tokens[pos:]:
            if tok.index in self.used_tokens:
                continue
            if tok.kind in ("number", "date", "quoted"):
                return tok if self.gap(pos, tok.index) <= max_gap else None
            if tok.kind == "word" and tok.lemma in MONTHS and tok.text[:1].isupper():
                return tok if self.gap(pos, tok.index) <= max_gap + 1 else None
        return None

    def column_of(self, k: int, *, prefer: list[str] | None = None) -> ColumnRef | None:
        """The column a mention most plausibly names, given the tables around it."""
        m = self.mentions[k]
        cols = list(m.columns)
        if m.kind == "table" and not cols:
            return None
        nearby = self.tables_near(k)
        wanted = [*(prefer or []), *nearby, self.intent.table, *self.mentioned_tables()]
        # A value sampled in `course.dept_name` also identifies rows of the focus table when
        # it holds the referenced column (`department.dept_name`): filter there, not via a join.
        if (
            m.kind == "value"
            and self.intent.table
            and not any(c.table.lower() in {t.lower() for t in wanted} for c in cols)
        ):
            table = self.intent.table
            for c in cols:
                own = self.index.column(table, c.name)
                linked = any(
                    other.lower() == c.table.lower()
                    and own_col.lower() == c.name.lower()
                    and other_col.lower() == c.name.lower()
                    for other, own_col, other_col in self.index.edges.get(table.lower(), [])
                )
                if own is not None and linked:
                    return own
        if len(cols) <= 1:
            return cols[0] if cols else None
        for table in wanted:
            hit = [c for c in cols if c.table.lower() == table.lower()]
            if hit:
                return hit[0]
        if self.intent.table:
            joinable = [
                (len(self.index.join_path(self.intent.table, c.table) or [0] * 99), c) for c in cols
            ]
            joinable.sort(key=lambda x: x[0])
            return joinable[0][1]
        return cols[0]

    def tables_near(self, k: int) -> list[str]:
        """Tables named right after ("name of the room") or right before ("room name")."""
        m = self.mentions[k]
        out: list[str] = []
        nxt = k + 1
        if nxt < len(self.mentions):
            after = self.mentions[nxt]
            between = self.tokens[m.end : after.start]
            if after.kind == "table" and self.gap(m.end, after.start) == 0 and len(between) <= 3:
                out.extend(t.name for t in after.tables)
        if k > 0:
            before = self.mentions[k - 1]
            if before.kind == "table" and before.end == m.start:
                out.extend(t.name for t in before.tables)
        return out

    def mentioned_tables(self) -> list[str]:
        out: list[str] = []
        for m in self.mentions:
            if m.kind == "table":
                out.extend(t.name for t in m.tables[:1] if t.name not in out)
        return out

    def table_of(self, k: int) -> str | None:
        m = self.mentions[k]
        if m.kind == "table" and m.tables:
            if len(m.tables) > 1 and self.intent.table:
                for t in m.tables:
                    if t.name.lower() == self.intent.table.lower():
                        return t.name
            if len(m.tables) > 1:
                support = {
                    t.name: sum(
                        1
                        for j, other in enumerate(self.mentions)
                        if j != k and any(c.table == t.name for c in other.columns)
                    )
                    for t in m.tables
                }
                return max(m.tables, key=lambda t: support[t.name]).name
            return m.tables[0].name
        return None

    def label_measures(self, table: str, *, key_fallback: bool = False) -> list[Measure]:
        labels = self.index.label_columns(table)
        if labels:
            return [Measure(c) for c in labels]
        pk = self.index.table(table).primary_key
        if pk is not None and key_fallback:
            return [Measure(pk)]
        return []

    def _bucket_or_value(self) -> None:
        """ "billed annually", "monthly count": a word that is both a time bucket and a value
        the semantic layer declares for a column is the value when the question names that
        column's table elsewhere ("active subscriptions billed annually"), else the bucket
        ("monthly count of new customers")."""
        layer = self.index.semantic
        if layer is None:
            return
        declared: dict[str, tuple[ColumnRef, str]] = {}
        for table_def in layer.tables:
            for col_def in table_def.columns:
                col = (
                    self.index.column(table_def.name, col_def.name)
                    if table_def.name.lower() in self.index.tables
                    else None
                )
                for phrase, stored in col_def.values.items():
                    if col is not None and phrase.strip().lower() in _BUCKET_WORDS:
                        declared[phrase.strip().lower()] = (col, stored)
        if not declared:
            return

        def named_elsewhere(table: str, pos: int) -> bool:
            tables = {t.name.lower() for m in self.mentions if m.start != pos for t in m.tables}
            tables |= {c.table.lower() for m in self.mentions if m.start != pos for c in m.columns}
            tables |= {d.definition.table.lower() for d in self.definitions}
            return table.lower() in tables

        for cue in list(self.cues):
            word = self.tokens[cue.start].text.lower()
            if cue.kind != "bucket" or cue.end - cue.start != 1 or word not in declared:
                continue
            col, stored = declared[word]
            if named_elsewhere(col.table, cue.start):
                self.cues.remove(cue)
                value = Mention(
                    cue.start, cue.end, "value", columns=[col], value=stored, score=3.0,
                    text=self.tokens[cue.start].text,
                )  # fmt: skip
                self.mentions = sorted([*self.mentions, value], key=lambda m: m.start)
        for m in list(self.mentions):
            word = m.text.lower()
            if m.kind != "value" or m.end - m.start != 1 or word not in declared:
                continue
            col, _ = declared[word]
            if not named_elsewhere(col.table, m.start) and word in _BUCKET_UNITS:
                self.mentions.remove(m)
                self.cues.append(Cue("bucket", m.start, m.end, _BUCKET_UNITS[word]))
                self.cues.sort(key=lambda c: c.start)

    def _share_of_named_measure(self) -> None:
        """ "what percent of revenue": a share of a layer measure even where a column is
        named `..._pct`; "..., as a percentage" then only restates the share. "Invoiced
        the most over time": all along, not a comparison."""
        measures = {d.start for d in self.definitions if d.definition.kind == "measure"}
        if not measures:
            return
        if not any(c.kind == "share" for c in self.cues):
            for tok in self.tokens[:-2]:
                i = tok.index
                words = [t.lemma for t in self.tokens[i : i + 3]]
                if words[0] != "what" or words[1] not in _SHARE_WORDS or words[2] != "of":
                    continue
                nxt = next(
                    (t.index for t in self.tokens[i + 3 :] if t.lemma not in STOP_WORDS), None
                )
                if nxt not in measures:
                    continue
                self.cues = sorted([*self.cues, Cue("share", i, i + 3)], key=lambda c: c.start)
                self.mentions = [m for m in self.mentions if not i <= m.start < i + 3]
                break
        for c in list(self.cues):
            after = self.tokens[c.end].lemma if c.end < len(self.tokens) else ""
            if c.kind == "cmp" and self.tokens[c.start].lemma == "over" and after == "time":
                self.cues.remove(c)  # "invoiced the most over time": all along, no comparison
                self.restated.update({c.start, c.end})
        if not any(c.kind == "share" for c in self.cues):
            return
        for c in list(self.cues):
            before = [t.lemma for t in self.tokens[max(0, c.start - 2) : c.start]]
            if c.kind == "unsupported" and c.payload in _SHARE_WORDS and before == ["as", "a"]:
                self.cues.remove(c)
                self.restated.update(range(c.start - 2, c.end))

    def _referred_subjects(self) -> None:
        """ "Top 5 account managers by MRR", "which reps ... by revenue": a word for a
        reference column (`account_manager_id`) as the subject ranked by a layer measure means
        the rows it refers to, shown by their name."""
        ranked_by_measure = any(
            d.definition.kind == "measure"
            and "by" in [t.lemma for t in self.tokens[max(0, d.start - 3) : d.start]]
            for d in self.definitions
        )  # "... by the current MRR": the rows ranked are what the measure is taken per
        if self.index.semantic is None or not ranked_by_measure:
            return
        for m in self.mentions:
            if m.kind != "column" or len(m.columns) != 1 or m.score < 2.0:
                continue
            referred = self.referred_table(m.columns[0])
            if referred is None or not self.index.label_columns(referred):
                continue
            before = [
                t.lemma
                for t in self.tokens[: m.start]
                if t.kind == "word" and t.lemma not in STOP_WORDS or t.lemma in _SUBJECT_WORDS
            ]
            head = [w for w in before if w not in _RANK_WORDS]
            if before and before[-1] in _RANK_WORDS | _SUBJECT_WORDS and len(head) <= 1:
                m.kind, m.tables, m.columns = "table", [self.index.table(referred)], []

    def referred_table(self, col: ColumnRef) -> str | None:
        """The other table whose row `col` refers to (a foreign key, a join the semantic layer
        declares, or one inferred from names), when `col` is the only link between the two."""
        if col.is_primary_key:
            return None
        edges = self.index.edges.get(col.table.lower(), [])
        targets = [
            other for other, own, _ in edges
            if own.lower() == col.name.lower() and other.lower() != col.table.lower()
        ]  # fmt: skip
        if len(targets) != 1:
            return None
        links = [e for e in edges if e[0].lower() == targets[0].lower()]
        return targets[0] if len(links) == 1 else None

    def self_references(self, table: str) -> list[ColumnRef]:
        """Columns of `table` that refer to another row of `table` (`manager_id`): declared
        foreign keys to itself, or a nullable `<role>_id` named for a role over peers."""
        info = self.index.table(table).info
        out: list[ColumnRef] = []
        for fk in info.foreign_keys:
            if fk.referred_table.lower() == table.lower() and len(fk.columns) == 1:
                col = self.index.column(table, fk.columns[0])
                if col is not None and col not in out:
                    out.append(col)
        if out:
            return out
        pk = self.index.table(table).primary_key
        for col in self.index.columns_of.get(table.lower(), []):
            if (
                pk is not None
                and col != pk
                and col.nullable
                and col.words[-1:] == ("id",)
                and set(col.words[:-1]) & PEER_ROLES
                and not any(w in self.index.tables for w in col.words[:-1])
            ):
                out.append(col)
        return out

    def layer_time_column(self, table: str) -> ColumnRef | None:
        """The date the semantic layer says rows of `table` are dated by, if it says."""
        layer = self.index.semantic
        if layer is None or table.lower() not in self.index.tables:
            return None
        for defined in layer.tables:
            if defined.name.lower() == table.lower() and defined.time_column:
                return self.index.column(table, defined.time_column)
        return None

    def date_column(self, prefer: list[str]) -> ColumnRef | None:
        if self.time_preference:
            return self.time_preference[0]
        tables = [*prefer, self.intent.table, *self.mentioned_tables()]
        for table in tables:
            dated_by = self.layer_time_column(table)
            if dated_by is not None:
                return dated_by
            for col in self.index.columns_of.get(table.lower(), []):
                if col.kind == "date":
                    return col
        return None

    def year_column(self, prefer: list[str]) -> ColumnRef | None:
        for table in [*prefer, self.intent.table, *self.mentioned_tables()]:
            for col in self.index.columns_of.get(table.lower(), []):
                if col.words and col.words[-1] == "year" and col.kind != "date":
                    return col
        return None

    def _use(self, k: int) -> None:
        self.used.add(k)
        m = self.mentions[k]
        self.used_tokens.update(range(m.start, m.end))

    def _use_token(self, tok: Token) -> None:
        self.used_tokens.add(tok.index)

    def _literal_value(self, tok: Token) -> Literal:
        if tok.kind == "number":
            value = float(tok.lemma)
            return int(value) if value == int(value) else value
        return tok.text

    def _column_named(self, words: tuple[str, ...]) -> ColumnRef | None:
        for table in [self.intent.table, *self.mentioned_tables()]:
            for col in self.index.columns_of.get(table.lower(), []):
                if col.words[-len(words) :] == words:
                    return col
        return None

    def _counting_words(self) -> bool:
        return any(c.kind in ("count", "agg", "super") for c in self.cues)

    def _asks_for_everything(self) -> bool:
        """ "all the customer information", "details of the order": every column."""
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        return any(
            t.lemma in ("information", "info", "detail") and t.index not in covered
            for t in self.tokens
        )

    def _after_group_word(self, pos: int) -> bool:
        return any(
            t.lemma in ("for", "different", "each", "per", "by", "every")
            for t in self.tokens[max(0, pos - 2) : pos]
        )

    def _direction(self, *, default: bool) -> bool:
        for cue in self.cues:
            if cue.kind == "dir":
                return cue.payload == "desc"
        return default

    def _describe(self, measure: Measure) -> str:
        if measure.column is None:
            return f"number of {measure.count_table}"
        return measure.column.name

    def _group_key(self, k: int) -> None:
        m = self.mentions[k]
        self._use(k)
        if m.kind == "table":
            table = self.table_of(k) or self.intent.table
            for measure in self.label_measures(table, key_fallback=True):
                self.projection.append((m.start, measure))
                self.table_group_projection.append(id(measure))
            pk = self.index.table(table).primary_key
            keys = [Measure(pk)] if pk else self.label_measures(table)
            for key in keys:
                self.group_keys.append((m.start, key))
            self.note("grouping", table)
        else:
            col = self.column_of(k)
            referred = self.referred_table(col) if col is not None else None
            says_key = {t.lemma for t in self.tokens[m.start : m.end]} & _KEY_WORDS
            if referred is not None and self.index.label_columns(referred) and not says_key:
                # "accounts per account manager": the key refers to a row that has a name;
                # the groups are those rows, shown by their name
                for measure in self.label_measures(referred):
                    self.projection.append((m.start, measure))
                    self.table_group_projection.append(id(measure))
                referred_key = self.index.table(referred).primary_key
                keys = [Measure(referred_key)] if referred_key else self.label_measures(referred)
                for measure in keys:
                    self.group_keys.append((m.start, measure))
                self.intent.extra_tables.append(referred)
                self.note("grouping", f"{referred} by {col.name if col else ''}")
            elif col is not None:
                self.group_keys.append((m.start, Measure(col)))
                self.projection.append((m.start, Measure(col)))
                self.note("grouping", col.name)


_BUCKET_UNITS = {
    "monthly": "month", "quarterly": "quarter", "yearly": "year", "annual": "year",
    "annually": "year", "weekly": "week", "daily": "day",
}  # fmt: skip
_BUCKET_WORDS = frozenset(_BUCKET_UNITS)
_SUBJECT_WORDS = frozenset({"which", "who", "what"})
_KEY_WORDS = frozenset({"id", "ids", "key", "code", "number", "no"})
"""Words that ask for the identifier itself ("for each customer id"), not the row it names."""
_SHARE_WORDS = frozenset({"percent", "percentage", "share", "proportion", "fraction"})
_RANK_WORDS = frozenset(
    {"top", "rank", "bottom", "list", "show", "five", "three", "ten", "two", "four", "twenty"}
)


def is_filler(tok: Token) -> bool:
    return tok.kind == "punct" or (tok.kind == "word" and tok.lemma in STOP_WORDS)


def is_key(col: ColumnRef) -> bool:
    return col.is_primary_key or (bool(col.words) and col.words[-1] in ("id", "code", "number"))


def same_measure(a: Measure, b: Measure) -> bool:
    return (
        a.column == b.column
        and a.agg == b.agg
        and a.bucket == b.bucket
        and a.count_table == b.count_table
        and a.distinct == b.distinct
        and a.sql == b.sql
        and a.via == b.via
        and a.own_filter == b.own_filter
    )


def is_flag(col: ColumnRef) -> bool:
    """A yes/no column: boolean type, or an integer named like a state ("discontinued")."""
    if col.kind == "boolean":
        return True
    return (
        col.kind == "numeric"
        and bool(col.words)
        and (
            col.words[0] in ("is", "has", "can", "allow", "auto")
            or col.words[-1].endswith("ed")
            or col.words[-1] in ("active", "flag")
            or "opt" in col.words  # `marketing_opt_in`, `opt_out`
        )
    )


def month_range(year: int, month: int) -> tuple[str, str]:
    """First day of the month and first day of the next, as ISO dates."""
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01", f"{end_year:04d}-{end_month:02d}-01"


_MEASURE_NOUNS = frozenset({"rating", "score", "level", "figure", "metric"})


_SIGN_UP_DATES = frozenset(
    {"created", "creation", "signup", "registered", "registration", "joined"}
)


_PRICE_WORDS = frozenset({"price", "cost", "fee", "rate", "charge"})


_AGGREGATE_NAME_WORDS = {
    "AVG": frozenset({"average", "mean"}),
    "MAX": frozenset({"maximum"}),
    "MIN": frozenset({"minimum"}),
}
"""An aggregate cue -> the words a column's own name has for it (`max_` reads `maximum`)."""


PEER_ROLES = frozenset(
    {"manager", "supervisor", "parent", "boss", "lead", "leader", "mentor", "reports",
     "referrer", "referred", "head", "superior", "sponsor"}
)  # fmt: skip
"""Role words of a key that points at another row of the same table (`reports_to_id`)."""
