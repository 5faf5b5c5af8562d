"""Running an evaluation: each golden question through the generator, the guard and the
connection, its result set compared with the gold's (`nl2sql.evaluation.results_match`).

Nothing is held across slow work: one short transaction reads what the run needs and claims
it; generation and both queries run with no platform connection open; each question's outcome,
the run's tallies and its progress are written in one short transaction, which also reads
whether the run was asked to stop. The same function serves the `evaluation` job and
`nlsql eval --connection`.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth import service as auth_service
from backend.auth.deps import Principal
from backend.connections import executor, schema_cache
from backend.connections import service as connections_service
from backend.connections.executor import QueryResult
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.errors import AppError
from backend.evaluations import golden
from backend.evaluations.models import EvaluationResult, EvaluationRun
from backend.jobs.models import BackgroundJob
from backend.nl2sql.choice import choose_generator, llm_settings
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import (
    GenerationError,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
)
from backend.nl2sql.engines.llm import LLM_GENERATORS
from backend.nl2sql.engines.repair import generate_with_repair
from backend.nl2sql.errors import GuardRefused, is_repairable
from backend.nl2sql.evaluation import EVAL_ROW_CAP, results_match
from backend.nl2sql.guard import guard_sql, sqlglot_dialect
from backend.observability import recorder
from backend.observability.event_types import EventType
from backend.semantic import service as semantic_service
from backend.semantic.layer import SemanticLayer
from backend.semantic.visibility import (
    NOTHING_HIDDEN,
    HiddenItems,
    hidden_items,
    public_layer,
    visible_snapshot,
)

logger = logging.getLogger("nlsql.evaluations")

SessionFactory = Callable[[], Session]
Progress = Callable[[int, int], None]
"""Hears `(done, total)` after each question."""
MAX_STORED_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class _Item:
    golden_id: str
    question: str
    sql: str
    ordered: bool


@dataclass(slots=True)
class _Plan:
    run_id: str
    job_id: str | None
    user_id: str
    connection: DatabaseConnection
    generator: SqlGenerator
    generator_name: str
    model: str | None
    semantic: SemanticLayer | None
    """The layer as generators see it (hidden entries left out)."""
    items: list[_Item]
    timeout_seconds: float
    max_result_bytes: int
    max_cell_bytes: int
    settings: Settings
    snapshot: SchemaSnapshot | None = None
    hidden: HiddenItems = NOTHING_HIDDEN
    """What the layer hides: never shown to the generator, refused in its SQL."""


@dataclass(slots=True)
class _Outcome:
    outcome: str
    predicted_sql: str | None = None
    ms: float = 0.0
    confidence: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    tokens: int = 0


class _SqlRejected(Exception):
    """The guard or the database refused generated SQL: a model may repair it."""

    def __init__(self, original: AppError) -> None:
        super().__init__(str(original))
        self.original = original
        self.details = original.details


def load_semantic_layer(
    session: Session, connection: DatabaseConnection, version: int | None
) -> SemanticLayer | None:
    """The connection's semantic layer at `version` (the current one when None), or None when
    the connection has none. A version that does not exist raises (checked at submit too)."""
    if version is None:
        return semantic_service.load_current_layer(session, connection.id)
    row, _ = semantic_service.get_version(session, connection, version)
    return semantic_service.document_of(row)


def _claim(
    session_factory: SessionFactory, run_id: str, principal: Principal, settings: Settings
) -> _Plan | None:
    """One short transaction: claim the queued run and read everything it needs."""
    with session_factory() as session, session.begin():
        claimed = session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == run_id, EvaluationRun.status == "queued")
            .values(status="running", started_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return None
        run = session.get(EvaluationRun, run_id)
        assert run is not None  # noqa: S101 - just claimed
        connection = connections_service.get_connection(session, principal, run.connection_id)
        generator_settings = llm_settings(session, settings)
        choice = choose_generator(session, principal.user, run.generator, generator_settings)
        if choice.name in LLM_GENERATORS:
            auth_service.ensure_token_quota(session, principal.user)
        generator = registry.get_generator(choice.name, generator_settings)
        # Questions deleted since the run was submitted are left out.
        present = {
            row.id: row
            for row in golden.golden_questions(session, connection_id=connection.id, ids=None)
        }
        items = [
            _Item(row.id, row.question, row.gold_sql, row.ordered)
            for row in (present.get(i) for i in run.golden_ids)
            if row is not None
        ]
        run.used_generator = choice.name
        run.total_count = len(items)
        plan = _Plan(
            run_id=run.id,
            job_id=run.job_id,
            user_id=principal.user.id,
            connection=connection,
            generator=generator,
            generator_name=choice.name,
            model=run.model or choice.model,
            semantic=None,
            items=items,
            timeout_seconds=max(
                0.1, float(get_config_value(session, "query.statement_timeout_seconds"))
            ),
            max_result_bytes=int(get_config_value(session, "query.max_result_bytes")),
            max_cell_bytes=int(get_config_value(session, "query.max_cell_bytes")),
            settings=settings,
        )
        layer = load_semantic_layer(session, connection, run.semantic_layer_version)
        if layer is not None:
            plan.semantic, plan.hidden = public_layer(layer), hidden_items(layer)
        cached = schema_cache.load_snapshot(session, connection)
        plan.snapshot = cached[0] if cached is not None else None
        return plan


def _query(plan: _Plan, sql: str, *, gold: bool = False) -> tuple[str, QueryResult]:
    """Guard and run one query on the connection; raises `GuardRefused` or the target's
    errors. The guard's cap is one row beyond the executor's, as an ask does. A generated
    query may not read what the layer hides; the owner's gold SQL may."""
    assert plan.snapshot is not None  # noqa: S101
    guarded = guard_sql(
        sql,
        snapshot=plan.snapshot,
        dialect=plan.connection.db_type,
        row_cap=EVAL_ROW_CAP + 1,
        hidden=NOTHING_HIDDEN if gold else plan.hidden,
    )
    result = executor.run_on_connection(
        plan.connection,
        guarded.sql,
        settings=plan.settings,
        row_cap=EVAL_ROW_CAP,
        timeout_seconds=plan.timeout_seconds,
        max_result_bytes=plan.max_result_bytes,
        max_cell_bytes=plan.max_cell_bytes,
    )
    return guarded.sql, result


