"""Refit the builtin engine's confidence weights on question sets with gold SQL.

For every question the engine's reading is parsed and rendered (declined or not), its signals
are read the way `BuiltinGenerator` reads them, and the reading is scored against the gold
result (EX, as `nlsql eval` scores). A logistic regression of right-or-wrong on the features of
`confidence.features` is fitted (each question set weighs the same, L2-regularised), and the
precision/answered curve of the fitted score is printed per set, with the lowest threshold at
which every set reaches the wanted precision.

    python scripts/fit_confidence.py \\
        ../shared/bench/business_dev/questions.json:../shared/bench/business_dev/database \\
        ../shared/bench/spider_train/questions.json:../shared/bench/spider_train/database

Paste the printed weights into `backend/nl2sql/engines/builtin/confidence.py` (rounded) and
re-run `nlsql eval` on each set to check the curve it prints.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.connections.executor import open_sqlite_read_only  # noqa: E402
from backend.connections.introspection import introspect  # noqa: E402
from backend.nl2sql.engines.base import QuestionNotUnderstood  # noqa: E402
from backend.nl2sql.engines.builtin import (  # noqa: E402
    parse,  # noqa: E402
    schema_index,
    sqlglot_dialect,
)
from backend.nl2sql.engines.builtin.confidence import (  # noqa: E402
    _WEIGHTS,
    features,
    sql_signals,
)
from backend.nl2sql.engines.builtin.sqlbuild import render  # noqa: E402
from backend.nl2sql.evaluation import (  # noqa: E402
    has_top_level_order,
    load_questions,
    load_semantic_layer,
    results_match,
    run_sqlite,
)

NAMES = list(_WEIGHTS)


def observe(
    questions: Path, db_root: Path, layer_path: Path | None, limit: int | None
) -> list[Any]:
    """(feature vector, right?, star?) per question the engine has a reading for."""
    layer = load_semantic_layer(layer_path) if layer_path else None
    rows: list[Any] = []
    snapshots: dict[str, Any] = {}
    conns: dict[str, sqlite3.Connection] = {}
    for item in load_questions(questions)[:limit]:
        db_id, gold = item["db_id"], item.get("query")
        if not gold:
            continue
        path = db_root / db_id / f"{db_id}.sqlite"
        if db_id not in snapshots:
            engine = open_sqlite_read_only(path)
            snapshots[db_id] = introspect(engine, db_type="sqlite", database_name=db_id)
            engine.dispose()
            conns[db_id] = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            conns[db_id].text_factory = lambda b: b.decode("utf-8", errors="replace")
        index = schema_index(snapshots[db_id], layer)
        try:
            intent = parse(item["question"], index)
            sql = render(intent, index, "sqlite")
        except QuestionNotUnderstood:
            continue
        except Exception:  # noqa: BLE001, S112 - the engine declines these too
            continue
        signals = {
            **intent.signals,
            **sql_signals(sql, sqlglot_dialect("sqlite"), intent, item["question"], index),
        }
        conn = conns[db_id]
        try:
            right = results_match(
                run_sqlite(conn, gold), run_sqlite(conn, sql), ordered=has_top_level_order(gold)
            )
        except sqlite3.Error:
            right = False
        feats = features(signals)
        rows.append(([feats[k] for k in NAMES], right, bool(signals.get("star"))))
    for conn in conns.values():
        conn.close()
    return rows


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """Weighted logistic regression by Newton steps."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(xb.shape[1])
    reg = np.eye(xb.shape[1]) * l2
    reg[0, 0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-xb @ beta))
        grad = xb.T @ (w * (p - y)) + reg @ beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[0]), beta[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="QUESTIONS.json:DB_ROOT[:LAYER.yaml]")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--l2", type=float, default=2.0)
    parser.add_argument("--precision", type=float, default=0.85)
    args = parser.parse_args()
    data: list[tuple[str, list[Any], int]] = []
    for spec in args.sets:
        parts = spec.split(":")
        layer = Path(parts[2]) if len(parts) > 2 else None
        rows = observe(Path(parts[0]), Path(parts[1]), layer, args.limit)
        total = len(load_questions(Path(parts[0]))[: args.limit])
        data.append((spec, [r for r in rows if not r[2]], total))
        print(f"{spec}: {len(rows)} readings of {total} questions", file=sys.stderr)
    x = np.array([r[0] for _, rows, _ in data for r in rows], dtype=float)
    y = np.array([float(r[1]) for _, rows, _ in data for r in rows])
    w = np.concatenate([np.full(len(rows), 1.0 / max(len(rows), 1)) for _, rows, _ in data])
    w *= len(w) / w.sum()
    bias, weights = fit(x, y, w, args.l2)
    print(f"_BIAS = {bias:.2f}")
    for name, value in zip(NAMES, weights, strict=True):
        print(f'    "{name}": {value:.2f},')
    thresholds = [round(t, 2) for t in np.arange(0.3, 0.96, 0.05)]
    ok_everywhere: list[float] = []
    for t in thresholds:
        line = [f"t={t:.2f}"]
        good = True
        for spec, rows, total in data:
            xs = np.array([r[0] for r in rows], dtype=float)
            conf = 1 / (1 + np.exp(-(bias + xs @ weights)))
            kept = [r[1] for r, c in zip(rows, conf, strict=True) if c >= t]
            prec = sum(kept) / len(kept) if kept else 0.0
            good &= prec >= args.precision
            line.append(
                f"{Path(spec.split(':')[0]).parent.name}: answered {len(kept) / total:.1%}"
                f" precision {prec:.1%} EX {sum(kept) / total:.1%}"
            )
        if good:
            ok_everywhere.append(t)
        print("  ".join(line))
    print(f"lowest threshold with precision >= {args.precision:.0%} on every set:",
          ok_everywhere[0] if ok_everywhere else None)  # fmt: skip


if __name__ == "__main__":
    main()
