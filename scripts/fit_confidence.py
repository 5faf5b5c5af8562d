"""Refit the builtin engine's confidence model on question sets with gold SQL.

For every question the engine's reading is parsed and rendered (declined or not), its signals
are read the way `BuiltinGenerator` reads them, and the reading is scored against the gold
result (EX, as `nlsql eval` scores). A logistic regression of right-or-wrong on
`confidence.FEATURES` is fitted (each question set weighs the same, L2-regularised), so the
confidence is the probability that an answer is right. It prints:

* how well the score generalises: fitted on each set alone, its ranking quality (AUC) and
  precision/answered curve on every other set;
* the pooled model's weights and its precision/answered curve per set;
* the decline threshold: the lowest at which every set reaches `--precision` (else the one
  whose worst set is most precise).

    python scripts/fit_confidence.py --write \\
        ../shared/bench/business_dev/questions.json:../shared/bench/business_dev/database \\
        ../shared/bench/spider_train/questions.json:../shared/bench/spider_train/database

`--write` stores bias, weights and threshold in
`backend/nl2sql/engines/builtin/confidence_weights.json`, which the engine loads; refit after
any change to how the engine reads questions (its signals shift), then check with `nlsql eval`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.connections.executor import open_sqlite_read_only  # noqa: E402
from backend.connections.introspection import introspect  # noqa: E402
from backend.nl2sql.engines.base import (
    GenerationRequest,  # noqa: E402
    QuestionNotUnderstood,  # noqa: E402
)
from backend.nl2sql.engines.builtin import BuiltinGenerator  # noqa: E402
from backend.nl2sql.engines.builtin.confidence import (  # noqa: E402
    FEATURES,
    WEIGHTS_FILE,
    competing_readings,
    features,
    load_model,
)
from backend.nl2sql.errors import GuardRefused  # noqa: E402
from backend.nl2sql.evaluation import (  # noqa: E402
    guard_for_evaluation,
    has_top_level_order,
    load_questions,
    load_semantic_layer,
    open_read_only,
    results_match,
    run_sqlite,
)

NAMES = list(FEATURES)
THRESHOLDS = [round(0.30 + 0.01 * k, 2) for k in range(66)]


def observe(
    questions: Path, db_root: Path, layer_path: Path | None, limit: int | None
) -> list[Observation]:
    """One observation per question the engine has a reading for, read exactly as
    `BuiltinGenerator.generate` reads it (`BuiltinGenerator.read`: the parse, the join plan's
    clean-ups, the rendered SQL and every signal) and scored as `nlsql eval` scores it (the
    guarded SQL's rows against the gold's). A vetoed reading (`SELECT *`, a column of a table
    the query does not read, a rival reading that fits as well) is declined whatever the
    weights, so the fit leaves it out."""
    layer = load_semantic_layer(layer_path) if layer_path else None
    generator = BuiltinGenerator()
    out: list[Observation] = []
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
            conns[db_id] = open_read_only(path)
        request = GenerationRequest(
            question=item["question"], schema=snapshots[db_id], dialect="sqlite", semantic=layer
        )
        try:
            reading = generator.read(request)
            sql = guard_for_evaluation(reading.sql, dialect="sqlite", snapshot=snapshots[db_id])
        except (QuestionNotUnderstood, GuardRefused):
            continue
        except Exception:  # noqa: BLE001, S112 - the engine declines these too
            continue
        signals = reading.signals
        conn = conns[db_id]
        try:
            right = results_match(
                run_sqlite(conn, gold), run_sqlite(conn, sql), ordered=has_top_level_order(gold)
            )
        except sqlite3.Error:
            right = False
        feats = features(signals)
        vetoed = bool(
            signals.get("star")
            or signals.get("dangling_columns")
            or signals.get("ranked_single_row")
            or competing_readings(signals)
        )
        out.append(
            Observation(
                [feats[k] for k in NAMES],
                right,
                vetoed,
                item["question"],
                db_id,
                sql,
                signals,
                dict(reading.intent.recognised),
            )
        )
    for conn in conns.values():
        conn.close()
    return out


class Observation(NamedTuple):
    x: list[float]
    right: bool
    vetoed: bool
    question: str
    db_id: str
    sql: str
    signals: dict[str, float]
    recognised: dict[str, Any]


# What each doubt was judged to weigh before any fit: a defect of the reading itself (a lost
# negation, contradicting conditions, an id added up) should decline on its own, however rarely
# a dev set shows it. The fit is pulled toward these (not toward zero), so a rare signal keeps
# its judged weight and a common one takes the weight the data gives it.
PRIOR: dict[str, float] = {
    "unknown_share": -2.0, "weak_links": -0.5, "strong_share": 0.5, "unused_mentions": -0.5,
    "lost_negation": -4.0, "unasked_grouping": -0.5, "subject_unnamed": -0.3,
    "key_literals": -2.5, "unnamed_tables": -0.5, "lost_qualifiers": -2.5,
    "guessed_values": -3.0, "borrowed_label": -1.5, "far_weak_links": -1.5,
    "contradictions": -3.0, "ranked_by_text": -1.5, "summed_keys": -3.0,
    "type_mismatches": -3.0, "lost_aggregate": -2.5, "ambiguous_dates": -2.0,
    "grouped_by_value": -2.0, "lost_grouping": -2.0, "inferred_measures": -1.0,
    "value_or_column": -2.0, "bare_flags": -3.0, "degenerate_groups": -3.0,
    "unasked_keys": -2.0, "unexpressed_definitions": -3.0, "duplicate_selects": -2.0,
    "grouped_by_measure": -2.0, "uncounted": -3.0, "ambiguous_joins": -2.0,
    "tied_links": -2.0, "unanswered_when": -2.0, "late_shown": -1.0,
    "counted_rows": -2.0, "lost_disjunction": -3.0, "counted_superlatives": -3.0,
    "summed_non_additive": -3.0, "lost_contains": -3.0, "borrowed_reference": -3.0,
    "uncounted_thresholds": -3.0, "ranked_attributes": -3.0,
    "shown_flags": -3.0, "unshown_named_tables": -2.0, "bare_count_thresholds": -2.0,
    "mismatched_aggregates": -2.0, "generic_word_columns": -2.0,
    "unseen_names": -0.4, "echoed_values": -3.0, "unjustified_columns": -3.0,
    "unclear_value_roles": -3.0, "two_way_activity": -3.0, "grouped_by_quantity": -3.0,
    "counted_labels": -3.0, "tested_flags_shown": -3.0, "joins": 0.0,
}  # fmt: skip

DEFAULT_PRIOR = -2.0
"""The judged weight of a doubt `PRIOR` does not list yet (one added since): a defect of the
reading, declined on its own unless the data says otherwise. Without it a doubt that the
training sets never show would be fitted to nothing and silently stop declining."""


def priors(names: list[str]) -> dict[str, float]:
    """Each feature's judged weight: `PRIOR`'s, else `DEFAULT_PRIOR`."""
    return {n: PRIOR.get(n, DEFAULT_PRIOR) for n in names}


def fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, prior: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Weighted logistic regression by Newton steps, L2-pulled toward `prior` (default 0).
    A step that would raise the penalised loss is halved until it lowers it (a plain Newton
    step can overshoot and diverge where a feature nearly separates right from wrong)."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    centre = np.concatenate([[0.0], prior if prior is not None else np.zeros(x.shape[1])])
    beta = centre.copy()
    reg = np.eye(xb.shape[1]) * l2
    reg[0, 0] = 0.0

    def loss(b: np.ndarray) -> float:
        z = xb @ b
        nll = w * (np.logaddexp(0.0, z) - y * z)
        return float(nll.sum() + 0.5 * (b - centre) @ reg @ (b - centre))

    current = loss(beta)
    for _ in range(100):
        p = 1 / (1 + np.exp(-xb @ beta))
        grad = xb.T @ (w * (p - y)) + reg @ (beta - centre)
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        for _ in range(30):
            trial = loss(beta - step)
            if trial <= current:
                break
            step = step / 2
        beta -= step
        current = loss(beta)
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[0]), beta[1:]


Rows = list[tuple[list[float], bool]]


def _set_name(spec: str) -> str:
    parts = spec.split(":")
    name = Path(parts[0]).parent.name
    if name in ("paraphrases", "bench", ""):
        name = f"{name}/{Path(parts[0]).stem}"
    return name + ("+layer" if len(parts) > 2 else "")


def _scores(rows: Rows, bias: float, weights: np.ndarray) -> np.ndarray:
    xs = np.array([r[0] for r in rows], dtype=float).reshape(len(rows), len(NAMES))
    return np.asarray(1 / (1 + np.exp(-(bias + xs @ weights))))


def _auc(scores: np.ndarray, right: np.ndarray) -> float:
    """The chance a right reading scores above a wrong one (ties count half)."""
    pos, neg = scores[right], scores[~right]
    if not len(pos) or not len(neg):
        return float("nan")
    above = (pos[:, None] > neg[None, :]).mean()
    return float(above + 0.5 * (pos[:, None] == neg[None, :]).mean())


def _point(scores: np.ndarray, right: np.ndarray, total: int, t: float) -> tuple[float, float]:
    """(answered share of all questions, precision) when answering at confidence >= t."""
    kept = scores >= t
    return kept.sum() / total, (right[kept].mean() if kept.any() else 0.0)


def _fit_sets(
    data: list[tuple[str, Rows, int]], l2: float, power: float = 0.0
) -> tuple[float, np.ndarray]:
    """Each set weighs (its readings)**power: 0 every set the same, 1 every reading the same."""
    x = np.array([r[0] for _, rows, _ in data for r in rows], dtype=float)
    y = np.array([float(r[1]) for _, rows, _ in data for r in rows])
    w = np.concatenate(
        [np.full(len(rows), max(len(rows), 1) ** (power - 1.0)) for _, rows, _ in data]
    )
    w *= len(w) / w.sum()
    judged = priors(NAMES)
    return fit(x, y, w, l2, np.array([judged[n] for n in NAMES]))


def _rarely_seen(data: list[tuple[str, Rows, int]], fewer_than: int = 5) -> list[str]:
    """Features nonzero on fewer than `fewer_than` readings of all sets: their weight is
    essentially the judged one of `priors`, not learnt."""
    counts = np.zeros(len(NAMES))
    for _, rows, _ in data:
        for x, _ in rows:
            counts += np.array(x, dtype=float) != 0
    return [n for n, c in zip(NAMES, counts, strict=True) if c < fewer_than]


def _curve_line(data: list[tuple[str, Rows, int]], bias: float, weights: np.ndarray) -> str:
    parts = []
    for spec, rows, total in data:
        scores, right = _scores(rows, bias, weights), np.array([r[1] for r in rows])
        points = [_point(scores, right, total, t) for t in (0.5, 0.6, 0.7, 0.8, 0.9)]
        curve = " ".join(
            f"{t:.1f}:{a:.0%}/{p:.0%}"
            for t, (a, p) in zip((0.5, 0.6, 0.7, 0.8, 0.9), points, strict=True)
        )
        parts.append(f"{_set_name(spec)} AUC {_auc(scores, right):.3f} answered/precision {curve}")
    return "; ".join(parts)


def _observed(spec: str, cache: Path | None, limit: int | None) -> list[Observation]:
    """`observe` for one QUESTIONS.json:DB_ROOT[:LAYER.yaml], read from `cache` when a run
    with the same engine source stored it there."""
    parts = spec.split(":")
    layer = Path(parts[2]) if len(parts) > 2 else None
    if cache is None:
        return observe(Path(parts[0]), Path(parts[1]), layer, limit)
    engine = Path(__file__).resolve().parents[1] / "backend" / "nl2sql" / "engines" / "builtin"
    digest = hashlib.sha256(f"{spec}|{limit}".encode())
    for part in parts[:1] + parts[2:]:  # the questions (and the layer) as they are now
        digest.update(Path(part).read_bytes())
    for source in sorted(engine.glob("*.py")):
        digest.update(source.read_bytes())
    path = cache / f"{digest.hexdigest()[:24]}.json"
    if path.is_file():
        return [Observation(*row) for row in json.loads(path.read_text(encoding="utf-8"))]
    rows = observe(Path(parts[0]), Path(parts[1]), layer, limit)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([list(row) for row in rows], default=str), encoding="utf-8")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="QUESTIONS.json:DB_ROOT[:LAYER.yaml]")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--l2", type=float, default=10.0)
    parser.add_argument("--precision", type=float, default=0.85)
    parser.add_argument(
        "--no-drop",
        action="store_true",
        help="the threshold must also keep every set as precise as the shipped model keeps it",
    )
    parser.add_argument(
        "--set-power",
        type=float,
        default=0.0,
        help="each set weighs (its readings)**P in the pooled fit: 0 the same, 1 by size",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep each set's readings here (reruns skip them)"
    )
    parser.add_argument(
        "--measure",
        action="append",
        default=[],
        metavar="QUESTIONS.json:DB_ROOT[:LAYER.yaml]",
        help="a set only measured, never fitted on (bench/heldout, bench/paraphrases): the"
        " shipped model's and the fit's answered/precision/EX on it, side by side",
    )
    parser.add_argument("--write", action="store_true", help=f"rewrite {WEIGHTS_FILE.name}")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="the decline threshold to store (default: the lowest reaching --precision)",
    )
    args = parser.parse_args()
    unlisted = [n for n in NAMES if n not in PRIOR]
    if unlisted:
        print(f"judged at {DEFAULT_PRIOR} (not in PRIOR): " + ", ".join(unlisted), file=sys.stderr)
    data: list[tuple[str, Rows, int]] = []
    measured: list[tuple[str, Rows, int]] = []
    for spec in args.measure:
        rows = _observed(spec, args.cache, args.limit)
        total = len(load_questions(Path(spec.split(":")[0]))[: args.limit])
        measured.append((spec, [(r.x, r.right) for r in rows if not r.vetoed], total))
        print(f"{spec}: {len(rows)} readings of {total} questions (measured only)", file=sys.stderr)
    for spec in args.sets:
        parts = spec.split(":")
        rows = _observed(spec, args.cache, args.limit)
        total = len(load_questions(Path(parts[0]))[: args.limit])
        data.append((spec, [(r.x, r.right) for r in rows if not r.vetoed], total))
        print(f"{spec}: {len(rows)} readings of {total} questions", file=sys.stderr)
    if len(data) > 1:
        print("generalisation (fitted on one set, measured on each):")
        for held in data:
            bias, weights = _fit_sets([held], args.l2)
            print(f"  fitted on {_set_name(held[0])}: {_curve_line(data, bias, weights)}")
    bias, weights = _fit_sets(data, args.l2, args.set_power)
    print(f"pooled fit: {_curve_line(data, bias, weights)}")
    print("calibration (mean confidence -> share right, per band of confidence):")
    for spec, rows, _ in data:
        scores, right = _scores(rows, bias, weights), np.array([r[1] for r in rows])
        bands = []
        for low, high in ((0.0, 0.3), (0.3, 0.45), (0.45, 0.6), (0.6, 0.75), (0.75, 1.01)):
            inside = (scores >= low) & (scores < high)
            if inside.any():
                bands.append(
                    f"[{low:.2f},{min(high, 1):.2f}) n={inside.sum()}"
                    f" {scores[inside].mean():.2f}->{right[inside].mean():.2f}"
                )
        print(f"  {_set_name(spec)}: " + "  ".join(bands))
    print(f"bias {bias:.3f}")
    for name, value in sorted(zip(NAMES, weights, strict=True), key=lambda nv: nv[1]):
        print(f"  {name:26s} {value:+.3f}")
    shipped = load_model()
    shipped_weights = np.array([shipped.weights[n] for n in NAMES])
    floors = []  # each set's precision the threshold must reach
    for _, rows, total in data:
        scores, right = _scores(rows, shipped.bias, shipped_weights), np.array([r[1] for r in rows])
        floors.append(
            max(args.precision, _point(scores, right, total, shipped.threshold)[1])
            if args.no_drop
            else args.precision
        )
    worst: list[tuple[float, float]] = []
    print("threshold  " + "  ".join(f"{_set_name(s):>28s}" for s, _, _ in data))
    for t in THRESHOLDS:
        line, precisions = [], []
        for _, rows, total in data:
            scores, right = _scores(rows, bias, weights), np.array([r[1] for r in rows])
            answered, precision = _point(scores, right, total, t)
            precisions.append(precision if answered else 0.0)
            line.append(f"answered {answered:6.1%} precision {precision:6.1%}")
        worst.append((t, min(p - f for p, f in zip(precisions, floors, strict=True))))
        if round(t * 100) % 5 == 0:
            print(f"  {t:.2f}     " + "  ".join(line))
    reaching = [t for t, margin in worst if margin >= 0]
    threshold = reaching[0] if reaching else max(worst, key=lambda tm: tm[1])[0]
    print(
        f"threshold {threshold:.2f}: "
        + ("every set reaches" if reaching else "no threshold reaches")
        + " precision "
        + ", ".join(f"{f:.1%}" for f in floors)
    )
    if args.threshold is not None:
        threshold = args.threshold
        print(f"threshold {threshold:.2f} as given")
    for label, (b, w, t) in {
        f"shipped model (threshold {shipped.threshold:.2f})": (
            shipped.bias,
            shipped_weights,
            shipped.threshold,
        ),
        f"this fit (threshold {threshold:.2f})": (bias, weights, threshold),
    }.items():
        points = []
        for spec, rows, total in data + measured:
            scores, right = _scores(rows, b, w), np.array([r[1] for r in rows])
            answered, precision = _point(scores, right, total, t)
            auc = _auc(scores, right)
            points.append(
                f"{_set_name(spec)} {answered:.1%}/{precision:.1%}"
                f" (EX {answered * precision:.1%}, AUC {auc:.3f})"
            )
        print(f"{label}: answered/precision " + "; ".join(points))
    if measured:
        print("(after the first " + str(len(data)) + " sets: measured only, never fitted on)")
    if args.write:
        model = {
            "bias": round(bias, 3),
            "threshold": threshold,
            "weights": {n: round(float(v), 3) for n, v in zip(NAMES, weights, strict=True)},
            "fitted_on": [f"{_set_name(s)}: {len(rows)} readings" for s, rows, _ in data],
            "precision_target": args.precision,
            "l2": args.l2,
            "threshold_rule": (
                "given"
                if args.threshold is not None
                else f"lowest reaching {args.precision:.0%}"
                + (" and the shipped model's precision on every set" if args.no_drop else "")
            ),
            "set_power": args.set_power,
            "judged": _rarely_seen(data),
        }
        WEIGHTS_FILE.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS_FILE}")


if __name__ == "__main__":
    main()
