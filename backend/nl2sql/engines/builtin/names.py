"""Names the sampled values never showed ("tickets of Harbor Homes", "Omar Larsen's email",
"the accounts that Aisha Adams manages"): which table's label a proper name is compared with.

A name right after "of", "for" or "(<verb>) by" names a row the question's rows are attached
to. Elsewhere a name of two or more words is placed by what is around it:

* a verb next to it that names one of the rows' reference keys ("Aisha Adams manages" ->
  `account_manager_id`) names the row that key points to;
* a name that owns a column ("Siobhan O'Brien's email address"), or stands beside the column
  a question asks for without naming its rows ("when did Omar Larsen leave"), is a row of the
  column's own table (or, if that table has no label, of the one it refers to);
* a name beside rows the question names ("how many tickets does Harbor Homes have", "the
  primary contact at Harbor Homes") is a row they refer to; of several, the one every row
  must refer to (a required key), or, failing that, the one two steps away.

Two tables that fit equally are offered, never guessed between; the name is compared ignoring
case (a person's name over first and last name columns compares both)."""

from __future__ import annotations

import re

from backend.nl2sql.engines.base import QuestionNotUnderstood, Suggestion
from backend.nl2sql.engines.builtin.intents import Filter, Measure
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex
from backend.nl2sql.engines.builtin.negation import NegationReading

ATTACHING = frozenset({"of", "for", "by"})
"""Words before a name that attach it to the rows named before them ("tickets of Acme")."""

_SOMEONE = frozenset({"someone", "somebody", "anyone", "anybody", "person", "people"})
"""Words for other rows in between ("someone who reports to X"): the name is theirs."""

_INTRODUCING = frozenset(
    {"at", "to", "with", "under", "does", "do", "did", "has", "have", "had", "that", "whom"}
)
"""Words that relate named rows to a name after them ("tickets does Acme have", "a contact at
Acme", "staff who report to Ada Lee")."""

_REPORTING = frozenset({"report", "answer", "reporting", "answering"})
"""Verbs before "to <name>" that relate a row to its superior, a row of its own table."""

_Place = tuple[str, ColumnRef | None]
"""A table a name may be a row of, and the reference key it is reached through (None: the
table itself, or reached by the join plan)."""


