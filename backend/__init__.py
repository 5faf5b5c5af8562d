"""nlsql: natural-language SQL analytics over your own databases."""

from backend.nl2sql import sqlglot_dialects as _sqlglot_dialects  # noqa: F401 - registers them

__version__ = "0.1.0"
