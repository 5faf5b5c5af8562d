"""An `Intent` as SQL: sqlglot expressions, joins along foreign keys, rendered per dialect."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Tokenizer

from backend.nl2sql.engines.base import QuestionNotUnderstood, Suggestion
from backend.nl2sql.engines.builtin.data_today import recorded_dates
from backend.nl2sql.engines.builtin.intents import AntiJoin, Filter, Intent, Literal, Measure
from backend.nl2sql.engines.builtin.join_needs import without_redundant_tables
from backend.nl2sql.engines.builtin.joinplan import (
    AmbiguousJoin,
    Branch,
    JoinPlanner,
    Step,
    describe,
    fanout_branches,
    keep_to_named_tables,
)
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex
from backend.nl2sql.engines.builtin.month_text import as_first_days
from backend.nl2sql.engines.builtin.overall import additive
from backend.nl2sql.engines.builtin.owner_keys import owner_key
from backend.nl2sql.engines.builtin.split_measures import only_where

DIALECTS = {"sqlite": "sqlite", "postgres": "postgres", "postgresql": "postgres",
            "mysql": "mysql", "duckdb": "duckdb"}  # fmt: skip
_RESERVED = frozenset(k for k in Tokenizer.KEYWORDS if " " not in k) | {
    "ORDER", "GROUP", "USER", "DATE", "TIME", "YEAR", "MONTH", "DAY", "NAME", "TYPE", "LEVEL",
    "RANK", "ROLE", "POSITION", "STATUS", "VALUE", "KEY", "COUNT", "SHOW", "TABLE", "INDEX",
}  # fmt: skip
MAX_JOIN_HOPS = 3
"""A table further than this from the others is more likely a linking mistake than meant."""
_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUCKET_FORMATS = {"year": "%Y", "month": "%Y-%m", "week": "%Y-%W", "day": "%Y-%m-%d"}


def plain_identifier(name: str) -> bool:
    """Whether `name` reads the same unquoted in every dialect (lower case, no keyword), so
    an SQL fragment written before the dialect is known can name it."""
    return bool(_SIMPLE.fullmatch(name)) and name == name.lower() and name.upper() not in _RESERVED


class SqlBuilder:
    def __init__(self, index: SchemaIndex, dialect: str) -> None:
        self.index = index
        self.dialect = DIALECTS.get(dialect.lower(), dialect.lower())
        self.qualify = False
        self.preferred: frozenset[str] = frozenset()
        self.words: frozenset[str] = frozenset()
        self.forced: dict[str, list[Step]] = {}
        """Lower-case table -> the join path to take (an alternative reading's)."""
        self.single_year: set[ColumnRef] = set()
        """Date columns the question keeps within one calendar year (quarters are 1-4)."""
        self.today: date | None = None
        """The semantic layer's `today`: relative time counts back from it, not the clock."""
        self.referred: dict[tuple[str, str], str] = {}
        """(table, reference key) -> the alias its referred row is joined under."""

    def ident(self, name: str) -> exp.Identifier:
        quoted = not _SIMPLE.fullmatch(name) or name.upper() in _RESERVED
        if self.dialect == "postgres" and name != name.lower():
            quoted = True
        return exp.Identifier(this=name, quoted=quoted)

    def table(self, name: str) -> exp.Table:
        return exp.Table(this=self.ident(name))

    def column(self, col: ColumnRef, *, qualify: bool | None = None) -> exp.Column:
        q = self.qualify if qualify is None else qualify
        return exp.Column(this=self.ident(col.name), table=self.ident(col.table) if q else None)

    def literal(self, value: Literal) -> exp.Expr:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return exp.Literal.number(value)
        return exp.Literal.string(str(value))

    def typed_literal(self, col: ColumnRef, value: Literal) -> exp.Expr:
        if col.kind == "boolean" and isinstance(value, int | float):
            return exp.Boolean(this=bool(value))
        if col.kind == "text" and isinstance(value, int | float):
            return exp.Literal.string(str(value))
        if col.kind == "numeric" and isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return exp.Literal.string(value)
            return exp.Literal.number(int(number) if number == int(number) else number)
        return self.literal(value)

    def bucket(self, col: ColumnRef, unit: str) -> exp.Expr:
        if holds_its_unit(col, unit):
            return self.column(col)  # `usage_month` holds months already: grouped as stored
        if unit == "quarter":
            return self.quarter(col)
        fmt = _BUCKET_FORMATS[unit]
        if self.dialect == "sqlite":
            return exp.Anonymous(
                this="STRFTIME", expressions=[exp.Literal.string(fmt), self.column(col)]
            )
        return exp.TimeToStr(this=self.column(col), format=exp.Literal.string(fmt))

    def quarter(self, col: ColumnRef) -> exp.Expr:
        """The quarter as an integer 1-4; with the year in front ('2024-Q1') unless the
        question keeps to one year."""
        if self.dialect == "sqlite":
            month = exp.Cast(
                this=exp.Anonymous(
                    this="STRFTIME", expressions=[exp.Literal.string("%m"), self.column(col)]
                ),
                to=exp.DataType.build("INTEGER"),
            )
            number: exp.Expr = exp.IntDiv(
                this=exp.Paren(this=exp.Add(this=month, expression=exp.Literal.number(2))),
                expression=exp.Literal.number(3),
            )
        else:
            number = exp.Extract(this=exp.var("QUARTER"), expression=self.column(col))
        if col in self.single_year:
            return number
        year = self.bucket(col, "year")
        text = exp.Cast(this=number, to=exp.DataType.build("TEXT"))
        return exp.DPipe(
            this=exp.DPipe(this=year, expression=exp.Literal.string("-Q")), expression=text
        )

    def duration(self, start: ColumnRef, end: ColumnRef, unit: str) -> exp.Expr:
        """`end - start` in days (fractional), or hours/weeks, in this dialect."""
        a, b = self.column(end), self.column(start)
        days: exp.Expr
        if self.dialect == "sqlite":
            days = exp.Sub(
                this=exp.Anonymous(this="JULIANDAY", expressions=[a]),
                expression=exp.Anonymous(this="JULIANDAY", expressions=[b]),
            )
        elif self.dialect == "mysql":
            seconds: exp.Expr = exp.Anonymous(
                this="TIMESTAMPDIFF", expressions=[exp.var("SECOND"), b, a]
            )
            days = exp.Div(this=seconds, expression=exp.Literal.number("86400.0"))
        else:  # postgres, duckdb: seconds of the interval between two timestamps
            interval = exp.Paren(
                this=exp.Sub(
                    this=exp.Cast(this=a, to=exp.DataType.build("TIMESTAMP")),
                    expression=exp.Cast(this=b, to=exp.DataType.build("TIMESTAMP")),
                )
            )
            seconds = exp.Extract(this=exp.var("EPOCH"), expression=interval)
            days = exp.Div(this=seconds, expression=exp.Literal.number("86400.0"))
        if unit == "hour":
            return exp.Mul(this=exp.Paren(this=days), expression=exp.Literal.number(24))
        if unit == "minute":
            return exp.Mul(this=exp.Paren(this=days), expression=exp.Literal.number(1440))
        if unit == "week":
            return exp.Div(this=exp.Paren(this=days), expression=exp.Literal.number("7.0"))
        return days

    def month_of(self, col: ColumnRef) -> exp.Expr:
        if self.dialect == "sqlite":
            return exp.Cast(
                this=exp.Anonymous(
                    this="STRFTIME", expressions=[exp.Literal.string("%m"), self.column(col)]
                ),
                to=exp.DataType.build("INTEGER"),
            )
        return exp.Extract(this=exp.var("MONTH"), expression=self.column(col))

    def days_ago(
        self, amount: int, unit: str, anchor: ColumnRef | None = None, table: str | None = None
    ) -> exp.Expr:
        days = {"day": 1, "week": 7, "month": 30, "quarter": 91, "year": 365}[unit] * amount
        if self.today is not None:
            return exp.Literal.string(shift(self.today, -amount, unit).isoformat())
        if anchor is not None:  # the data's own today: the latest date the rows record
            saved, self.qualify = self.qualify, False
            latest = exp.select(exp.Max(this=self.column(anchor))).from_(self.table(anchor.table))
            self.qualify = saved
            return self.step(exp.Subquery(this=latest), -amount, unit)
        recorded = self.data_today(table)
        if recorded is not None:
            return self.step(recorded, -amount, unit)
        if self.dialect == "sqlite":
            return exp.Anonymous(
                this="DATE",
                expressions=[exp.Literal.string("now"), exp.Literal.string(f"-{days} days")],
            )
        return exp.DateSub(
            this=exp.CurrentDate(), expression=exp.Literal.number(days), unit=exp.var("DAY")
        )

    def step(self, day: exp.Expr, amount: int, unit: str) -> exp.Expr:
        """`day` moved by `amount` calendar units, as a date, in this dialect."""
        if amount == 0:
            return day
        if unit == "week":  # (SQLite's date modifiers have no weeks)
            amount, unit = amount * 7, "day"
        if self.dialect == "sqlite":
            sign = "+" if amount >= 0 else "-"
            modifier = f"{sign}{abs(amount)} {unit}{'s' if abs(amount) != 1 else ''}"
            func = "DATETIME" if unit in ("hour", "minute") else "DATE"  # (DATE drops the time)
            return exp.Anonymous(this=func, expressions=[day, exp.Literal.string(modifier)])
        return exp.DateAdd(this=day, expression=exp.Literal.number(amount), unit=exp.var(unit))

    def calendar_gap(self, f: Filter, span: Measure) -> exp.Expr | None:
        """ "within a year of being hired", "less than four months after signing up": months
        and years are calendar steps from the start date (not a count of days)."""
        if span.unit not in ("month", "year") or span.agg is not None or span.since is None:
            return None
        if span.column is None or not isinstance(f.values[0], int):
            return None
        bound = self.step(self.column(span.since), f.values[0], span.unit)
        return _compare(f.op, self.column(span.column), bound)

    def valid_on(self, f: Filter, start: ColumnRef) -> exp.Expr:
        """Started before the day after and not ended by the day (an end on the day is out)."""
        if f.until is None:
            raise QuestionNotUnderstood("an interval without its end date")
        began = exp.LT(this=self.column(start), expression=self.literal(f.values[1]))
        ended = self.column(f.until)
        running = exp.Or(
            this=exp.Is(this=ended, expression=exp.Null()),
            expression=exp.GT(this=ended.copy(), expression=self.literal(f.values[0])),
        )
        return exp.and_(began, exp.Paren(this=running))

    def data_today(self, table: str | None) -> exp.Expr | None:
        """The latest day the table's rows record, standing for today (see `data_today.py`):
        the greatest of its dates of what has happened; None without such a date."""
        cols = recorded_dates(self.index, table) if table else []
        if not cols:
            return None
        saved, self.qualify = self.qualify, False
        picks = [
            exp.select(exp.Max(this=self.column(c)).as_("d")).from_(self.table(c.table))
            for c in cols
        ]  # each column's latest (an index on a date answers it without a scan)
        self.qualify = saved
        if len(picks) == 1:
            return exp.Subquery(this=picks[0])
        union: exp.Query = picks[0]
        for pick in picks[1:]:
            union = exp.union(union, pick, distinct=False)
        latest = exp.select(exp.Max(this=exp.column("d"))).from_(union.subquery("recorded"))
        return exp.Subquery(this=latest)

    def start_of(self, unit: str, table: str | None = None) -> exp.Expr:
        if self.today is None and (day := self.data_today(table)) is not None:
            return self.start_of_day(unit, day)
        if self.today is not None:
            quarter_month = (self.today.month - 1) // 3 * 3 + 1
            first = {
                "year": self.today.replace(month=1, day=1),
                "quarter": self.today.replace(month=quarter_month, day=1),
                "month": self.today.replace(day=1),
            }
            return exp.Literal.string(first.get(unit, self.today).isoformat())
        if self.dialect == "sqlite" and unit == "quarter":
            # the month's first day moved back by the months into the quarter (0 to 2)
            back = _sqlite_months_into_quarter(exp.Literal.string("now"))
            return exp.Anonymous(
                this="DATE",
                expressions=[
                    exp.Literal.string("now"),
                    exp.Literal.string("start of month"),
                    back,
                ],
            )
        if self.dialect == "sqlite":
            modifier = {"year": "start of year", "month": "start of month"}.get(
                unit, "start of day"
            )
            return exp.Anonymous(
                this="DATE", expressions=[exp.Literal.string("now"), exp.Literal.string(modifier)]
            )
        return exp.DateTrunc(unit=exp.Literal.string(unit), this=exp.CurrentDate())  # type: ignore[no-untyped-call]

    def start_of_day(self, unit: str, day: exp.Expr) -> exp.Expr:
        """The first day of the calendar year, quarter or month `day` falls in."""
        if self.dialect != "sqlite":
            return exp.Cast(
                this=exp.DateTrunc(unit=exp.Literal.string(unit), this=day),  # type: ignore[no-untyped-call]
                to=exp.DataType.build("DATE"),
            )
        if unit == "year":
            return exp.Anonymous(
                this="DATE", expressions=[day, exp.Literal.string("start of year")]
            )
        month = exp.Anonymous(this="DATE", expressions=[day, exp.Literal.string("start of month")])
        if unit != "quarter":
            return month
        back = _sqlite_months_into_quarter(day.copy())
        return exp.Anonymous(this="DATE", expressions=[month, back])

    def referred_column(self, m: Measure) -> exp.Column | None:
        """A column read on the row a reference key points to: its alias's column."""
        if m.via is None or m.column is None:
            return None
        alias = self.referred.get((m.via.table.lower(), m.via.name.lower()))
        if alias is None:
            raise QuestionNotUnderstood(f"{m.via.table}.{m.via.name} refers to no joined row")
        return exp.Column(this=self.ident(m.column.name), table=self.ident(alias))

    def measure(self, m: Measure) -> exp.Expr:
        referred = self.referred_column(m)
        if referred is not None:
            if m.agg is None:
                return referred
            arg: exp.Expr = exp.Distinct(expressions=[referred]) if m.distinct else referred
            aggs = {"COUNT": exp.Count, "SUM": exp.Sum, "AVG": exp.Avg, "MIN": exp.Min}
            return {**aggs, "MAX": exp.Max}[m.agg](this=arg)
        if m.agg == "PCT":
            # 100.0 * SUM(CASE WHEN <conditions> THEN 1 ELSE 0 END) / COUNT(*)
            met = exp.and_(
                *(self.condition(f, intent_table=m.count_table or "") for f in m.condition),
                *(self.fragment(c) for c in m.condition_sql),
            )
            if m.sql is not None:
                return self.share_of_fragment(m.sql, met)
            flag = exp.Case(
                ifs=[exp.If(this=met, true=exp.Literal.number(1))], default=exp.Literal.number(0)
            )
            share = exp.Mul(this=exp.Literal.number("100.0"), expression=exp.Sum(this=flag))
            return exp.Div(this=share, expression=exp.Count(this=exp.Star()))
        if m.sql is not None and m.own_filter is not None:
            return only_where(self.fragment(m.sql), self.fragment(m.own_filter))
        if m.sql is not None:
            return self.fragment(m.sql)
        if m.bucket and m.column is not None:
            return self.bucket(m.column, m.bucket)
        if m.since is not None and m.column is not None:
            span = self.duration(m.since, m.column, m.unit)
            if m.agg is None:
                return span
            cls = {"SUM": exp.Sum, "AVG": exp.Avg, "MIN": exp.Min, "MAX": exp.Max}
            return cls[m.agg](this=span)
        if m.agg is None:
            if m.column is None:
                raise QuestionNotUnderstood("a selected item has no column")
            return self.column(m.column)
        if m.column is None:
            pk = self.index.table(m.count_table).primary_key if m.count_table else None
            if self.qualify and pk is not None and m.count_table:
                return exp.Count(this=exp.Distinct(expressions=[self.column(pk)]))
            return exp.Count(this=exp.Star())
        arg = self.column(m.column)
        if m.distinct:
            arg = exp.Distinct(expressions=[arg])
        cls = {"COUNT": exp.Count, "SUM": exp.Sum, "AVG": exp.Avg, "MIN": exp.Min, "MAX": exp.Max}
        return cls[m.agg](this=arg)

    def alias(self, m: Measure) -> str | None:
        if m.label:
            return m.label
        if m.via is not None and m.column is not None and m.agg is None:
            return f"{self.referred[(m.via.table.lower(), m.via.name.lower())]}_{m.column.name}"
        if m.bucket:
            return m.bucket
        if m.agg is None:
            return None
        if m.agg == "PCT":
            return "percentage"
        if m.since is not None and m.column is not None:
            return f"{(m.agg or '').lower()}_{m.unit}s_to_{m.column.name}".lstrip("_")
        if m.column is None:
            return "count"
        return f"{m.agg.lower()}_{m.column.name}"

    def share_of_fragment(self, sql: str, met: exp.Expr) -> exp.Expr:
        """100.0 x a layer measure over the rows that meet `met` / the measure: every SUM(x)
        becomes SUM(CASE WHEN met THEN x ELSE 0 END), COUNT(*) a sum of 1s where met."""

        def only_met(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Sum):
                part = exp.Case(ifs=[exp.If(this=met.copy(), true=node.this.copy())])
                return exp.Sum(this=part.else_(exp.Literal.number(0)))
            if isinstance(node, exp.Count):
                flag = exp.Case(ifs=[exp.If(this=met.copy(), true=exp.Literal.number(1))])
                return exp.Sum(this=flag.else_(exp.Literal.number(0)))
            return node

        whole = self.fragment(sql)
        part = whole.copy().transform(only_met)
        share = exp.Mul(this=exp.Literal.number("100.0"), expression=exp.Paren(this=part))
        return exp.Div(this=share, expression=exp.Paren(this=whole))

    def fragment(self, sql: str) -> exp.Expr:
        """A semantic layer's SQL fragment (written `table.column`, in the target dialect)."""
        try:
            return sqlglot.parse_one(sql, dialect=self.dialect)
        except sqlglot.errors.ParseError as exc:
            raise QuestionNotUnderstood(
                f"a semantic-layer definition does not parse: {sql}"
            ) from exc

    def condition(self, f: Filter, *, intent_table: str) -> exp.Expr:
        if isinstance(f.column, Measure):
            gap = self.calendar_gap(f, f.column)
            if gap is not None:
                return gap
        elif f.op == "valid on":
            return self.valid_on(f, f.column)
        lhs = self.measure(f.column) if isinstance(f.column, Measure) else self.column(f.column)
        col = f.column.column if isinstance(f.column, Measure) else f.column
        if isinstance(f.column, Measure) and f.column.agg == "COUNT" and not f.subquery_agg:
            col = None  # a count compares with a number, whatever the counted column holds
        if f.peer is not None and col is not None:
            # the same table again, aliased, at the row the key points to
            peer_table = exp.to_identifier("peer")
            target = self.index.table(col.table).primary_key
            if target is None:
                raise QuestionNotUnderstood(f"{col.table} has no key to compare rows by")
            sub = (
                exp.select(exp.Column(this=self.ident(col.name), table=peer_table))
                .from_(exp.alias_(self.table(col.table), peer_table, table=True))
                .where(
                    exp.EQ(
                        this=exp.Column(this=self.ident(target.name), table=peer_table),
                        expression=exp.Column(
                            this=self.ident(f.peer.name), table=self.ident(col.table)
                        ),
                    )
                )
            )
            outer = exp.Column(this=self.ident(col.name), table=self.ident(col.table))
            return _compare(f.op, outer, exp.Subquery(this=sub))
        if f.op == "same as" and col is not None:
            # "in the same department as Clara": the column's values on the rows named
            saved = self.qualify
            self.qualify = False
            named = [self.condition(g, intent_table=col.table) for g in f.subquery_filters]
            same = exp.select(self.column(col)).from_(self.table(col.table)).where(exp.and_(*named))
            self.qualify = saved
            return exp.In(this=lhs, query=exp.Subquery(this=same))
        if f.subquery_agg and col is not None:
            agg = Measure(col, f.subquery_agg)
            saved = self.qualify
            self.qualify = False
            source: exp.Expr = self.table(col.table)
            inner = [self.condition(g, intent_table=col.table) for g in f.subquery_filters]
            if f.within is not None:
                # the rows of the compared row's own group: the table again, aliased, matched
                # on the group's column (unqualified names inside resolve to the alias)
                group_table = exp.to_identifier("grp")
                source = exp.alias_(self.table(col.table), group_table, table=True)
                inner.append(
                    exp.EQ(
                        this=exp.Column(this=self.ident(f.within.name), table=group_table),
                        expression=exp.Column(
                            this=self.ident(f.within.name), table=self.ident(col.table)
                        ),
                    )
                )
            sub = exp.select(self.measure(agg)).from_(source)
            if inner:
                sub = sub.where(exp.and_(*inner))
            self.qualify = saved
            rhs: exp.Expr = exp.Subquery(this=sub)
            return _compare(f.op, lhs, rhs)

        def lit(v: Literal) -> exp.Expr:
            return self.typed_literal(col, v) if col is not None else self.literal(v)

        if f.op == "is null":
            return exp.Is(this=lhs, expression=exp.Null())
        if f.op == "is not null":
            return exp.Not(this=exp.Is(this=lhs, expression=exp.Null()))
        if f.op == "between":
            return exp.Between(this=lhs, low=lit(f.values[0]), high=lit(f.values[1]))
        if f.op == "in":
            return exp.In(this=lhs, expressions=[lit(v) for v in f.values])
        if f.op == "not in":
            return exp.Not(this=exp.In(this=lhs, expressions=[lit(v) for v in f.values]))
        if f.op == "ieq":  # a name never sampled: its case in the question may not be stored
            return exp.EQ(
                this=exp.Lower(this=lhs), expression=exp.Lower(this=lit(str(f.values[0])))
            )
        if f.op == "like":
            return exp.Like(this=lhs, expression=exp.Literal.string(str(f.values[0])))
        if f.op == "not like":
            return exp.Not(this=exp.Like(this=lhs, expression=exp.Literal.string(str(f.values[0]))))
        if f.op.startswith("month") and col is not None:
            return _compare(f.op[5:], self.month_of(col), exp.Literal.number(f.values[0]))
        table = col.table if col is not None else None
        if f.op == "recent":
            ago = self.days_ago(int(f.values[0]), f.unit or "day", table=table)
            return exp.GTE(this=lhs, expression=ago)
        if f.op == "not recent":
            ago = self.days_ago(int(f.values[0]), f.unit or "day", f.anchor, table)
            return exp.LT(this=lhs, expression=ago)
        if f.op == "this":
            return exp.GTE(this=lhs, expression=self.start_of(f.unit or "year", table))
        if f.op == "previous":  # the calendar period before the current one, half-open
            unit = f.unit or "year"
            current = self.start_of(unit, table)
            months = {"month": 1, "quarter": 3, "year": 12}[unit]
            before = self.step(current.copy(), -months, "month")
            return exp.and_(
                exp.GTE(this=lhs, expression=before), exp.LT(this=lhs.copy(), expression=current)
            )
        return _compare(f.op, lhs, lit(f.values[0]))

    def build(self, intent: Intent) -> exp.Select:
        intent = keep_to_named_tables(intent, self.index)
        needed: list[str] = []

        def need(table: str | None) -> None:
            if table and table.lower() not in [n.lower() for n in needed]:
                needed.append(table)

        need(intent.table)
        for m in [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]:
            for t in m.tables:
                need(t)
        for f in [*intent.filters, *intent.having]:
            if isinstance(f.column, Measure):
                for t in f.column.tables:
                    need(t)
            else:
                need(f.column.table)
        for t in intent.extra_tables:
            need(t)
        for c in intent.conditions:
            for t in c.tables:
                need(t)
        self.preferred = intent.preferred_tables
        self.words = intent.words
        self.today = intent.today
        self.single_year = _single_year_columns(intent)
        needed, joins = without_redundant_tables(intent, self.index, needed, self._join_plan)
        joins, semi, filters = self._semi_joins(intent, joins)
        referred = self._referred_joins(intent, joins)
        self.qualify = bool(joins) or bool(intent.anti_joins) or bool(referred) or bool(semi)
        select_exprs: list[exp.Expr] = []
        plain_names = [m.column.name.lower() for m in intent.select if m.column and not m.agg]
        for m in intent.select:
            e = self.measure(m)
            name = self.alias(m)
            if (
                name is None
                and m.column is not None
                and plain_names.count(m.column.name.lower()) > 1
            ):
                name = f"{m.column.table}_{m.column.name}"  # two tables' `name` columns
            select_exprs.append(exp.alias_(e, self.ident(name)) if name else e)
        if not select_exprs:
            select_exprs = [exp.Star()] if not joins else [
                exp.Column(this=exp.Star(), table=self.ident(intent.table))
            ]  # fmt: skip
        query = exp.select(*select_exprs).from_(self.table(intent.table))
        if intent.distinct:
            query = query.distinct()
        for from_table, from_col, to_table, to_col in joins:
            on = exp.EQ(
                this=exp.Column(this=self.ident(from_col), table=self.ident(from_table)),
                expression=exp.Column(this=self.ident(to_col), table=self.ident(to_table)),
            )
            query = query.join(self.table(to_table), on=on)
        for alias, target, key, via in referred:
            on = exp.EQ(
                this=exp.Column(this=self.ident(key), table=self.ident(alias)),
                expression=exp.Column(this=self.ident(via.name), table=self.ident(via.table)),
            )
            query = query.join(exp.alias_(self.table(target), self.ident(alias), table=True), on=on)
        conditions = [self.condition(f, intent_table=intent.table) for f in filters]
        conditions += [self._semi_join(b, intent) for b in semi]
        for anti in intent.anti_joins:
            conditions.append(self._anti_join(intent.table, anti))
        conditions += [self.fragment(c.sql) for c in intent.conditions]
        if conditions:
            query = query.where(exp.and_(*conditions))
        if intent.group_by:
            query = query.group_by(*(self.measure(g) for g in intent.group_by))
        if intent.having:
            grouped = query.copy()
            query = query.having(
                exp.and_(*(self._having(h, intent.table, grouped) for h in intent.having))
            )
        if intent.partition_by:
            return self._first_within_groups(query, intent)
        for m, desc in intent.order_by:
            query = query.order_by(exp.Ordered(this=self.measure(m), desc=desc))
        if intent.limit:
            query = query.limit(intent.limit)
            if intent.offset:
                query = query.offset(intent.offset)
        if intent.count_groups:
            counted = exp.alias_(exp.Count(this=exp.Star()), self.ident("count"))
            inner = exp.Subquery(this=query, alias=exp.TableAlias(this=self.ident("kept")))
            return exp.select(counted).from_(inner)
        return query

    def _referred_joins(
        self, intent: Intent, joins: list[tuple[str, str, str, str]]
    ) -> list[tuple[str, str, str, ColumnRef]]:
        """The rows reference keys point to, for columns read on them ("the name of their
        team lead"): (alias, referred table, its key, the reference key), one join each, the
        alias named after the key's role (`manager_id` -> `manager`) so a table joined to
        itself reads plainly. A row the plan already joins through that very key is read
        where it is."""
        measures = [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]
        measures += [
            f.column for f in [*intent.filters, *intent.having] if isinstance(f.column, Measure)
        ]
        taken = {t.lower() for t in [intent.table, *(j[2] for j in joins), *self.index.tables]}
        out: list[tuple[str, str, str, ColumnRef]] = []
        self.referred = {}
        for m in measures:
            via = m.via
            if via is None or (via.table.lower(), via.name.lower()) in self.referred:
                continue
            target = self.index.referred_row(via)
            if target is None:
                raise QuestionNotUnderstood(f"{via.table}.{via.name} refers to no one table")
            ends = {(via.table.lower(), via.name.lower()), (target[0].lower(), target[1].lower())}
            planned = next(
                (
                    j for j in joins
                    if {(j[0].lower(), j[1].lower()), (j[2].lower(), j[3].lower())} == ends
                ),
                None,
            )  # fmt: skip
            if planned is not None and target[0].lower() != via.table.lower():
                self.referred[(via.table.lower(), via.name.lower())] = target[0]
                continue
            role = [w for w in via.words if w not in ("id", "code", "no", "key", "fk")]
            alias = "_".join(role) or f"{target[0]}_ref"
            while alias.lower() in taken:
                alias += "_ref"
            taken.add(alias.lower())
            self.referred[(via.table.lower(), via.name.lower())] = alias
            out.append((alias, target[0], target[1], via))
        return out

    def _first_within_groups(self, query: exp.Select, intent: Intent) -> exp.Select:
        """The rows ranked first (`intent.limit` ranks, ties kept) within each partition:
        RANK() OVER (PARTITION BY ... ORDER BY ...) in a subquery, filtered outside."""
        names: list[str] = []
        shown: list[exp.Expr] = []
        for i, e in enumerate(query.expressions):
            name = e.alias_or_name or f"column_{i + 1}"
            while name.lower() in (n.lower() for n in names):
                name = f"{name}_{i + 1}"
            names.append(name)
            inner = e.this if isinstance(e, exp.Alias) else e
            shown.append(exp.alias_(inner.copy(), self.ident(name)))
        window = exp.Window(
            this=exp.Rank(),
            partition_by=[self.measure(m) for m in intent.partition_by],
            order=exp.Order(
                expressions=[
                    exp.Ordered(this=self.measure(m), desc=desc) for m, desc in intent.order_by
                ]
            ),
        )
        ranked = query.copy()
        ranked.set("expressions", [*shown, exp.alias_(window, self.ident("rank_in_group"))])
        alias = self.ident("ranked")
        outer = exp.select(*(exp.Column(this=self.ident(n), table=alias.copy()) for n in names))
        outer = outer.from_(exp.Subquery(this=ranked, alias=exp.TableAlias(this=alias)))
        outer = outer.where(
            exp.LTE(
                this=exp.Column(this=self.ident("rank_in_group"), table=alias.copy()),
                expression=exp.Literal.number(intent.limit or 1),
            )
        )
        partition_names = names[: len(intent.partition_by)]
        return outer.order_by(*(exp.Column(this=self.ident(n)) for n in partition_names))

    def _having(self, h: Filter, table: str, grouped: exp.Select) -> exp.Expr:
        """A HAVING condition; a measure (a layer's, or a count) against its average over the
        groups compares with AVG of the same grouped query's figure ("above the average MRR per
        account", "more orders than the average customer")."""
        if h.over_rows or not (
            h.subquery_agg
            and isinstance(h.column, Measure)
            and (h.column.sql is not None or h.column.agg is not None)
        ):
            return self.condition(h, intent_table=table)
        figure = self.measure(h.column)
        if h.subquery_agg == "AVG" and not additive(figure):
            # "an average fee above the overall average": the figure over every row the
            # groups hold, not an average of the groups' averages
            overall = grouped.copy()
            overall.set("expressions", [figure.copy()])
            for part in ("group", "having", "order", "limit", "distinct"):
                overall.set(part, None)
            return _compare(h.op, figure, exp.Subquery(this=overall))
        per_group = grouped.copy()
        per_group.set("expressions", [exp.alias_(figure.copy(), self.ident("figure"))])
        per_group.set("distinct", None)
        cls = {"AVG": exp.Avg, "MIN": exp.Min, "MAX": exp.Max}[h.subquery_agg]
        over = exp.select(cls(this=exp.column("figure", table="per_group"))).from_(
            exp.Subquery(this=per_group, alias=exp.TableAlias(this=self.ident("per_group")))
        )
        return _compare(h.op, figure, exp.Subquery(this=over))

    def _join_plan(self, start: str, tables: list[str]) -> list[Step]:
        planner = JoinPlanner(self.index, self.preferred, self.words, self.forced, MAX_JOIN_HOPS)
        return planner.plan(start, tables)

    def _semi_joins(
        self, intent: Intent, joins: list[Step]
    ) -> tuple[list[Step], list[Branch], list[Filter]]:
        """Joins that repeat the rows a SUM or AVG adds up (or a plain COUNT(*) counts), only
        to filter them, become semi-joins (`key IN (SELECT ...)`): (the joins kept, the
        semi-joins, the filters left for the outer WHERE). A sum or average over rows
        repeated by joined rows the answer shows or adds up too is refused: each row would
        count once per partner."""
        measures = [*intent.select, *(m for m, _ in intent.order_by)]
        measures += [h.column for h in intent.having if isinstance(h.column, Measure)]
        aggregated = {
            m.column.table.lower()
            for m in measures
            if m.agg in ("SUM", "AVG") and not m.distinct and m.column is not None
            and m.via is None and m.sql is None and m.since is None
        }  # fmt: skip
        added_up = set(aggregated)
        for m in measures:
            counted = m.count_table or intent.table
            if (
                not intent.group_by
                and m.agg == "COUNT"
                and m.column is None
                and m.sql is None
                and (m.count_table is None or self.index.table(counted).primary_key is None)
            ):  # COUNT(*), no key to count distinct: "how many dorms have amenities"
                aggregated.add(counted.lower())
            if m.agg == "PCT" and m.sql is None:  # a share of rows: of each row once
                aggregated.add(counted.lower())
                added_up.add(counted.lower())
        if not joins or not aggregated:
            return joins, [], list(intent.filters)
        shown = {
            t.lower()
            for m in [*measures, *intent.group_by, *intent.partition_by]
            for t in m.tables
            if not (m.agg in ("SUM", "AVG") and m.column is not None and m.column.table.lower()
                    in aggregated and not m.distinct)
        }  # fmt: skip
        grouped = {t.lower() for m in [*intent.group_by, *intent.partition_by] for t in m.tables}
        pinned = {t.lower() for c in intent.conditions for t in c.tables}
        for f in intent.filters:
            tables = {t.lower() for t in _filter_tables(f)}
            if len(tables) > 1:
                pinned |= tables
        branches, inflated = fanout_branches(self.index, joins, aggregated, shown, grouped)
        inflated = [t for t in inflated if t in added_up]
        if inflated:
            raise QuestionNotUnderstood(
                f"the answer would count each row of {', '.join(inflated)} once per related "
                "row joined to it (the rows it shows or adds up repeat it)",
                recognised={"tables": [intent.table, *inflated]},
            )
        branches = [b for b in branches if not b.tables & pinned]
        if not branches:
            return joins, [], list(intent.filters)
        inside = {(s[0].lower(), s[2].lower()) for b in branches for s in b.steps}
        inside |= {(b.near.lower(), b.far.lower()) for b in branches}
        kept = [
            s for s in joins
            if (s[0].lower(), s[2].lower()) not in inside
            and (s[2].lower(), s[0].lower()) not in inside
        ]  # fmt: skip
        in_branch = {t for b in branches for t in b.tables}
        outer = [
            f for f in intent.filters
            if not {t.lower() for t in _filter_tables(f)} <= in_branch
        ]  # fmt: skip
        return kept, branches, outer

    def _semi_join(self, branch: Branch, intent: Intent) -> exp.Expr:
        """`near.key IN (SELECT far.key FROM far JOIN ... WHERE <the branch's filters>)`."""
        inner_col = exp.Column(this=self.ident(branch.far_column), table=self.ident(branch.far))
        sub = exp.select(inner_col).from_(self.table(branch.far))
        for from_table, from_col, to_table, to_col in branch.steps:
            sub = sub.join(
                self.table(to_table),
                on=exp.EQ(
                    this=exp.Column(this=self.ident(from_col), table=self.ident(from_table)),
                    expression=exp.Column(this=self.ident(to_col), table=self.ident(to_table)),
                ),
            )
        conds = [
            self.condition(f, intent_table=branch.far)
            for f in intent.filters
            if {t.lower() for t in _filter_tables(f)} <= branch.tables
        ]
        if conds:
            sub = sub.where(exp.and_(*conds))
        outer = exp.Column(this=self.ident(branch.near_column), table=self.ident(branch.near))
        return exp.In(this=outer, query=exp.Subquery(this=sub))

    def _anti_join(self, table: str, anti: AntiJoin) -> exp.Expr:
        path = self.index.join_path(table, anti.table)
        if not path:
            raise QuestionNotUnderstood(
                f"no foreign-key path joins {table} and {anti.table}",
                recognised={"tables": [table, anti.table]},
            )
        first_from, first_col, first_to, first_to_col = path[0]
        owner = owner_key(self.index, first_from, first_to)
        if owner is not None:  # "courses without prerequisites": `course_id`, not `prereq_id`
            first_col, first_to_col = owner
        inner_col = exp.Column(this=self.ident(first_to_col), table=self.ident(first_to))
        sub = exp.select(inner_col).from_(self.table(first_to))
        for from_table, from_col, to_table, to_col in path[1:]:
            sub = sub.join(
                self.table(to_table),
                on=exp.EQ(
                    this=exp.Column(this=self.ident(from_col), table=self.ident(from_table)),
                    expression=exp.Column(this=self.ident(to_col), table=self.ident(to_table)),
                ),
            )
        conds: list[exp.Expr] = [exp.Not(this=exp.Is(this=inner_col.copy(), expression=exp.Null()))]
        saved = self.qualify
        self.qualify = True
        conds += [self.condition(f, intent_table=anti.table) for f in anti.filters]
        conds += [self.fragment(c) for c in anti.conditions]
        self.qualify = saved
        sub = sub.where(exp.and_(*conds))
        outer = exp.Column(this=self.ident(first_col), table=self.ident(first_from))
        related = exp.In(this=outer, query=exp.Subquery(this=sub))
        return related if anti.exists else exp.Not(this=related)


def _single_year_columns(intent: Intent) -> set[ColumnRef]:
    lows: dict[ColumnRef, str] = {}
    highs: dict[ColumnRef, str] = {}
    for f in intent.filters:
        if isinstance(f.column, ColumnRef) and f.values and isinstance(f.values[0], str):
            if f.op == ">=":
                lows[f.column] = f.values[0]
            elif f.op == "<":
                highs[f.column] = f.values[0]
    out: set[ColumnRef] = set()
    for col, low in lows.items():
        high = highs.get(col)
        if high and low[:4].isdigit() and high[:4].isdigit():
            same = low[:4] == high[:4] or (
                high[5:10] == "01-01" and int(high[:4]) == int(low[:4]) + 1
            )
            if same:
                out.add(col)
    return out


def holds_its_unit(col: ColumnRef, unit: str) -> bool:
    """A date column named for the period it is bucketed by (`usage_month` by month,
    `billing_week` by week) holds one date per period: its stored values are the buckets."""
    return col.kind in ("date", "text") and unit in ("week", "month") and unit in col.words


def shift(day: date, amount: int, unit: str) -> date:
    """`day` moved by `amount` calendar units (a month end clamps: 31 March - 1 month = 28/29
    February)."""
    if unit in ("day", "week"):
        return day + timedelta(days=amount * (7 if unit == "week" else 1))
    per = {"month": 1, "quarter": 3, "year": 12}
    months = amount * per.get(unit, 0)
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def _compare(op: str, lhs: exp.Expr, rhs: exp.Expr) -> exp.Expr:
    classes: dict[str, type[exp.Binary]] = {
        "=": exp.EQ, "!=": exp.NEQ, ">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE,
    }  # fmt: skip
    return classes[op](this=lhs, expression=rhs)


def _filter_tables(f: Filter) -> list[str]:
    return f.column.tables if isinstance(f.column, Measure) else [f.column.table]


def render(
    intent: Intent,
    index: SchemaIndex,
    dialect: str,
    forced: dict[str, list[Step]] | None = None,
) -> str:
    """The intent's SQL. Where two join paths fit the question equally well, the decline
    (`AmbiguousJoin`) carries each path's SQL as a suggestion."""
    builder = SqlBuilder(index, dialect)
    builder.forced = dict(forced or {})
    try:
        tree = as_first_days(builder.build(intent), index, dialect)
        return tree.sql(dialect=builder.dialect)
    except AmbiguousJoin as doubt:
        if forced is not None:
            raise
        doubt.recognised = {**intent.recognised, **doubt.recognised, "doubts": [doubt.message]}
        first = describe(doubt.paths[0])
        for k, path in enumerate(doubt.paths[:3]):
            try:
                sql: str | None = render(intent, index, dialect, {doubt.target.lower(): path})
            except QuestionNotUnderstood:
                sql = None
            text = f"Joining by {first}" if k == 0 else f"Or, joining by {describe(path)}"
            text += f" instead of {first}" if k else ""
            doubt.suggestions.append(Suggestion(text=text, sql=sql))
        raise


def _sqlite_months_into_quarter(day: exp.Expr) -> exp.Expr:
    """SQLite's date modifier moving a month's first day back to its quarter's first:
    `'-' || ((CAST(STRFTIME('%m', day) AS INTEGER) - 1) % 3) || ' months'`."""
    into = exp.Mod(
        this=exp.paren(
            exp.Sub(
                this=exp.Cast(
                    this=exp.Anonymous(
                        this="STRFTIME", expressions=[exp.Literal.string("%m"), day]
                    ),
                    to=exp.DataType.build("INTEGER"),
                ),
                expression=exp.Literal.number(1),
            ),
            copy=False,
        ),
        expression=exp.Literal.number(3),
    )
    return exp.DPipe(
        this=exp.DPipe(this=exp.Literal.string("-"), expression=exp.Paren(this=into)),
        expression=exp.Literal.string(" months"),
    )
