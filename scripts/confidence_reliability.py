"""A reliability table of the builtin engine's confidence from `nlsql eval --out` files.

For each band of confidence: how many readings fall in it, their mean confidence and the share
whose result was right (an answered question's answer; a declined one's reading, the SQL it
offered as its first suggestion). A confidence that means something has the share right close
to the mean confidence in every band, on the sets it was fitted on and on held-out ones alike.

    python scripts/confidence_reliability.py /tmp/ev-sp.json /tmp/ev-ho.json ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

BANDS = ((0.0, 0.3), (0.3, 0.45), (0.45, 0.6), (0.6, 0.75), (0.75, 0.9), (0.9, 1.01))


def readings(path: Path) -> list[tuple[float, bool, bool]]:
    """(confidence, right?, answered?) of every question the engine had a reading for."""
    out: list[tuple[float, bool, bool]] = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        confidence = row.get("confidence")
        if confidence is None:
            continue
        if row.get("sql") is not None:
            out.append((float(confidence), bool(row.get("correct")), True))
        elif row.get("candidate_sql") is not None and row.get("candidate_correct") is not None:
            out.append((float(confidence), bool(row["candidate_correct"]), False))
    return out


def table(rows: list[tuple[float, bool, bool]]) -> list[str]:
    lines = []
    for low, high in BANDS:
        inside = [r for r in rows if low <= r[0] < high]
        answered = [r for r in inside if r[2]]
        if not inside:
            continue
        mean = sum(r[0] for r in inside) / len(inside)
        right = sum(r[1] for r in inside) / len(inside)
        answered_right = (
            f"{sum(r[1] for r in answered) / len(answered):6.1%}" if answered else "     -"
        )
        lines.append(
            f"  [{low:.2f}, {min(high, 1.0):.2f})  n {len(inside):5d}  mean confidence"
            f" {mean:5.2f}  right {right:6.1%}  answered {len(answered):5d} right {answered_right}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("outs", nargs="+", type=Path, help="files written by nlsql eval --out")
    args = parser.parse_args()
    for path in args.outs:
        rows = readings(path)
        print(f"{path.name}: {len(rows)} readings")
        for line in table(rows):
            print(line)


if __name__ == "__main__":
    main()
