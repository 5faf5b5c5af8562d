"""Which functions and types a guarded query may use, per dialect: an allow-list.

Everything not listed here is refused. The lists hold what analytics needs (aggregates, window
functions, arithmetic, text, dates and times, conditionals, casts to plain types, JSON values)
and nothing that takes a relation, a schema, a query text, a file, a setting or a session as an
argument, or that reports on the server (`query_to_xml`, `pg_read_file`, `read_csv`,
`load_extension`, `current_setting`, `version()`, ...). A function that is not on the list is
refused however it is spelled; adding one is a reviewed change to this file.

sqlglot represents a function call in one of two ways. A function it knows becomes a typed node
(`exp.Count`, `exp.DateTrunc`, ...) whatever the dialect calls it, and is rendered back in the
target dialect's own spelling: those are allowed by class, in `ALLOWED_FUNCTION_CLASSES`. A
function it does not know becomes `exp.Anonymous` carrying the name as written: those are
allowed by lower-cased name, per dialect, in `ALLOWED_ANONYMOUS`. The tests check that every
name listed there really parses as anonymous (or as an allowed class) in its dialect.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

_AGGREGATES = (
    "AnyValue",
    "ApproxDistinct",
    "ApproxQuantile",
    "ArgMax",
    "ArgMin",
    "ArrayAgg",
    "Avg",
    "BitwiseAndAgg",
    "BitwiseOrAgg",
    "BitwiseXorAgg",
    "Corr",
    "Count",
    "CountIf",
    "CovarPop",
    "CovarSamp",
    "First",
    "GroupConcat",
    "Grouping",
    "JSONArrayAgg",
    "JSONObjectAgg",
    "Kurtosis",
    "Last",
    "LogicalAnd",
    "LogicalOr",
    "Max",
    "Median",
    "Min",
    "Mode",
    "PercentileCont",
    "PercentileDisc",
    "Quantile",
    "RegrAvgx",
    "RegrAvgy",
    "RegrCount",
    "RegrIntercept",
    "RegrR2",
    "RegrSlope",
    "Skewness",
    "Stddev",
    "StddevPop",
    "StddevSamp",
    "Sum",
    "Variance",
    "VariancePop",
)
_WINDOW = (
    "CumeDist",
    "DenseRank",
    "FirstValue",
    "Lag",
    "LastValue",
    "Lead",
    "NthValue",
    "Ntile",
    "PercentRank",
    "Rank",
    "RowNumber",
)
_OPERATORS = (
    # sqlglot models these operators as functions: they combine values, nothing else.
    "And",
    "Or",
    "Exists",
    "Xor",
    "Pow",
    "Collate",
    "RegexpLike",
    "RegexpILike",
    "RegexpFullMatch",
    "ArrayContains",
    "ArrayContainsAll",
    "ArrayContainedBy",
    "ArrayOverlaps",
    "JSONExtract",
    "JSONExtractScalar",
    "JSONBExtract",
    "JSONBExtractScalar",
    "JSONBContains",
    "JSONArrayContains",
)
_MATH = (
    "Abs",
    "Acos",
    "Asin",
    "Atan",
    "Atan2",
    "Cbrt",
    "Ceil",
    "Cos",
    "Cot",
    "Degrees",
    "Exp",
    "Floor",
    "IsInf",
    "IsNan",
    "WidthBucket",
    "Ln",
    "Log",
    "Pi",
    "Radians",
    "Rand",
    "Round",
    "SafeDivide",
    "Sign",
    "Sin",
    "Sqrt",
    "Tan",
    "Trunc",
)
_TEXT = (
    "Ascii",
    "Chr",
    "Concat",
    "ConcatWs",
    "Contains",
    "EndsWith",
    "Format",
    "Initcap",
    "Left",
    "Length",
    "Levenshtein",
    "Lower",
    "MD5",
    "NumberToStr",
    "Pad",
    "RegexpCount",
    "RegexpExtract",
    "RegexpReplace",
    "Replace",
    "Reverse",
    "Right",
    "Soundex",
    "Split",
    "SplitPart",
    "StartsWith",
    "StrPosition",
    "Substring",
    "SubstringIndex",
    "ToChar",
    "ToNumber",
    "Translate",
    "Trim",
    "Unicode",
    "Upper",
)
_DATES = (
    "AddMonths",
    "CurrentDate",
    "CurrentDatetime",
    "CurrentTime",
    "CurrentTimestamp",
    "Date",
    "DateAdd",
    "DateBin",
    "DateDiff",
    "DateFromParts",
    "DateStrToDate",
    "DateSub",
    "DateToDateStr",
    "DateTrunc",
    "Datetime",
    "DatetimeAdd",
    "DatetimeDiff",
    "DatetimeSub",
    "DatetimeTrunc",
    "Day",
    "DayOfMonth",
    "DayOfWeek",
    "DayOfWeekIso",
    "DayOfYear",
    "Dayname",
    "Extract",
    "Hour",
    "JustifyDays",
    "JustifyHours",
    "JustifyInterval",
    "LastDay",
    "Localtime",
    "Localtimestamp",
    "MakeInterval",
    "Minute",
    "Month",
    "Monthname",
    "MonthsBetween",
    "Quarter",
    "Second",
    "StrToDate",
    "StrToTime",
    "StrToUnix",
    "Time",
    "TimeAdd",
    "TimeDiff",
    "TimeStrToDate",
    "TimeStrToTime",
    "TimeStrToUnix",
    "TimeSub",
    "TimeToStr",
    "TimeToTimeStr",
    "TimeToUnix",
    "TimeTrunc",
    "Timestamp",
    "TimestampAdd",
    "TimestampDiff",
    "TimeFromParts",
    "TimestampFromParts",
    "TimestampSub",
    "TimestampTrunc",
    "ToDays",
    "TsOrDsAdd",
    "TsOrDsDiff",
    "TsOrDsToDate",
    "TsOrDsToDatetime",
    "TsOrDsToTime",
    "TsOrDsToTimestamp",
    "UnixToStr",
    "UnixToTime",
    "UnixToTimeStr",
    "Week",
    "WeekOfYear",
    "Year",
)
_CONDITIONALS = ("Case", "Coalesce", "Greatest", "If", "Least", "Nullif", "Nvl2")
_CASTS = ("Cast", "TryCast", "Convert", "Typeof")
"""The target types of casts are checked separately (`ALLOWED_TYPES`)."""
_VALUES = (
    "Array",
    "ArraySize",
    "ArrayToString",
    "StringToArray",
    "JSONType",
    "JSONArray",
    "JSONObject",
    "ParseJSON",
    "Struct",
    "Unnest",
    "Explode",
    "GenerateSeries",
    "ExplodingGenerateSeries",
)

ALLOWED_FUNCTION_CLASSES: frozenset[type[exp.Expr]] = frozenset(
    getattr(exp, name)
    for group in (
        _AGGREGATES,
        _WINDOW,
        _OPERATORS,
        _MATH,
        _TEXT,
        _DATES,
        _CONDITIONALS,
        _CASTS,
        _VALUES,
    )
    for name in group
    if hasattr(exp, name)
)
"""sqlglot's typed function nodes a query may use, in every dialect."""

