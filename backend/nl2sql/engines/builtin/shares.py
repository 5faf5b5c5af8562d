"""Shares of an amount without a semantic layer: "what percentage of our 2024 invoiced amount
came from customers outside Europe" is 100 x the amount where the condition holds / the whole
amount, not the share of rows. The amount is the one plain numeric column the answer would
show; the period moves to the date of the rows it adds up."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.reading import is_key
from backend.nl2sql.engines.builtin.references import ReferenceReading
from backend.nl2sql.engines.builtin.sqlbuild import plain_identifier

_PERIODS = frozenset({">=", "<", "between", "recent", "not recent", "this", "previous"})
_SHARE_WORDS = frozenset(
    {"percent", "percentage", "pct", "share", "proportion", "fraction", "rate"}
)


class ShareReading(ReferenceReading):
    """Helper of the assembly's share pass: the amount a share is taken of."""

    def _share_of_an_amount(self, intent: Intent) -> list[Measure]:
        """The amount as a summed measure (the shape a layer measure has), the plain column
        taken out of what is shown and the period redated to its rows; [] when the answer
        shows no single amount (a share of rows, then)."""
        conditioned = {f.column for f in intent.filters if isinstance(f.column, ColumnRef)}
        amounts = [
            m for m in intent.select
            if m.agg in (None, "SUM") and m.column is not None and m.bucket is None
            and m.since is None and not m.distinct and m.column.kind == "numeric"
            and not is_key(m.column) and m.column not in conditioned
            and self.index.referred_row(m.column) is None
        ]  # fmt: skip  # ("what share of the total salary": the sum said outright)
        others = [m for m in intent.select if m.agg is not None and m not in amounts]
        if len(amounts) != 1 or others:
            return []
        col = amounts[0].column
        share_at = min((c.end for c in self.cues if c.kind == "share"), default=0)
        if not any(
            col in m.columns
            and m.start >= share_at
            and not {t.lemma for t in self.tokens[m.start : m.end]} & _SHARE_WORDS
            for m in self.mentions
        ):
            return []  # "as the percent of ...": the share's own word, not an amount
        if col is None or not (plain_identifier(col.table) and plain_identifier(col.name)):
            return []
        summed = Measure(col, "SUM")
        intent.select = [m for m in intent.select if m is not amounts[0]] + [summed]
        self._redate_by_measure(intent)  # "of our 2024 revenue": the amount's rows' year
        intent.select = [m for m in intent.select if m is not summed]
        if any(
            isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op in _PERIODS
            and f.column.table.lower() != col.table.lower()
            for f in intent.filters
        ):
            raise self.decline(
                f"could not tell whether the period is of the {col.name} or of the rows it "
                "comes from"
            )
        measure = Measure(
            None,
            "LAYER",
            sql=f"SUM({col.table}.{col.name})",
            label=f"sum_{col.name}",
            sql_tables=[col.table],
        )
        intent.select.append(measure)
        self.note("share", f"percentage of sum({col.name})")
        return [measure]
