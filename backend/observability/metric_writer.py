"""The batch metric writer: the request path enqueues, a background thread bulk-inserts.

Also keeps the in-process latency histograms served to Prometheus. Registered per engine, so
`recorder.enqueue_metric` finds the writer of the session's database.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert
from sqlalchemy.orm import Session, sessionmaker

from backend.core.db import utcnow
from backend.observability.models import PerformanceMetric
from backend.observability.prometheus import PrometheusSink

logger = logging.getLogger("nlsql.metric_writer")


_PLAIN = (str, int, float, bool, type(None))


def _json_safe(values: Mapping[str, Any]) -> Any:
    """`values` as JSON would give them back: flat plain values (a stage's or a request's
    labels, the usual case) as they are, anything else through JSON (`str` of what JSON
    cannot hold)."""
    if all(isinstance(key, str) and type(value) in _PLAIN for key, value in values.items()):
        return dict(values)
    return json.loads(json.dumps(values, default=str))


@dataclass(frozen=True, slots=True)
class PendingMetric:
    name: str
    value: float
    unit: str | None
    data: Mapping[str, Any] | None
    timestamp: datetime = field(default_factory=utcnow)


_INSERT = insert(cast("Table", PerformanceMetric.__table__))

# Upper bounds (ms) of the latency histogram buckets served to Prometheus.
LATENCY_BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
PROMETHEUS_LABELS = ("route", "method", "status", "stage", "source")


class MetricWriter:
    """Batches metrics in memory and writes them from a background thread.

    The request path only appends to a deque (no lock, no I/O). A daemon thread wakes every
    `flush_interval_seconds` (or when a batch fills) and bulk-inserts what is pending in one
    transaction. When more than `max_pending` metrics wait (the database is down), the oldest
    are dropped and counted in `dropped`, so memory stays bounded.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        flush_interval_seconds: float = 1.0,
        batch_size: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self._session_factory = session_factory
        self.flush_interval_seconds = flush_interval_seconds
        self.batch_size = batch_size
        self._pending: deque[PendingMetric] = deque(maxlen=max_pending)
        self._max_pending = max_pending
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.prometheus = PrometheusSink(LATENCY_BUCKETS_MS)
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0

    # -- producer side (request path) --

    def enqueue(
        self,
        name: str,
        value: float,
        *,
        unit: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            self.prometheus.dropped.inc()
        self._pending.append(PendingMetric(name, value, unit, data))
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- consumer side --

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="nlsql-metric-writer", daemon=True)
        self._thread.start()

    def stop(self, *, timeout_seconds: float = 5.0) -> None:
        """Stop the thread after a last flush."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the writer thread must survive a bad batch
                logger.exception("metric writer: flush failed")

    def _take_batch(self) -> list[PendingMetric]:
        batch: list[PendingMetric] = []
        while self._pending and len(batch) < self.batch_size:
            try:
                batch.append(self._pending.popleft())
            except IndexError:
                break
        return batch

    def flush(self) -> int:
        """Write everything pending now; returns how many rows were written."""
        written = 0
        with self._flush_lock:
            while batch := self._take_batch():
                self._observe(batch)
                rows = [
                    {
                        "metric_name": m.name,
                        "metric_value": m.value,
                        "metric_unit": m.unit,
                        "additional_data": _json_safe(m.data) if m.data else None,
                        "timestamp": m.timestamp,
                    }
                    for m in batch
                ]
                try:
                    # A Core executemany on the table (not the ORM's bulk insert, which maps
                    # every row first): a shorter turn at SQLite's write lock.
                    with self._session_factory() as session, session.begin():
                        session.connection().execute(_INSERT, rows)
                except Exception:
                    self.failed_batches += 1
                    self.dropped += len(rows)
                    self.prometheus.dropped.inc(len(rows))
                    logger.exception("metric writer: dropped a batch of %d metrics", len(rows))
                    continue
                written += len(rows)
        self.written += written
        self.prometheus.written.inc(written)
        self.prometheus.pending.set(len(self._pending))
        return written

    def _observe(self, batch: Iterable[PendingMetric]) -> None:
        for m in batch:
            if not math.isfinite(m.value):
                continue
            labels = {
                label: str(m.data[label])
                for label in PROMETHEUS_LABELS
                if m.data is not None and label in m.data
            }
            self.prometheus.observe(m.name, labels, m.value)


# Weak both ways: the writer holds a session factory bound to its engine, so a strong value
# would keep the key (and with it the engine, its pool and the app) alive for ever. The app
# keeps its writer (`app.state.metric_writer`) for as long as it lives.
_writers: weakref.WeakKeyDictionary[Engine, weakref.ref[MetricWriter]] = weakref.WeakKeyDictionary()


def register_metric_writer(engine: Engine, writer: MetricWriter | None) -> None:
    """Make `writer` the batch writer for sessions bound to `engine` (None unregisters); the
    caller keeps `writer` alive."""
    if writer is None:
        _writers.pop(engine, None)
    else:
        _writers[engine] = weakref.ref(writer)


def metric_writer_for(session: Session) -> MetricWriter | None:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    ref = _writers.get(engine)
    return ref() if ref is not None else None