_COMMON_ANONYMOUS = frozenset(
    {
        "ceiling",
        "char_length",
        "character_length",
        "log10",
        "log2",
        "ltrim",
        "mod",
        "octet_length",
        "power",
        "rtrim",
        "substr",
        "width_bucket",
    }
)

ALLOWED_ANONYMOUS: dict[str, frozenset[str]] = {
    "postgres": _COMMON_ANONYMOUS
    | {
        "age",
        "array_length",
        "array_to_string",
        "btrim",
        "cardinality",
        "date_part",
        "every",
        "gcd",
        "isfinite",
        "json_array_elements",
        "json_array_elements_text",
        "json_array_length",
        "json_build_array",
        "json_build_object",
        "json_each",
        "json_each_text",
        "json_extract_path_text",
        "json_typeof",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "jsonb_array_length",
        "jsonb_build_array",
        "jsonb_build_object",
        "jsonb_each",
        "jsonb_each_text",
        "jsonb_extract_path_text",
        "jsonb_typeof",
        "justify_days",
        "justify_hours",
        "justify_interval",
        "lcm",
        "make_date",
        "make_time",
        "make_timestamp",
        "make_timestamptz",
        "regexp_match",
        "regexp_matches",
        "scale",
        "strpos",
        "string_to_array",
        "to_date",
        "to_json",
        "to_jsonb",
        "to_timestamp",
        "var_pop",
        "var_samp",
    },
    "sqlite": _COMMON_ANONYMOUS
    | {
        "date",
        "datetime",
        "iif",
        "instr",
        "json_array_length",
        "json_each",
        "json_group_array",
        "json_group_object",
        "json_tree",
        "json_type",
        "json_valid",
        "julianday",
        "printf",
        "strftime",
        "time",
        "timediff",
        "total",
        "unixepoch",
    },
    "duckdb": _COMMON_ANONYMOUS
    | {
        "date",
        "age",
        "array_length",
        "bool_and",
        "bool_or",
        "date_part",
        "datepart",
        "dayofmonth",
        "epoch_ms",
        "favg",
        "fsum",
        "isodow",
        "isoyear",
        "list_aggregate",
        "make_time",
        "make_timestamp",
        "now",
        "quantile_disc",
        "string_split",
        "time_bucket",
        "to_timestamp",
        "today",
        "weekday",
        "yearweek",
    },
    "mysql": _COMMON_ANONYMOUS
    | {
        "adddate",
        "curtime",
        "date",
        "dayofmonth",
        "dayofweek",
        "dayofyear",
        "from_days",
        "hour",
        "instr",
        "json_length",
        "json_unquote",
        "lcase",
        "locate",
        "makedate",
        "microsecond",
        "mid",
        "minute",
        "now",
        "period_diff",
        "second",
        "std",
        "stddev",
        "subdate",
        "sysdate",
        "time",
        "time_to_sec",
        "timediff",
        "ucase",
        "unix_timestamp",
        "var_pop",
        "var_samp",
        "weekday",
        "yearweek",
    },
}
"""Functions sqlglot does not model, allowed by the name written, per sqlglot dialect."""

