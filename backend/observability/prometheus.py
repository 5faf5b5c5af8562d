"""Latency histograms and writer counters in Prometheus text format, across every worker.

The batch writer observes each metric into `prometheus_client` histograms. With
`PROMETHEUS_MULTIPROC_DIR` set (as `nlsql serve --workers N` does), every process writes its
samples to files in that directory and a scrape of any one process reads them all, so the
output aggregates every worker (including ones that exited). Without it, a process serves its
own. Samples reach Prometheus when the writer flushes (about every second).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from backend.observability.metric_writer import MetricWriter

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class PrometheusSink:
    """The Prometheus side of one metric writer: a histogram per metric name (seconds)."""

    def __init__(self, buckets_ms: Sequence[float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._buckets = tuple(b / 1000 for b in buckets_ms)
        self._histograms: dict[str, tuple[Histogram, tuple[str, ...]]] = {}
        self.written = Counter(
            "nlsql_metrics_written", "Metric rows the batch writer stored.", registry=self.registry
        )
        self.dropped = Counter(
            "nlsql_metrics_dropped",
            "Metrics dropped (queue full or error).",
            registry=self.registry,
        )
        self.pending = Gauge(
            "nlsql_metrics_pending",
            "Metrics waiting for the batch writer.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def observe(self, name: str, labels: Mapping[str, str], value_ms: float) -> None:
        entry = self._histograms.get(name)
        if entry is None:
            # A metric name always comes from one place, with one set of labels.
            names = tuple(labels)
            histogram = Histogram(
                f"nlsql_{name}_seconds",
                f"{name.replace('_', ' ')} in seconds.",
                labelnames=names,
                buckets=self._buckets,
                registry=self.registry,
            )
            entry = self._histograms[name] = (histogram, names)
        histogram, names = entry
        values = [labels.get(label, "") for label in names]
        (histogram.labels(*values) if names else histogram).observe(value_ms / 1000)

    def text(self) -> bytes:
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


def prometheus_text(writer: MetricWriter) -> str:
    """Every worker's histograms (cumulative since the workers started), in Prometheus format."""
    writer.flush()
    return writer.prometheus.text().decode()
