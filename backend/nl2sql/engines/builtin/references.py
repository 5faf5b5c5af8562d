"""References: a key that points to another row (`accounts.account_manager_id`,
`staff.manager_id`) is shown as that row's label, read through a join of its own, when the
question names the row ("each manager", "the name of their team lead") and asks for no id."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.reading import same_measure
from backend.nl2sql.engines.builtin.signals import SignalReading

ID_WORDS = frozenset({"id", "ids", "identifier", "identifiers", "key", "keys", "number", "numbers"})
"""Words that ask for the key itself ("the manager id of each employee")."""


class ReferenceReading(SignalReading):
    """Pass: bare reference keys in what the answer shows become the referred rows' labels."""

    def referred_labels(self, col: ColumnRef) -> list[Measure]:
        """The label columns of the row `col` points to, read through `col`; empty when `col`
        is no reference key, points to no one table, or the table has no label."""
        if col.is_primary_key or col.sole_key:
            return []
        if col.kind != "numeric" and col.words[-1:] != ("id",):
            return []  # a code (`country_code`) is readable as it stands
        target = self.index.referred_row(col)
        if target is None:
            return []
        return [Measure(label, via=col) for label in self.index.label_columns(target[0])]

    def _asks_for_keys(self) -> bool:
        return any(t.lemma in ID_WORDS or t.text.lower() in ID_WORDS for t in self.tokens)

    def _show_referred_rows(self, intent: Intent) -> None:
        """ "How many employees report to each manager", "which rep has lost the most
        customers": the manager or rep is shown by name (a join to the row the key points to,
        aliased when the table refers to itself), grouped by the key and the name together so
        that two people of one name stay apart. A list of rows that would show only the
        referred names shows the rows' own labels first ("each agent alongside the name of
        their team lead")."""
        if self.name_tables:  # "the accounts that Aisha Adams manages": staff is named
            intent.preferred_tables = intent.preferred_tables | self.name_tables
        if self._asks_for_keys():
            return
        referring = [
            m
            for m in intent.select
            if m.agg is None and m.column and self.referred_labels(m.column)
        ]
        own_rows = [
            *self.label_measures(intent.table),
            *(Measure(pk) for pk in [self.index.table(intent.table).primary_key] if pk),
            *referring,
        ]
        if (
            intent.group_by
            and referring
            and not any(m.agg for m in intent.select)
            and not intent.having
            and all(any(same_measure(g, o) for o in own_rows) for g in intent.group_by)
            and any(g.column is not None and g.column.is_primary_key for g in intent.group_by)
        ):
            intent.group_by = []  # "each vet alongside ...": each row listed, not grouped
            self._each_row_listed(intent.table)
        if not self._plain_shape(intent):
            return
        select: list[Measure] = []
        replaced = False
        for m in intent.select:
            labels = (
                self.referred_labels(m.column)
                if m.agg is None and m.bucket is None and m.via is None and m.column is not None
                else []
            )
            if not labels:
                select.append(m)
                continue
            replaced = True
            target = self.index.referred_row(m.column) if m.column is not None else None
            if any(same_measure(m, g) for g in intent.group_by) and target is not None:
                # grouped by the referred row's own key (one group per person, not per name)
                key = self.index.column(target[0], target[1])
                keys = [Measure(key, via=m.column)] if key is not None else []
                intent.group_by = [
                    k for g in intent.group_by for k in (keys if same_measure(g, m) else [g])
                ]
                for label in labels:
                    if not any(same_measure(label, g) for g in intent.group_by):
                        intent.group_by.append(label)
            for label in labels:
                if not any(same_measure(label, s) for s in select):
                    select.append(label)
            if target is not None:
                intent.preferred_tables = intent.preferred_tables | {target[0].lower()}
                self.note("columns", f"{target[0]} named through {m.column.name}")  # type: ignore[union-attr]
        if not replaced:
            return
        only_referred = all(s.via is not None for s in select if s.agg is None)
        if only_referred and not intent.group_by and not any(s.agg for s in select):
            own = self.label_measures(intent.table)
            if own and not any(self._pins(intent.filters, label) for label in own):
                select = [*own, *select]
                self._each_row_listed(intent.table)
        intent.select = select

    def _each_row_listed(self, table: str) -> None:
        """ "List each agent alongside ...": the 'each' before the listed rows lists them one
        by one; it asks for no breakdown."""
        for cue in list(self.cues):
            if cue.kind != "group":
                continue
            listed = [
                k
                for k, m in enumerate(self.mentions)
                if m.kind == "table" and m.start >= cue.end and self.gap(cue.end, m.start) <= 1
            ]
            if listed and (self.table_of(listed[0]) or "").lower() == table.lower():
                self.cues.remove(cue)

    def _plain_shape(self, intent: Intent) -> bool:
        """Whether the reading is one a name can stand in for the key in: rows listed (no
        aggregate, no grouping), or figures per key (grouped by the key alone, every figure
        shown being the one ranked by, if any). A grouping by other columns too, or a figure
        shown beside a different one ranked by, is a reading too unsure to be made to look
        right by a name (nor is one that folds rows into distinct names or joins tables that
        give no column)."""
        aggregates = [m for m in intent.select if m.agg is not None]
        if intent.distinct or intent.extra_tables:
            return False  # rows folded into distinct names, or tables joined for no column
        if not intent.group_by:
            return not aggregates and not intent.having
        keys = [g for g in intent.group_by if g.bucket is None]
        if len(keys) != 1 or keys[0].column is None or not self.referred_labels(keys[0].column):
            return False
        ranked = [m for m, _ in intent.order_by if m.agg is not None]
        return not ranked or all(any(same_measure(a, r) for r in ranked) for a in aggregates)

    @staticmethod
    def _pins(filters: list[Filter], label: Measure) -> bool:
        """Whether a filter picks the rows by this label (every row shows the same name)."""
        return any(
            f.column == label.column and f.op in ("=", "ieq") and len(f.values) == 1
            for f in filters
        )
