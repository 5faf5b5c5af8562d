"""nlsql: natural-language SQL analytics over your own databases."""

__version__ = "0.1.0"
