"""What reading an imported semantic-layer document costs at the size limit: the platform's
reader (libyaml's `CSafeLoader` where PyYAML has it) against the same checks and load with
PyYAML's pure-Python `SafeLoader`, alternated in this process.

    python scripts/bench/bench_layer_import.py [--rounds 3] [--json]

The document is just under `MAX_IMPORT_BYTES` (512 KiB): a layer with thousands of synonyms, the
most items a client can send. Prints the median read time of each and their ratio (platform ÷
pure Python); the ratio is what to read on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.semantic import documents  # noqa: E402


def _document() -> bytes:
    lines = ["tables:", "- name: customers", "  synonyms:"]
    size = sum(len(line) + 1 for line in lines)
    index = 0
    while True:
        line = f"  - word{index}"
        if size + len(line) + 1 >= documents.MAX_IMPORT_BYTES:
            break
        lines.append(line)
        size += len(line) + 1
        index += 1
    return ("\n".join(lines) + "\n").encode()


def _median_ms(work: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    raw = _document()
    platform_loader = documents.YAML_LOADER
    platform_ms: list[float] = []
    python_ms: list[float] = []
    try:
        for _ in range(3):  # alternate, so a change of load touches both alike
            documents.YAML_LOADER = platform_loader
            platform_ms.append(_median_ms(lambda: documents.read_layer(raw), args.rounds))
            documents.YAML_LOADER = yaml.SafeLoader
            python_ms.append(_median_ms(lambda: documents.read_layer(raw), args.rounds))
    finally:
        documents.YAML_LOADER = platform_loader
    result: dict[str, object] = {
        "document_bytes": len(raw),
        "platform_loader": platform_loader.__name__,
        "platform_read_ms": round(statistics.median(platform_ms), 1),
        "pure_python_read_ms": round(statistics.median(python_ms), 1),
    }
    result["ratio"] = round(statistics.median(platform_ms) / statistics.median(python_ms), 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:22} {value}")


if __name__ == "__main__":
    main()
