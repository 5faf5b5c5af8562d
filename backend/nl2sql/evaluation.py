"""`nlsql eval`: run a generator over a question set and measure execution accuracy (EX)."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import (
    GenerationError,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
)
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import guard_sql
from backend.semantic.layer import SemanticLayer

QUERY_TIME_LIMIT_SECONDS = 10.0
"""Gold and predicted queries each get this long before they count as failed."""
EVAL_ROW_CAP = 100_000
"""Row cap handed to the guard: high, so the cap does not cut results that gold returns whole."""
FLOAT_DECIMALS = 6
"""Floats are rounded to this many decimals before comparing (sum order must not matter)."""
MAX_PERMUTED_COLUMNS = 6
DIFFICULTIES = ("easy", "medium", "hard", "extra")
CURVE_THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
"""Confidence cut-offs the precision/answered curve is reported at."""


class EvaluationInputError(ValueError):
    """The questions file or database folder is not usable."""


@dataclass(slots=True)
class Prediction:
    db_id: str
    question: str
    sql: str | None
    error: str | None
    ms: float
    confidence: float | None = None
    """The engine's confidence in its reading, answered or declined as too weak."""
    candidate_sql: str | None = None
    """The reading's SQL, also when the engine declined it as too weak (for the curve)."""
    correct: bool | None = None
    """Whether the answer's rows match the gold's (None without gold)."""
    candidate_correct: bool | None = None
    """Whether `candidate_sql`'s rows match the gold's (None without gold or candidate)."""


@dataclass(slots=True)
class Tally:
    total: int = 0
    answered: int = 0
    correct: int = 0

    def add(self, *, answered: bool, correct: bool) -> None:
        self.total += 1
        self.answered += answered
        self.correct += correct

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.answered if self.answered else 0.0