class NameReading(NegationReading):
    """Where a name no sampled value showed belongs."""

    def __init__(self, question: str, index: SchemaIndex, refinement_from: list[int]) -> None:
        super().__init__(question, index, refinement_from)
        self.name_tables: set[str] = set()
        """Lower-case names of tables a placed name was read as a row of, and of the tables
        in between: the question points at them (the join through them is not a guess)."""

    def name_text(self, start: int, end: int) -> str:
        """The name as the question writes it ("Siobhan O'Brien", not "Siobhan O Brien"),
        without a possessive ending."""
        words = [re.escape(t.text) for t in self.tokens[start:end]]
        found = re.search(r"\W{0,3}".join(words), self.question)
        text = found.group(0) if found else " ".join(t.text for t in self.tokens[start:end])
        return re.sub(r"['\u2019]s?$", "", text).strip()

    def _possessive(self, end: int) -> bool:
        """Whether the name before token `end` is written as an owner ("Harbor Homes' ...",
        "O'Brien's ...")."""
        if end < 1:
            return False
        last = re.escape(self.tokens[end - 1].text)
        return re.search(last + r"['\u2019](s\b|\s)", self.question) is not None

    def _unseen_name(self, start: int, text: str, *, end: int | None = None) -> list[Filter] | None:
        if start >= 1 and self.tokens[start - 1].lemma in ATTACHING:
            return self._attached_name(start, text)
        if end is None or end - start < 2:
            return None  # one capitalised word alone is too weak a sign of a name
        return self._placed_name(start, end, text)

    # --- a name placed by the words around it ------------------------------------------

    def _unsampled_labels(self, table: str) -> list[ColumnRef]:
        labels = self.index.label_columns(table)
        if not labels or any(
            (c.table.lower(), c.name.lower()) in self.index.sampled for c in labels
        ):
            return []  # a sampled label would have matched the name if it were stored
        return labels

    def _references(self, table: str) -> list[tuple[ColumnRef, str]]:
        """(reference key, referred table) of `table`'s keys to rows with an unsampled label,
        its own rows included (`manager_id`)."""
        out: list[tuple[ColumnRef, str]] = []
        for col in self.index.columns_of.get(table.lower(), []):
            target = self.index.referred_row(col)
            if target is None or not self._unsampled_labels(target[0]):
                continue
            if target[0].lower() == table.lower() and col not in self.self_references(table):
                continue
            out.append((col, target[0]))
        return out

    def _placed_name(self, start: int, end: int, text: str) -> list[Filter] | None:
        focus = self.intent.table
        if not focus or any(t.lemma in _SOMEONE for t in self.tokens[:start]):
            return None  # "report to someone who reports to X": X is not the rows' own link
        by_verb = self._place_by_verb(focus, start, end)
        if by_verb is not None:
            return self._compare_name(by_verb, text)
        after = [
            m
            for m in self.mentions
            if m.kind == "column" and m.start >= end and self.gap(end, m.start) <= 1
        ]
        possessive = self._possessive(end)
        subject_named = any(m.kind == "table" for m in self.mentions)
        places: list[_Place] = []
        if possessive or not subject_named:
            if not after:
                return None
            words = {c.words for c in after[0].columns}
            owners = list(
                dict.fromkeys(
                    c.table
                    for cols in self.index.columns_of.values()
                    for c in cols
                    if c in after[0].columns or c.words in words
                )
            )  # "O'Brien's email": every table with an email could hold her
            if not possessive and [o.lower() for o in owners] != [focus.lower()]:
                return None  # "when did X leave": only a row of the rows asked about
            places = [(t, None) for t in owners if self._unsampled_labels(t)]
            if not places:
                places = [(t, via) for owner in owners for via, t in self._references(owner)]
        else:
            if (
                not {self.tokens[start - 1].lemma, self.tokens[start - 1].text.lower()}
                & _INTRODUCING
            ):
                return None  # "how many claims Zephyr Cargo": nothing relates the two
            if after and not any(c.table.lower() == focus.lower() for c in after[0].columns):
                return None  # "when did X leave the company": a column of X's own, elsewhere
            places = self._referred_places(focus)
            before = self.tokens[start - 2].lemma if start >= 2 else ""
            if before in _REPORTING:  # "staff who report to Ada Lee": their superior's row
                peers = self.self_references(focus)
                places = [(focus, via) for via in peers if self._unsampled_labels(focus)]
        if not places:
            return None
        if len(places) > 1:
            raise self._two_places(text, places)
        return self._compare_name(places[0], text)

    def _place_by_verb(self, focus: str, start: int, end: int) -> _Place | None:
        """ "the accounts that Aisha Adams manages": a verb right after the name whose stem
        names one reference key of the rows (`account_manager_id`)."""
        if end >= len(self.tokens) or self.tokens[end].kind != "word":
            return None
        verb = self.tokens[end]
        if verb.lemma in STOP_WORDS or len(verb.lemma) < 4:
            return None
        stem = verb.lemma[:5]
        hits = [
            (target, via)
            for via, target in self._references(focus)
            if any(w[:5] == stem for w in via.words)
        ]
        if len(hits) != 1:
            return None
        self._use_token(verb)
        for k, m in enumerate(self.mentions):
            if m.start == end and m.kind == "column":
                self._use(k)
        return hits[0]

    def _referred_places(self, focus: str) -> list[_Place]:
        """The rows `focus` refers to that a name may be: those every row must refer to (a
        required key) when the others are optional, else all; none, then two steps away."""
        refs = self._references(focus)
        required: list[_Place] = [(t, via) for via, t in refs if not via.nullable]
        if refs:
            return required if len(required) == 1 else [(t, via) for via, t in refs]
        far: list[_Place] = []
        for col in self.index.columns_of.get(focus.lower(), []):
            middle = self.index.referred_row(col)
            if middle is None or middle[0].lower() == focus.lower():
                continue
            if self.index.label_columns(middle[0]):
                continue  # a labelled row in between would be the one named
            for _via, target in self._references(middle[0]):
                if target.lower() != focus.lower() and not any(t == target for t, _ in far):
                    far.append((target, None))
                    self.name_tables.add(middle[0].lower())
        return far

    def _two_places(self, text: str, places: list[_Place]) -> QuestionNotUnderstood:
        options = [
            " + ".join(f"{c.table}.{c.name}" for c in self.index.label_columns(t))
            + (f" (through {via.table}.{via.name})" if via is not None else "")
            for t, via in places
        ]
        return QuestionNotUnderstood(
            f"'{text}' is not among the stored values; it could name a row of "
            + " or of ".join(sorted({t for t, _ in places})),
            recognised=dict(self.recognised),
            suggestions=[Suggestion(text=f"'{text}' as {o}") for o in options],
        )

    def _compare_name(self, place: _Place, text: str) -> list[Filter]:
        table, via = place
        self.name_tables.add(table.lower())
        labels = self.index.label_columns(table)
        first, _, last = text.partition(" ")
        if len(labels) == 2 and last:
            parts = [(labels[0], first), (labels[1], last)]
        elif len(labels) == 2:
            return []
        else:
            parts = [(labels[0], text)]
        out: list[Filter] = []
        for col, value in parts:
            where = f" (the {table} row {via.name} refers to)" if via is not None else ""
            self.note("values", f"{col.name} = {value}{where} (not among the sampled values)")
            subject: ColumnRef | Measure = Measure(col, via=via) if via is not None else col
            out.append(Filter(subject, "ieq", [value]))
        return out

    # --- a name after "of", "for", "(<verb>) by" ---------------------------------------

    def _attached_name(self, start: int, text: str) -> list[Filter] | None:
        """ "invoices of Harbor Homes", "tickets handled by Omar Larsen": a name the sampled
        values never showed, right after "of", "for" or "(<verb>) by", is the label of the
        one table the named rows are attached to (their foreign key refers to it), compared
        ignoring case; a person's name split over first and last name columns compares both.
        Two such tables and no verb to choose between them: declined, offering both."""
        at = start - 1
        verb: str | None = None
        if self.tokens[at].lemma == "by" and at >= 1 and self.tokens[at - 1].kind == "word":
            before = self.tokens[at - 1]
            if before.lemma not in STOP_WORDS and not any(
                m.start <= before.index < m.end and m.kind == "table" for m in self.mentions
            ):
                verb = before.text.lower()  # "handled by", "packed by" (maybe a column's word)
                at -= 1
        named = [m for m in self.mentions if m.kind == "table" and m.end <= at and m.tables]
        focus = named[-1].tables[0].name if named else self.intent.table
        if not focus:
            return None
        if named and self.intent.table:
            focus = next(
                (t.name for t in named[-1].tables if t.name.lower() == self.intent.table.lower()),
                focus,
            )
        found: dict[str, tuple[list[ColumnRef], tuple[str, ...]]] = {}
        for other, own_col, _ in self.index.edges.get(focus.lower(), []):
            own = self.index.column(focus, own_col)
            if own is None or own.sole_key or other.lower() in found:
                continue  # only a row this one refers to (not the rows that refer to it)
            labels = self._unsampled_labels(other)
            if not labels:
                continue
            found[other.lower()] = (labels, (*own.words, *self.index.table(other).words))
        if verb is not None and len(found) > 1:
            stem = verb[:5]
            chosen = {k: v for k, v in found.items() if any(w[:5] == stem for w in v[1])}
            found = chosen or found
        if not found:
            return None
        if len(found) > 1:
            options = [
                " + ".join(f"{c.table}.{c.name}" for c in labels) for labels, _ in found.values()
            ]
            raise QuestionNotUnderstood(
                f"'{text}' is not among the stored values; it could name a row of "
                + " or of ".join(sorted({labels[0].table for labels, _ in found.values()})),
                recognised=dict(self.recognised),
                suggestions=[Suggestion(text=f"'{text}' as {o}") for o in options],
            )
        (other, (labels, _)) = next(iter(found.items()))
        if len(labels) == 2 and " " not in text.strip():
            return None  # one word for a first and a last name: which one is unknown
        refs = {own for t, own, _ in self.index.edges.get(focus.lower(), []) if t.lower() == other}
        for k, m in enumerate(self.mentions):
            if (
                verb is not None
                and k not in self.used
                and m.kind == "column"
                and m.start <= at < m.end
                and any(c.table.lower() == focus.lower() and c.name in refs for c in m.columns)
            ):
                self._use(k)  # "packed by": the reference the name is reached through
        return self._split_person_name(labels[0], text) or self._unseen(labels[0], text)

    def _split_person_name(self, col: ColumnRef, text: str) -> list[Filter] | None:
        """A name of two or more words for the first-name column of a table that names its
        rows by first and last name: the first word is the first name, the rest the last."""
        labels = self.index.label_columns(col.table)
        first, _, last = text.partition(" ")
        if len(labels) != 2 or col != labels[0] or not last:
            return None
        return self._unseen(labels[0], first) + self._unseen(labels[1], last)

    def _unseen(self, col: ColumnRef, text: str) -> list[Filter]:
        """A name no sampled value showed, compared with `col` ignoring case."""
        self.note("values", f"{col.name} = {text} (not among the sampled values)")
        return [Filter(col, "ieq", [text])]