def _comparable(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows whose values hash (JSON documents as canonical text)."""
    return [
        [json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v for v in row]
        for row in rows
    ]


def _evaluate_one(plan: _Plan, item: _Item) -> _Outcome:
    assert plan.snapshot is not None  # noqa: S101

    def check(sql: str) -> tuple[str, QueryResult]:
        try:
            return _query(plan, sql)
        except AppError as exc:
            if is_repairable(exc):
                raise _SqlRejected(exc) from exc
            raise

    request = GenerationRequest(
        question=item.question,
        schema=visible_snapshot(plan.snapshot, plan.hidden),
        dialect=sqlglot_dialect(plan.connection.db_type),
        row_cap=EVAL_ROW_CAP,
        model=plan.model,
        semantic=plan.semantic,
    )
    started = time.perf_counter()
    outcome = _Outcome(outcome="error")
    predicted: QueryResult | None = None
    try:
        repaired = generate_with_repair(plan.generator, request, check, repairable=(_SqlRejected,))
        generation = repaired.generation
        outcome.confidence = generation.confidence
        outcome.tokens = generation.prompt_tokens + generation.completion_tokens
        outcome.predicted_sql = generation.sql
        if repaired.error is not None:
            raise repaired.error
        assert repaired.result is not None  # noqa: S101
        outcome.predicted_sql, predicted = repaired.result
        outcome.outcome = "answered"
    except QuestionNotUnderstood as exc:
        outcome.outcome, outcome.confidence = "declined", exc.confidence
        outcome.error_code, outcome.error_message = "question_not_understood", exc.message
    except _SqlRejected as exc:
        original = exc.original
        # SQL that passed the guard but failed on the database was an answer, a wrong one.
        outcome.outcome = "error" if isinstance(original, GuardRefused) else "wrong"
        outcome.error_code, outcome.error_message = original.code, original.message
    except GenerationError as exc:
        outcome.error_code, outcome.error_message = "generation_failed", str(exc)
    except AppError as exc:
        outcome.outcome = "wrong" if outcome.predicted_sql else "error"
        outcome.error_code, outcome.error_message = exc.code, exc.message
    except Exception as exc:  # noqa: BLE001 - one question's crash must not end the run
        logger.exception("evaluation %s: question %s crashed", plan.run_id, item.golden_id)
        outcome.error_code, outcome.error_message = "internal_error", type(exc).__name__
    outcome.ms = round((time.perf_counter() - started) * 1000, 3)
    if outcome.outcome != "answered":
        return outcome
    assert predicted is not None  # noqa: S101
    try:
        _, gold = _query(plan, item.sql, gold=True)
    except AppError as exc:
        outcome.outcome = "error"
        outcome.error_code = "gold_failed"
        outcome.error_message = f"The gold SQL failed: {exc.message}"
        return outcome
    same = results_match(_comparable(gold.rows), _comparable(predicted.rows), ordered=item.ordered)
    outcome.outcome = "right" if same else "wrong"
    return outcome


_COUNTERS = {
    "right": EvaluationRun.right_count,
    "wrong": EvaluationRun.wrong_count,
    "declined": EvaluationRun.declined_count,
    "error": EvaluationRun.error_count,
}


def _store(
    session_factory: SessionFactory, plan: _Plan, position: int, item: _Item, outcome: _Outcome
) -> bool:
    """One short write: the outcome, the tallies, the progress. Returns whether to stop."""
    done = position + 1
    total = len(plan.items)
    with session_factory() as session, session.begin():
        session.add(
            EvaluationResult(
                run_id=plan.run_id,
                position=position,
                golden_id=item.golden_id,
                question=item.question,
                gold_sql=item.sql,
                ordered=item.ordered,
                predicted_sql=outcome.predicted_sql,
                outcome=outcome.outcome,
                ms=outcome.ms,
                confidence=outcome.confidence,
                error_code=outcome.error_code,
                error_message=(outcome.error_message or "")[:MAX_STORED_ERROR_CHARS] or None,
            )
        )
        counter = _COUNTERS[outcome.outcome]
        session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == plan.run_id)
            .values({EvaluationRun.done_count: done, counter: counter + 1})
            .execution_options(synchronize_session=False)
        )
        if plan.job_id is not None:
            session.execute(
                update(BackgroundJob)
                .where(BackgroundJob.id == plan.job_id, BackgroundJob.status == "running")
                .values(progress={"stage": "evaluating", "done": done, "total": total})
                .execution_options(synchronize_session=False)
            )
        if outcome.tokens:
            auth_service.add_token_usage(session, plan.user_id, outcome.tokens)
        run = session.get(EvaluationRun, plan.run_id)
        return bool(run is not None and run.cancel_requested)


def _percentile(times: list[float], share: float) -> float | None:
    if not times:
        return None
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def _finish(
    session_factory: SessionFactory,
    plan: _Plan,
    times: list[float],
    *,
    cancelled: bool,
    context: ClientContext | None,
) -> None:
    with session_factory() as session, session.begin():
        status = "cancelled" if cancelled else "succeeded"
        session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == plan.run_id, EvaluationRun.status == "running")
            .values(
                status=status,
                finished_at=utcnow(),
                p50_ms=round(statistics.median(times), 3) if times else None,
                p95_ms=_percentile(times, 0.95),
            )
            .execution_options(synchronize_session=False)
        )
        run = session.get(EvaluationRun, plan.run_id)
        assert run is not None  # noqa: S101
        recorder.event(
            session,
            event_type=EventType.EVALUATION_FINISHED,
            user_id=plan.user_id,
            context=context,
            data={
                "run_id": plan.run_id,
                "connection_id": plan.connection.id,
                "generator": plan.generator_name,
                "status": status,
                "done": run.done_count,
                "right": run.right_count,
                "wrong": run.wrong_count,
                "declined": run.declined_count,
                "errors": run.error_count,
            },
        )


def fail_run(session_factory: SessionFactory, run_id: str, error: dict[str, Any]) -> None:
    """Mark a run that could not go on failed, with the error in the API's one shape."""
    with session_factory() as session, session.begin():
        session.execute(
            update(EvaluationRun)
            .where(EvaluationRun.id == run_id, EvaluationRun.status.in_(("queued", "running")))
            .values(status="failed", finished_at=utcnow(), error=error)
            .execution_options(synchronize_session=False)
        )


def run_evaluation(
    session_factory: SessionFactory,
    *,
    run_id: str,
    principal: Principal,
    settings: Settings,
    context: ClientContext | None = None,
    on_progress: Progress | None = None,
) -> str:
    """Run a queued evaluation to its end; returns its final status (`succeeded` or
    `cancelled`), or `skipped` when it was not queued any more. Raises what stopped the run as
    a whole (the connection gone, the token quota), after marking it failed."""
    from backend.jobs.run import error_body

    try:
        plan = _claim(session_factory, run_id, principal, settings)
        if plan is None:
            return "skipped"
        if plan.snapshot is None:
            plan.snapshot = schema_cache.introspect_and_store(
                session_factory, plan.connection, settings=settings
            )
    except Exception as exc:
        fail_run(session_factory, run_id, error_body(exc))
        raise
    times: list[float] = []
    cancelled = False
    total = len(plan.items)
    try:
        for position, item in enumerate(plan.items):
            outcome = _evaluate_one(plan, item)
            if outcome.outcome in ("right", "wrong"):
                times.append(outcome.ms)
            cancelled = _store(session_factory, plan, position, item, outcome)
            if on_progress is not None:
                on_progress(position + 1, total)
            if cancelled:
                break
        _finish(session_factory, plan, times, cancelled=cancelled, context=context)
    except Exception as exc:
        fail_run(session_factory, run_id, error_body(exc))
        raise
    return "cancelled" if cancelled else "succeeded"
