"""Logging an operator can use: JSON lines (or text) with the request, user, query and job ids.

`configure_logging` sets up the root logger and uvicorn's loggers alike (`logging_config`
is the same dictionary handed to uvicorn and gunicorn, so the server's lines look like the
app's). The ids come from a per-request dictionary in a context variable: the request-id
middleware starts it, authentication adds the user, the ask adds the query. The dictionary is
shared (not copied) by the threads a request's sync code runs in, so what a dependency adds
is seen by the access line at the end.
"""

from __future__ import annotations

import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

LOG_FIELDS = ("request_id", "user_id", "query_id", "job_id")

_log_context: ContextVar[dict[str, Any] | None] = ContextVar("nlsql_log_context", default=None)


def start_log_context(**fields: Any) -> Any:
    """A fresh context for one request or job; returns the token to `reset_log_context`."""
    return _log_context.set({k: v for k, v in fields.items() if v is not None})


def reset_log_context(token: Any) -> None:
    _log_context.reset(token)


def annotate_log(**fields: Any) -> None:
    """Add ids to the current request's (or job's) log context, if there is one."""
    current = _log_context.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


@contextmanager
def log_fields(**fields: Any) -> Iterator[None]:
    token = start_log_context(**fields)
    try:
        yield
    finally:
        reset_log_context(token)


class ContextFilter(logging.Filter):
    """Puts the current ids on every record (absent ids stay absent, or '-' in text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _log_context.get() or {}
        for name in LOG_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, current.get(name))
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(
            f"{name}={value}" for name in LOG_FIELDS if (value := getattr(record, name, None))
        )
        return f"{line} [{ids}]" if ids else line


JSON_FORMATTER = "pythonjsonlogger.json.JsonFormatter"
_JSON_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def logging_config(level: str = "INFO", fmt: str = "text") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary for the app, uvicorn and gunicorn."""
    level = level.upper()
    if fmt == "json":
        formatter: dict[str, Any] = {
            "()": JSON_FORMATTER,
            "fmt": _JSON_FORMAT,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
        }
    else:
        formatter = {
            "()": f"{__name__}.TextFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["context"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in (
                "uvicorn",
                "uvicorn.error",
                "uvicorn.access",
                "gunicorn.error",
                "gunicorn.access",
            )
        },
    }


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    logging.config.dictConfig(logging_config(level, fmt))
