"""Rates of an event: "churn rate by size band", "the discharge rate of each ward" are the
share of rows whose event happened (the nullable date that records it is filled). Read before
the aggregates and the grouping, so the rate is the measure the breakdown is of."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter
from backend.nl2sql.engines.builtin.nested import QuantifiedComparisonReading


class RateReading(QuantifiedComparisonReading):
    """Pass: "<event> rate" becomes a share of the rows whose event date is filled."""

    def _event_rates(self) -> None:
        """ "churn rate by size band", "the discharge rate of each ward": the share of rows
        whose event happened (its nullable date filled), when no column is named `rate`."""
        stated = any(c.kind == "share" for c in self.cues)
        for tok in self.tokens:
            if tok.lemma != "rate" or tok.index == 0 or tok.index in self.used_tokens:
                continue
            if any(m.start <= tok.index < m.end and m.kind != "spent" for m in self.mentions):
                continue  # a column named for a rate (`interest_rate`)
            event = self.tokens[tok.index - 1]
            if event.kind != "word" or event.index in self.used_tokens:
                continue
            tables = dict.fromkeys(t.lower() for t in [self.intent.table, *self.mentioned_tables()])
            hits = [
                col for table in tables
                if (col := self._event_date(table, event)) is not None and col.nullable
            ]  # fmt: skip
            if len(hits) != 1 or hits[0].table.lower() != self.intent.table.lower():
                continue  # (a share counts the rows asked about: the event must be theirs)
            col = hits[0]
            if stated:
                # "churn rate by band, as the percent of accounts that churned": the share is
                # said outright after; "churn rate" only names it
                self.used_tokens.update({event.index, tok.index})
                return
            for k, m in enumerate(self.mentions):
                if m.start <= event.index < m.end:
                    m.kind = "spent"
                    self._use(k)
            self.used_tokens.update({event.index, tok.index})
            self.cues.append(Cue("share", tok.index, tok.index + 1, ""))
            self.cues.sort(key=lambda c: c.start)
            self.intent.filters.append(Filter(col, "is not null"))
            self.note("filters", f"{col.name} is not null (the {event.text} rate)")
            return
