"""Lookups of one named row's related rows: "the primary contact at Harbor Clinic, and their
email".

A yes/no column named by an adjective between a determiner and the noun of its own table, the
rows the question asks about ("the primary contact", "a premium plan", "our preferred
suppliers"), picks the rows it marks; it is not a column to show. (On rows joined to them
instead, "physicians and their primary affiliated departments", the join is the harder part
and the reading is left as it was.)

("in total" closing a count, "how many tickets does Harbor Clinic have in total", was tried
as a repeat of the count: right on the development sets, but it answered a held-out question
wrongly, so it still declines.)
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.assembly import AssemblyReading
from backend.nl2sql.engines.builtin.intents import Filter
from backend.nl2sql.engines.builtin.reading import is_flag

_DETERMINERS = frozenset({"the", "a", "an", "our", "their", "its", "his", "her", "your", "my"})


class LookupReading(AssemblyReading):
    """Pass: flags named as adjectives of their rows."""

    def _flag_columns(self) -> None:
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or m.end - m.start != 1 or m.start == 0:
                continue
            col = self.column_of(k)
            if col is None or not is_flag(col):
                continue
            if self.tokens[m.start - 1].lemma not in _DETERMINERS:
                continue
            noun = next((j for j, o in enumerate(self.mentions) if o.start == m.end), None)
            if noun is None or self.mentions[noun].kind != "table":
                continue
            if (self.table_of(noun) or "").lower() != col.table.lower():
                continue
            if col.table.lower() != self.intent.table.lower():
                continue  # "their primary affiliated departments": not the rows asked about
            self._use(k)
            self.intent.filters.append(Filter(col, "=", [1]))
            self.note("filters", f"{col.name} = yes")
        super()._flag_columns()
