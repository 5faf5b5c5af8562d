"""The batch writer's latency histograms in Prometheus text exposition format."""

from __future__ import annotations

from typing import Any

from backend.observability.metric_writer import LATENCY_BUCKETS_MS, MetricWriter


def _prometheus_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(writer: MetricWriter) -> str:
    """The writer's histograms (cumulative since the process started), in Prometheus format."""
    writer.flush()
    lines: list[str] = []
    by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], Any]]] = {}
    for (name, labels), histogram in sorted(writer.histogram_snapshot().items()):
        by_name.setdefault(name, []).append((labels, histogram))
    for name, series in by_name.items():
        metric = f"nlsql_{name}_seconds"
        lines.append(f"# HELP {metric} {name.replace('_', ' ')} in seconds.")
        lines.append(f"# TYPE {metric} histogram")
        for labels, histogram in series:
            base = ",".join(f'{k}="{_prometheus_label_value(v)}"' for k, v in labels)
            prefix = base + "," if base else ""
            cumulative = 0
            for bound, bucket in zip(LATENCY_BUCKETS_MS, histogram.bucket_counts, strict=True):
                cumulative += bucket
                lines.append(f'{metric}_bucket{{{prefix}le="{bound / 1000:g}"}} {cumulative}')
            lines.append(f'{metric}_bucket{{{prefix}le="+Inf"}} {histogram.count}')
            braces = f"{{{base}}}" if base else ""
            lines.append(f"{metric}_sum{braces} {histogram.total / 1000:.6f}")
            lines.append(f"{metric}_count{braces} {histogram.count}")
    for counter, value, help_text in (
        ("nlsql_metrics_written_total", writer.written, "Metric rows the batch writer stored."),
        ("nlsql_metrics_dropped_total", writer.dropped, "Metrics dropped (queue full or error)."),
    ):
        lines.append(f"# HELP {counter} {help_text}")
        lines.append(f"# TYPE {counter} counter")
        lines.append(f"{counter} {value}")
    lines.append("# HELP nlsql_metrics_pending Metrics waiting for the batch writer.")
    lines.append("# TYPE nlsql_metrics_pending gauge")
    lines.append(f"nlsql_metrics_pending {writer.pending}")
    return "\n".join(lines) + "\n"