TABLE_FUNCTIONS: frozenset[type[exp.Expr] | str] = frozenset(
    {
        exp.GenerateSeries,
        exp.ExplodingGenerateSeries,
        exp.Unnest,
        exp.Explode,
        "json_each",
        "json_tree",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
    }
)
"""Functions that may stand where a table does: they make rows out of their arguments only.
(They must be allowed as functions in the dialect as well.)"""

_T = exp.DataType.Type
ALLOWED_TYPES: frozenset[Any] = frozenset(
    {
        _T.BIGDECIMAL,
        _T.BIGINT,
        _T.BIT,
        _T.BOOLEAN,
        _T.BPCHAR,
        _T.CHAR,
        _T.DATE,
        _T.DATETIME,
        _T.DECIMAL,
        _T.DOUBLE,
        _T.FLOAT,
        _T.INT,
        _T.INTERVAL,
        _T.JSON,
        _T.JSONB,
        _T.MEDIUMINT,
        _T.MONEY,
        _T.NCHAR,
        _T.NVARCHAR,
        _T.SMALLINT,
        _T.TEXT,
        _T.TIME,
        _T.TIMETZ,
        _T.TIMESTAMP,
        _T.TIMESTAMPLTZ,
        _T.TIMESTAMPNTZ,
        _T.TIMESTAMPTZ,
        _T.TINYINT,
        _T.UBIGINT,
        _T.UDECIMAL,
        _T.UDOUBLE,
        _T.UINT,
        _T.UMEDIUMINT,
        _T.USMALLINT,
        _T.UTINYINT,
        _T.UUID,
        _T.VARCHAR,
        _T.YEAR,
    }
)
"""Types a value may be cast to: plain values. Not the catalog's object identifiers
(`regclass`, `oid`, `regproc`, ...: a cast to one of them looks a name up in the catalog), not
`xml`, not user-defined types."""


def function_key(node: exp.Func) -> type[exp.Expr] | str:
    """What the allow-lists know a function node by: its class, or its name when anonymous."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return type(node)


def function_label(node: exp.Func) -> str:
    """The function's name for a refusal message."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def is_allowed_function(node: exp.Func, dialect: str) -> bool:
    key = function_key(node)
    if isinstance(key, str):
        return key in ALLOWED_ANONYMOUS.get(dialect, frozenset())
    return key in ALLOWED_FUNCTION_CLASSES


def is_table_function(node: exp.Func) -> bool:
    return function_key(node) in TABLE_FUNCTIONS


def is_allowed_type(node: exp.DataType) -> bool:
    if isinstance(node, exp.ObjectIdentifier):
        return False
    kind = node.this
    if kind in ALLOWED_TYPES:
        return True
    if kind == _T.ARRAY:  # an array of allowed types (`int[]`)
        return all(
            isinstance(inner, exp.DataType) and is_allowed_type(inner) for inner in node.expressions
        )
    return False