@dataclass(slots=True)
class EvaluationReport:
    predictions: list[Prediction]
    overall: Tally = field(default_factory=Tally)
    by_difficulty: dict[str, Tally] = field(default_factory=dict)
    by_database: dict[str, Tally] = field(default_factory=dict)
    by_level: dict[str, Tally] = field(default_factory=dict)
    """By the questions' own `level` field, where they carry one."""
    by_tag: dict[str, Tally] = field(default_factory=dict)
    """By each of the questions' `phenomena` tags, where they carry them."""
    correct: list[bool | None] = field(default_factory=list)
    """Per question: EX verdict, or None when the question has no gold query."""
    candidate_correct: list[bool | None] = field(default_factory=list)
    """Per question: EX verdict of the reading's SQL, declined or not (None: no reading)."""
    groups: dict[str, list[tuple[Any, ...] | None]] = field(default_factory=dict)
    """Paraphrase group -> each member's result (None: declined or failed)."""
    group_right: dict[str, list[bool]] = field(default_factory=dict)
    semantic_layer: str | None = None
    """What semantic layer the generator was given (a file and its size), None: none."""

    @property
    def has_gold(self) -> bool:
        return self.overall.total > 0

    @property
    def decline_rate(self) -> float:
        n = len(self.predictions)
        return sum(p.sql is None for p in self.predictions) / n if n else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(p.ms for p in self.predictions) if self.predictions else 0.0

    @property
    def p95_ms(self) -> float:
        times = sorted(p.ms for p in self.predictions)
        if not times:
            return 0.0
        return times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]

    @property
    def consistency(self) -> float | None:
        """Share of paraphrase groups whose members all answered with one same result."""
        if not self.groups:
            return None
        same = sum(
            all(r is not None for r in results) and len(set(results)) == 1
            for results in self.groups.values()
        )
        return same / len(self.groups)

    @property
    def groups_all_right(self) -> float | None:
        if not self.group_right:
            return None
        return sum(all(v) for v in self.group_right.values()) / len(self.group_right)

    def curve(self, thresholds: Sequence[float] = CURVE_THRESHOLDS) -> list[dict[str, Any]]:
        """Answered share and precision if the engine answered only at confidence >= t."""
        points: list[dict[str, Any]] = []
        scored = [
            (p.confidence, ok)
            for p, ok in zip(self.predictions, self.candidate_correct, strict=True)
            if ok is not None and p.confidence is not None
        ]
        total = sum(c is not None for c in self.correct)
        for t in thresholds:
            kept = [ok for conf, ok in scored if conf >= t]
            right = sum(kept)
            points.append(
                {
                    "threshold": t,
                    "answered": round(len(kept) / total, 4) if total else 0.0,
                    "precision": round(right / len(kept), 4) if kept else 0.0,
                    "accuracy": round(right / total, 4) if total else 0.0,
                }
            )
        return points

    def summary(self) -> dict[str, Any]:
        def tally(t: Tally) -> dict[str, Any]:
            return {
                "total": t.total,
                "answered": t.answered,
                "correct": t.correct,
                "accuracy": round(t.accuracy, 4),
                "precision": round(t.precision, 4),
            }

        return {
            "questions": len(self.predictions),
            "semantic_layer": self.semantic_layer,
            "decline_rate": round(self.decline_rate, 4),
            "median_ms": round(self.median_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "overall": tally(self.overall) if self.has_gold else None,
            "by_difficulty": {k: tally(v) for k, v in self.by_difficulty.items()},
            "by_level": {k: tally(v) for k, v in self.by_level.items()},
            "by_tag": {k: tally(v) for k, v in sorted(self.by_tag.items())},
            "by_database": {k: tally(v) for k, v in sorted(self.by_database.items())},
            "paraphrase_groups": len(self.groups),
            "consistency": None if self.consistency is None else round(self.consistency, 4),
            "groups_all_right": (
                None if self.groups_all_right is None else round(self.groups_all_right, 4)
            ),
            "curve": self.curve() if self.has_gold else [],
        }


# ------------------------------------------------------------------ the guard call site


def guard_for_evaluation(sql: str, *, dialect: str, snapshot: SchemaSnapshot) -> str:
    """The SQL the API would run: the guard's rewrite of `sql`; raises `GuardRefused`."""
    return guard_sql(sql, dialect=dialect, snapshot=snapshot, row_cap=EVAL_ROW_CAP).sql


# ------------------------------------------------------------------ result comparison


def gold_difficulty(sql: str) -> str:
    """Bucket a gold query by its joins, aggregates, subqueries and set operations."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return "extra"
    joins = len(list(tree.find_all(exp.Join)))
    aggregates = len(list(tree.find_all(exp.AggFunc)))
    subqueries = max(len(list(tree.find_all(exp.Select))) - 1, 0)
    set_ops = len(list(tree.find_all(exp.Union, exp.Intersect, exp.Except)))
    score = joins + aggregates + 2 * subqueries + 2 * set_ops
    if score <= 1:
        return "easy"
    if score == 2:
        return "medium"
    if score <= 4:
        return "hard"
    return "extra"


def has_top_level_order(sql: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.ParseError:
        return "order by" in sql.lower()
    return tree.args.get("order") is not None


def normalise_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer():
            return int(value)
        return round(value, FLOAT_DECIMALS)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(normalise_value(v) for v in row) for row in rows]


def results_match(
    gold: Sequence[Sequence[Any]], predicted: Sequence[Sequence[Any]], *, ordered: bool
) -> bool:
    """EX: same rows (as multisets, or sequences when `ordered`), columns in any order."""
    g, p = _rows(gold), _rows(predicted)
    if len(g) != len(p):
        return False
    if not g:
        return True
    width = len(g[0])
    if any(len(r) != width for r in p):
        return False

    def same(candidate: list[tuple[Any, ...]]) -> bool:
        return candidate == g if ordered else Counter(candidate) == Counter(g)

    if same(p):
        return True
    if width > MAX_PERMUTED_COLUMNS or width == 1:
        return False
    gold_columns = [Counter(r[i] for r in g) for i in range(width)]
    pred_columns = [Counter(r[i] for r in p) for i in range(width)]
    for perm in itertools.permutations(range(width)):
        if any(pred_columns[j] != gold_columns[i] for i, j in enumerate(perm)):
            continue
        if same([tuple(r[j] for j in perm) for r in p]):
            return True
    return False


def open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.text_factory = lambda b: b.decode("utf-8", errors="replace")
    return conn


def run_sqlite(
    conn: sqlite3.Connection, sql: str, *, time_limit_s: float = QUERY_TIME_LIMIT_SECONDS
) -> list[tuple[Any, ...]]:
    """Run `sql` with a time limit; raises `sqlite3.Error` (an interrupt when it times out)."""
    deadline = time.monotonic() + time_limit_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.set_progress_handler(None, 0)


# ------------------------------------------------------------------ the run


def load_questions(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise EvaluationInputError(f"cannot read questions from {path}: {exc}") from exc
    if not isinstance(data, list) or not all(
        isinstance(q, dict)
        and isinstance(q.get("db_id"), str)
        and isinstance(q.get("question"), str)
        for q in data
    ):
        raise EvaluationInputError(
            f"{path} must be a JSON list of objects with 'db_id' and 'question'"
        )
    return data


def load_semantic_layer(path: Path) -> SemanticLayer:
    """A semantic-layer document from a YAML or JSON file, read with the same bounds and checks
    as an import over the API (`semantic.documents.read_layer`)."""
    from backend.semantic.documents import read_layer
    from backend.semantic.errors import SemanticLayerInvalid, SemanticLayerUnreadable

    try:
        return read_layer(path.read_bytes())
    except OSError as exc:
        raise EvaluationInputError(f"cannot read a semantic layer from {path}: {exc}") from exc
    except SemanticLayerInvalid as exc:
        problems = "; ".join(
            f"{e.get('field')}: {e.get('message')}" for e in exc.details.get("errors", [])
        )
        raise EvaluationInputError(f"{path} is not a semantic-layer document: {problems}") from exc
    except SemanticLayerUnreadable as exc:
        reason = exc.details.get("reason", exc.message)
        raise EvaluationInputError(f"cannot read a semantic layer from {path}: {reason}") from exc


def describe_layer(layer: SemanticLayer, source: str | None = None) -> str:
    """One line naming a layer by its source and size, for reports."""
    size = (
        f"{len(layer.tables)} tables, {len(layer.measures)} measures, "
        f"{len(layer.filters)} filters, {len(layer.joins)} joins"
    )
    return f"{source} ({size})" if source else size


def get_generator(name: str, settings: Callable[[], Settings]) -> SqlGenerator:
    """The registry's generator of that name. `settings` is called only for a generator that
    reads settings (the LLM ones, their keys), and every generator that gets settings gets
    validated ones: scoring the offline engine on question files needs no platform settings,
    and loading them would write the embedded default's secrets file into the working
    directory."""
    available = registry.generator_names()
    if name not in available:
        raise EvaluationInputError(f"unknown engine '{name}' (available: {', '.join(available)})")
    offline = registry.settings_free_generator(name)
    if offline is not None:
        return offline
    return registry.get_generator(name, settings())


def evaluate(
    questions: list[dict[str, Any]],
    *,
    db_root: Path,
    generator: SqlGenerator,
    on_progress: Callable[[int], None] | None = None,
    semantic: SemanticLayer | None = None,
) -> EvaluationReport:
    """Generate SQL for every question, guard it, and score it against gold where present.

    `semantic` is handed to the generator as every request's semantic layer."""
    snapshots: dict[str, SchemaSnapshot] = {}
    report = EvaluationReport(predictions=[])
    if semantic is not None:
        report.semantic_layer = describe_layer(semantic)
    connections: dict[str, sqlite3.Connection] = {}
    try:
        for item in questions:
            db_id = item["db_id"]
            path = db_root / db_id / f"{db_id}.sqlite"
            if db_id not in snapshots:
                if not path.is_file():
                    raise EvaluationInputError(f"no database for '{db_id}' at {path}")
                engine = open_sqlite_read_only(path)
                try:
                    snapshots[db_id] = introspect(engine, db_type="sqlite", database_name=db_id)
                finally:
                    engine.dispose()
            prediction = _predict(
                generator, item["question"], db_id, snapshots[db_id], semantic=semantic
            )
            report.predictions.append(prediction)
            gold = item.get("query")
            if isinstance(gold, str) and gold.strip():
                if db_id not in connections:
                    connections[db_id] = open_read_only(path)
                conn = connections[db_id]
                ordered = has_top_level_order(gold)
                gold_rows = _run_or_none(conn, gold)
                predicted_rows = _run_or_none(conn, prediction.sql)
                correct = _matches(gold_rows, predicted_rows, ordered=ordered)
                report.correct.append(correct)
                prediction.correct = correct
                if prediction.candidate_sql is None:
                    candidate_correct: bool | None = None
                elif prediction.candidate_sql == prediction.sql:
                    candidate_correct = correct
                else:
                    candidate_rows = _run_or_none(conn, prediction.candidate_sql)
                    candidate_correct = _matches(gold_rows, candidate_rows, ordered=ordered)
                report.candidate_correct.append(candidate_correct)
                prediction.candidate_correct = candidate_correct
                answered = prediction.sql is not None
                buckets = [
                    report.overall,
                    report.by_difficulty.setdefault(gold_difficulty(gold), Tally()),
                    report.by_database.setdefault(db_id, Tally()),
                ]
                level = item.get("level")
                if isinstance(level, str):
                    buckets.append(report.by_level.setdefault(level, Tally()))
                tags = item.get("phenomena")
                if isinstance(tags, list):
                    buckets += [report.by_tag.setdefault(str(t), Tally()) for t in tags]
                for bucket in buckets:
                    bucket.add(answered=answered, correct=correct)
                group = item.get("group")
                if isinstance(group, str):
                    report.groups.setdefault(group, []).append(
                        _result_key(predicted_rows, ordered=ordered)
                    )
                    report.group_right.setdefault(group, []).append(correct)
            else:
                report.correct.append(None)
                report.candidate_correct.append(None)
            if on_progress is not None:
                on_progress(1)
    finally:
        for conn in connections.values():
            conn.close()
    report.by_difficulty = {
        d: report.by_difficulty[d] for d in DIFFICULTIES if d in report.by_difficulty
    }
    report.by_level = {
        d: report.by_level[d]
        for d in sorted(report.by_level, key=lambda k: (DIFFICULTIES + (k,)).index(k))
    }
    return report


def _predict(
    generator: SqlGenerator,
    question: str,
    db_id: str,
    snapshot: SchemaSnapshot,
    *,
    semantic: SemanticLayer | None = None,
) -> Prediction:
    started = time.perf_counter()
    sql: str | None = None
    error: str | None = None
    confidence: float | None = None
    candidate: str | None = None
    try:
        generation = generator.generate(
            GenerationRequest(
                question=question, schema=snapshot, dialect="sqlite", semantic=semantic
            )
        )
        confidence = generation.confidence
        try:
            sql = guard_for_evaluation(generation.sql, dialect="sqlite", snapshot=snapshot)
            candidate = sql
        except GuardRefused as exc:
            error = f"refused by the guard: {exc}"
    except QuestionNotUnderstood as exc:
        error = f"declined: {exc.message}"
        confidence = exc.confidence
        weak = exc.suggestions[0].sql if exc.suggestions and exc.confidence is not None else None
        if weak is not None:
            with contextlib.suppress(GuardRefused):
                candidate = guard_for_evaluation(weak, dialect="sqlite", snapshot=snapshot)
    except GenerationError as exc:
        error = f"generation failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crash on one question must not end the run
        error = f"{type(exc).__name__}: {exc}"
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Prediction(
        db_id=db_id,
        question=question,
        sql=sql,
        error=error,
        ms=round(elapsed_ms, 3),
        confidence=confidence,
        candidate_sql=candidate,
    )


def _run_or_none(conn: sqlite3.Connection, sql: str | None) -> list[tuple[Any, ...]] | None:
    if sql is None:
        return None
    try:
        return run_sqlite(conn, sql)
    except sqlite3.Error:
        return None


def _matches(
    gold: list[tuple[Any, ...]] | None, predicted: list[tuple[Any, ...]] | None, *, ordered: bool
) -> bool:
    if gold is None or predicted is None:
        return False
    return results_match(gold, predicted, ordered=ordered)


def _result_key(rows: list[tuple[Any, ...]] | None, *, ordered: bool) -> tuple[Any, ...] | None:
    """A hashable form of a result, equal for results EX would call the same (same columns)."""
    if rows is None:
        return None
    normal = _rows(rows)
    if not ordered:
        normal = sorted(normal, key=repr)
    return tuple(normal)


def write_predictions(path: Path, predictions: list[Prediction]) -> None:
    path.write_text(
        json.dumps([asdict(p) for p in predictions], indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
