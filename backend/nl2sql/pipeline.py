"""The ask flow: question -> generator -> guard -> read-only run -> chart -> one recording.

A failure (engine declined, guard refused, database error) is recorded like a success (its
messages, analytics row, event and timings), committed, and only then raised, so nothing that
fails is lost when the request's session rolls back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth import service as auth_service
from backend.auth.deps import Principal
from backend.chat import service as chat_service
from backend.chat.models import ChatSession
from backend.chat.service import NewMessage
from backend.connections import executor, schema_cache
from backend.connections import service as connections_service
from backend.connections.errors import TargetDatabaseError
from backend.connections.executor import QueryResult
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import new_uuid
from backend.core.errors import AppError, ValidationFailed
from backend.nl2sql.charts import Chart, suggest_chart
from backend.nl2sql.choice import GeneratorChoice, choose_generator, llm_settings
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import (
    Example,
    Generation,
    GenerationError,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
    Turn,
)
from backend.nl2sql.engines.llm import estimate_cost
from backend.nl2sql.engines.repair import generate_with_repair
from backend.nl2sql.errors import (
    GenerationFailed,
    GuardRefused,
    NoConnectionChosen,
    QuestionNotUnderstoodError,
)
from backend.nl2sql.guard import GuardedSql, cap_limit_parameter, guard_sql, sqlglot_dialect
from backend.nl2sql.summaries import summarize_result
from backend.observability import recorder
from backend.observability.event_types import EventType
from backend.observability.models import QueryAnalytics
from backend.templates import service as templates_service
from backend.templates.models import QueryTemplate

DRAFT_SOURCE = "draft"
"""The analytics `source` of an ask answered with SQL only (`execute: false`), never run."""
TEMPLATE_GENERATOR = "template"
"""The `generator` of an answer that came from a query template, not from a generator."""
MAX_HISTORY_TURNS = 6
MAX_EXAMPLES = 5
STAGES = ("generate", "guard", "execute", "record")


@dataclass(slots=True)
class StageTimings:
    """Milliseconds spent in each stage of one ask or SQL run."""

    generate_ms: float = 0.0
    guard_ms: float = 0.0
    execute_ms: float = 0.0
    record_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {stage: round(getattr(self, f"{stage}_ms"), 3) for stage in STAGES}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            setattr(self, f"{stage}_ms", getattr(self, f"{stage}_ms") + elapsed)


@dataclass(slots=True)
class QueryAnswer:
    """A query that ran: what `POST /query/sql` answers and the core of an ask's answer."""

    query_id: str
    sql: str
    """The SQL as the user would run it: the row cap as its LIMIT, not the cap's probe row."""
    result: QueryResult
    column_types: list[str | None]
    chart: Chart
    timings: StageTimings


@dataclass(slots=True)
class AskAnswer(QueryAnswer):
    message_id: int = 0
    user_message_id: int = 0
    explanation: str = ""
    generator: str = ""
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requested_generator: str = ""
    generator_note: str | None = None
    """Why another generator than the requested one answered (an LLM without an API key)."""
    template_id: str | None = None
    parameters: dict[str, Any] | None = None
    attempts: int = 1
    """Generations it took: 1, or more after repairs."""
    cost_estimate: float | None = None
    executed: bool = True
    """False when the caller asked for the SQL only (`execute: false`): no rows, no chart."""
    summary: str | None = None
    """A plain-language sentence about the rows (`summaries.summarize_result`)."""


@dataclass(slots=True)
class _Run:
    """What happened so far in one run; enough to record it whether it succeeded or not."""

    query_id: str = field(default_factory=new_uuid)
    timings: StageTimings = field(default_factory=StageTimings)
    generation: Generation | None = None
    guarded: GuardedSql | None = None
    result: QueryResult | None = None
    column_types: list[str | None] = field(default_factory=list)
    chart: Chart | None = None
    row_cap: int = 1
    timeout_seconds: float = 0.1
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Every generation of an ask, in order: its SQL and the error that sent it back (None for
    the accepted one)."""
    template: QueryTemplate | None = None
    """The template that answered, for a template run or a question it matched."""
    params: dict[str, Any] | None = None
    execute: bool = True
    """False: generate and guard only (the caller reviews the SQL and runs it later)."""
    shown_sql: str | None = None
    """The guarded SQL with the row cap (not the cap's probe row) as its LIMIT."""


def ensure_usable_connection(
    session: Session, *, principal: Principal, connection_id: str
) -> DatabaseConnection:
    """The caller's connection: 403 when an API key may not use it, 404 when it is not theirs."""
    return connections_service.get_connection(session, principal, connection_id)


def only_connection_id(session: Session, *, principal: Principal) -> str | None:
    """The caller's connection when they have exactly one they may use, else None."""
    rows, _ = connections_service.list_connections(session, principal, limit=2)
    return rows[0].id if len(rows) == 1 else None


def _load_limits(session: Session, run: _Run) -> None:
    run.row_cap = max(1, min(100_000, int(get_config_value(session, "query.row_cap"))))
    run.timeout_seconds = max(
        0.1, float(get_config_value(session, "query.statement_timeout_seconds"))
    )


def _earlier_successes(session: Session, *, connection_id: str, user_id: str) -> list[Example]:
    rows = session.execute(
        select(QueryAnalytics.question, QueryAnalytics.sql_query)
        .where(
            QueryAnalytics.connection_id == connection_id,
            QueryAnalytics.user_id == user_id,
            QueryAnalytics.source == "ask",
            QueryAnalytics.success,
            QueryAnalytics.question.is_not(None),
            QueryAnalytics.sql_query.is_not(None),
        )
        .order_by(QueryAnalytics.timestamp.desc(), QueryAnalytics.id.desc())
        .limit(MAX_EXAMPLES * 3)
    ).all()
    examples: list[Example] = []
    seen: set[str] = set()
    for question, sql in rows:
        key = str(question).strip().lower()
        if key in seen:
            continue
        seen.add(key)
        examples.append(Example(question=str(question), sql=str(sql)))
        if len(examples) == MAX_EXAMPLES:
            break
    return examples


def _value_type(values: list[Any]) -> str | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INTEGER"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "REAL"
    return "TEXT"


def _column_types(
    result: QueryResult, snapshot: SchemaSnapshot, tables: list[str]
) -> list[str | None]:
    """The driver's type, else the snapshot's type of a same-named column, else the values'.

    SQLite reports no result types (the executor infers them from values, so a date stored as
    text reads as text); there the declared type of a same-named column comes first.
    """
    declared: dict[str, str] = {}
    for table_name in tables:
        info = snapshot.table(table_name)
        for known in info.columns if info else ():
            declared.setdefault(known.name.lower(), known.type)
    declared_first = snapshot.db_type == "sqlite"
    types: list[str | None] = []
    for index, column in enumerate(result.columns):
        from_schema = declared.get(column.name.lower())
        types.append(
            (from_schema if declared_first else None)
            or column.type
            or from_schema
            or _value_type([row[index] for row in result.rows[:50]])
        )
    return types


def _execute(
    run: _Run,
    *,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    sql: str,
    settings: Settings,
    params: Mapping[str, Any] | None = None,
) -> None:
    with run.timings.measure("guard"):
        # One row beyond the cap lets the executor tell whether the result was truncated.
        run.guarded = guard_sql(
            sql,
            snapshot=snapshot,
            dialect=connection.db_type,
            row_cap=run.row_cap + 1,
            parameters=None if params is None else list(params),
        )
        run.shown_sql = run.guarded.sql
        if run.guarded.limit_applied:
            # The probe row is the platform's business: show the SQL with the cap itself.
            run.shown_sql = guard_sql(
                sql,
                snapshot=snapshot,
                dialect=connection.db_type,
                row_cap=run.row_cap,
                parameters=None if params is None else list(params),
            ).sql
    if not run.execute:
        return
    if params is not None:
        params = cap_limit_parameter(run.guarded, params, run.row_cap + 1)
    with run.timings.measure("execute"):
        run.result = executor.run_on_connection(
            connection,
            run.guarded.sql,
            row_cap=run.row_cap,
            timeout_seconds=run.timeout_seconds,
            settings=settings,
            params=params,
        )
        run.column_types = _column_types(run.result, snapshot, run.guarded.tables)
        run.chart = suggest_chart(
            [(c.name, t) for c, t in zip(run.result.columns, run.column_types, strict=True)],
            run.result.rows,
        )


class _Repairable(Exception):
    """A failure the model may fix: the guard refused, or the database rejected the query."""

    def __init__(self, original: AppError) -> None:
        super().__init__(str(original))
        self.original = original
        self.details = original.details


def _is_repairable(exc: Exception) -> bool:
    if isinstance(exc, GuardRefused):
        return True
    # Unreachable servers and refused passwords are not the SQL's fault.
    return isinstance(exc, TargetDatabaseError) and exc.details.get("kind") in (
        None,
        "query_failed",
    )


def _generate_and_run(
    run: _Run,
    generator: SqlGenerator,
    request: GenerationRequest,
    *,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    settings: Settings,
) -> None:
    """Generation, guard and execution, with repairs for generators that support them."""

    def check(sql: str) -> None:
        try:
            _execute(run, connection=connection, snapshot=snapshot, sql=sql, settings=settings)
        except AppError as exc:
            if _is_repairable(exc):
                raise _Repairable(exc) from exc
            raise

    started = time.perf_counter()
    try:
        outcome = generate_with_repair(generator, request, check, repairable=(_Repairable,))
    finally:
        # generate_ms is the time spent generating: the whole loop minus guard and execution.
        run.timings.generate_ms = max(
            0.0,
            (time.perf_counter() - started) * 1000 - run.timings.guard_ms - run.timings.execute_ms,
        )
    run.generation = outcome.generation
    run.attempts = [{"sql": f.sql, "error": f.error} for f in outcome.failures]
    if outcome.error is not None:
        error = outcome.error
        raise error.original if isinstance(error, _Repairable) else error
    run.attempts.append({"sql": outcome.generation.sql, "error": None})


def _recover_platform_session(session: Session, exc: Exception) -> None:
    # Errors of users' databases arrive wrapped (TargetDatabaseError); a bare SQLAlchemy error
    # is the platform database's, and may have aborted the transaction the record needs.
    if isinstance(exc, SQLAlchemyError):
        session.rollback()


def _listed(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _as_app_error(exc: Exception) -> AppError | None:
    if isinstance(exc, QuestionNotUnderstood):
        # Engines may describe what they recognised with sets or tuples; the answer is JSON.
        recognised = json.loads(json.dumps(exc.recognised, default=_listed))
        return QuestionNotUnderstoodError(exc.message, details={"recognised": recognised})
    if isinstance(exc, AppError):
        # LLM failures are API errors of their own (502, 504, ...) as well as GenerationErrors.
        return exc
    if isinstance(exc, GenerationError):
        return GenerationFailed(str(exc) or None)
    return None


def _limit_record(run: _Run) -> dict[str, Any]:
    """What an export needs to lift the preview's cap without losing the query's own LIMIT."""
    guarded = run.guarded
    if guarded is None:
        return {}
    return {"limit_applied": guarded.limit_applied, "written_limit": guarded.written_limit}


def _record_stage_metrics(
    session: Session, run: _Run, *, source: str, stages: tuple[str, ...]
) -> None:
    """Queue the stage timings for the batch metric writer (off the request's transaction)."""
    timings = run.timings.as_dict()
    recorder.record_stage_timings(
        session,
        timings_ms={stage: timings[stage] for stage in stages},
        query_id=run.query_id,
        source=source,
    )


def _ask_source(run: _Run) -> str:
    if not run.execute:
        return DRAFT_SOURCE
    return "template" if run.template is not None else "ask"


def _summary(run: _Run) -> str | None:
    if run.result is None or not run.execute:
        return None
    return summarize_result(
        [(c.name, t) for c, t in zip(run.result.columns, run.column_types, strict=True)],
        run.result.rows,
        truncated=run.result.truncated,
    )


def _result_payload(run: _Run) -> dict[str, Any] | None:
    if run.result is None:
        return None
    return {
        "summary": _summary(run),
        "columns": [
            {"name": c.name, "type": t}
            for c, t in zip(run.result.columns, run.column_types, strict=True)
        ],
        "rows": run.result.rows,
        "row_count": run.result.row_count,
        "truncated": run.result.truncated,
        "chart_type": run.chart.chart_type if run.chart else None,
    }


def _examples(session: Session, principal: Principal, *, connection_id: str) -> list[Example]:
    """Verified and public templates first, then the caller's earlier successes; no repeats."""
    examples: list[Example] = []
    seen: set[str] = set()
    candidates = templates_service.template_examples(
        session, principal, connection_id=connection_id, limit=MAX_EXAMPLES
    ) + _earlier_successes(session, connection_id=connection_id, user_id=principal.user.id)
    for example in candidates:
        key = example.question.strip().lower()
        if key not in seen:
            seen.add(key)
            examples.append(example)
    return examples[:MAX_EXAMPLES]


def ask(
    session: Session,
    *,
    principal: Principal,
    chat_session_id: str,
    question: str,
    settings: Settings,
    context: ClientContext | None = None,
    connection_id: str | None = None,
    generator_name: str | None = None,
    execute: bool = True,
) -> AskAnswer:
    """Answer a question in a chat session; records it, and on failure commits then raises.

    A question that fits a visible query template is answered from the template, whatever
    generator is configured; otherwise the chosen generator writes SQL, and one that supports
    repair gets the guard's or the database's error back a bounded number of times.
    """
    user = principal.user
    auth_service.ensure_token_quota(session, user)
    chat = chat_service.get_chat_session(session, user_id=user.id, session_id=chat_session_id)
    chosen_id = connection_id or chat.connection_id
    if chosen_id is None:
        # A session without a connection asks the caller's only one, and keeps it from then on.
        chosen_id = only_connection_id(session, principal=principal)
        if chosen_id is None:
            raise NoConnectionChosen()
        chat.connection_id = chosen_id
    connection = ensure_usable_connection(session, principal=principal, connection_id=chosen_id)
    question = question.strip()
    generator_settings = llm_settings(session, settings)
    choice = choose_generator(session, user, generator_name, generator_settings)
    history = [
        Turn(question=q, sql=s)
        for q, s in chat_service.recent_turns(session, chat, max_turns=MAX_HISTORY_TURNS)
    ]

    run = _Run(execute=execute)
    failure: Exception | None = None
    try:
        _load_limits(session, run)
        snapshot = schema_cache.snapshot_for_connection(session, connection, settings)
        matched = templates_service.match_template(
            question,
            templates_service.visible_templates(session, principal, connection_id=connection.id),
        )
        if matched is not None:
            run.template, run.params = matched
            templates_service.record_template_use(session, run.template)
            run.generation = Generation(
                sql=run.template.sql_template,
                explanation=f"Answered from the query template {run.template.name!r}.",
            )
            _execute(
                run,
                connection=connection,
                snapshot=snapshot,
                sql=run.template.sql_template,
                settings=settings,
                params=run.params,
            )
        else:
            generator = registry.get_generator(choice.name, generator_settings)
            request = GenerationRequest(
                question=question,
                schema=snapshot,
                history=history,
                examples=_examples(session, principal, connection_id=connection.id),
                dialect=sqlglot_dialect(connection.db_type),
                row_cap=run.row_cap,
                model=choice.model,
            )
            _generate_and_run(
                run,
                generator,
                request,
                connection=connection,
                snapshot=snapshot,
                settings=settings,
            )
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised
        failure = exc
        _recover_platform_session(session, exc)

    ran = TEMPLATE_GENERATOR if run.template is not None else choice.name
    error = _as_app_error(failure) if failure is not None else None
    with run.timings.measure("record"):
        messages, cost = _record_ask(
            session,
            run,
            principal=principal,
            chat=chat,
            connection=connection,
            question=question,
            choice=choice,
            generator_name=ran,
            error=error,
            failure=failure,
            context=context,
        )
    _record_stage_metrics(session, run, source="ask", stages=STAGES)

    if failure is not None:
        if error is not None:
            error.details.setdefault("query_id", run.query_id)
            error.details.setdefault("message_id", messages[1].id)
            error.details.setdefault("generator", ran)
        session.commit()
        if error is not None and error is not failure:
            raise error from failure
        raise failure

    assert run.generation is not None and run.guarded is not None  # noqa: S101
    if not run.execute:
        run.result = QueryResult(
            columns=[], rows=[], row_count=0, truncated=False, execution_time_ms=0.0
        )
        run.chart = suggest_chart([], [])
    assert run.result is not None and run.chart is not None  # noqa: S101
    return AskAnswer(
        query_id=run.query_id,
        sql=run.shown_sql or run.guarded.sql,
        result=run.result,
        column_types=run.column_types,
        chart=run.chart,
        timings=run.timings,
        message_id=messages[1].id,
        user_message_id=messages[0].id,
        explanation=run.generation.explanation,
        generator=ran,
        model=run.generation.model,
        prompt_tokens=run.generation.prompt_tokens,
        completion_tokens=run.generation.completion_tokens,
        requested_generator=choice.requested,
        generator_note=choice.fallback_reason if run.template is None else None,
        template_id=run.template.id if run.template is not None else None,
        parameters=run.params,
        attempts=len(run.attempts) or 1,
        cost_estimate=cost,
        executed=run.execute,
        summary=_summary(run),
    )


def _record_ask(
    session: Session,
    run: _Run,
    *,
    principal: Principal,
    chat: ChatSession,
    connection: DatabaseConnection,
    question: str,
    choice: GeneratorChoice,
    generator_name: str,
    error: AppError | None,
    failure: Exception | None,
    context: ClientContext | None,
) -> tuple[list[Any], float | None]:
    generation = run.generation
    sql = run.guarded.sql if run.guarded else (generation.sql if generation else None)
    shown_sql = run.shown_sql or sql
    success = failure is None
    error_code = (error.code if error else "internal_error") if failure else None
    error_message = (
        (error.message if error else "An unexpected error occurred.") if failure else None
    )
    if success:
        assistant = NewMessage(
            message_type="assistant",
            content=generation.explanation if generation else "",
            query_id=run.query_id,
            sql_query=shown_sql,
            query_result=_result_payload(run) if run.execute else {"executed": False},
            execution_time_ms=run.result.execution_time_ms if run.result else None,
        )
    else:
        assistant = NewMessage(
            message_type="error",
            content=error_message or "",
            query_id=run.query_id,
            sql_query=sql,
            query_result={"error_code": error_code, "details": error.details if error else {}},
            error_message=error_message,
        )
    messages = chat_service.append_messages(
        session,
        chat,
        [NewMessage(message_type="user", content=question, query_id=run.query_id), assistant],
    )
    prompt_tokens = generation.prompt_tokens if generation else 0
    completion_tokens = generation.completion_tokens if generation else 0
    cost = (
        estimate_cost(
            generation.model,
            prompt_tokens,
            completion_tokens,
            get_config_value(session, "llm.price_table"),
        )
        if generation is not None and prompt_tokens + completion_tokens > 0
        else None
    )
    template = run.template
    recorder.query(
        session,
        query_id=run.query_id,
        user_id=principal.user.id,
        source=_ask_source(run),
        success=success,
        question=question,
        sql_query=sql,
        execution_time_ms=run.result.execution_time_ms if run.result else None,
        row_count=run.result.row_count if run.result else None,
        error_message=error_message,
        error_code=error_code,
        chart_type=run.chart.chart_type if run.chart else None,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        llm_model=generation.model if generation else None,
        llm_cost_estimate=cost,
        generator=generator_name,
        connection_id=connection.id,
        chat_session_id=chat.id,
    )
    recorder.event(
        session,
        event_type=EventType.ASKED,
        user_id=principal.user.id,
        context=context,
        user_session_id=principal.user_session_id,
        data={
            "query_id": run.query_id,
            "chat_session_id": chat.id,
            "connection_id": connection.id,
            "generator": generator_name,
            "requested_generator": choice.requested,
            "generator_source": choice.source,
            "fallback": choice.fallback_reason is not None and template is None,
            "template_id": template.id if template is not None else None,
            "attempts": run.attempts,
            "parameters": run.params,
            **_limit_record(run),
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost_estimate": cost,
            "success": success,
            "executed": run.execute,
            "error_code": error_code,
            "row_count": run.result.row_count if run.result else None,
            "timings_ms": {k: v for k, v in run.timings.as_dict().items() if k != "record"},
        },
    )
    auth_service.add_token_usage(session, principal.user.id, prompt_tokens + completion_tokens)
    return messages, cost


def run_sql(
    session: Session,
    *,
    principal: Principal,
    connection_id: str,
    sql: str,
    settings: Settings,
    context: ClientContext | None = None,
) -> QueryAnswer:
    """Run user-written SQL through the same guard and executor; records like an ask."""
    connection = ensure_usable_connection(session, principal=principal, connection_id=connection_id)
    return _run_recorded(
        session,
        _Run(),
        principal=principal,
        connection=connection,
        sql=sql,
        settings=settings,
        context=context,
    )


def run_template(
    session: Session,
    *,
    principal: Principal,
    template_id: str,
    parameters: Mapping[str, Any],
    settings: Settings,
    connection_id: str | None = None,
    context: ClientContext | None = None,
) -> QueryAnswer:
    """Run a query template with its parameters bound by the driver; recorded as
    `source="template"`. The connection is the request's, else the template's own; a template
    bound to one connection runs only there."""
    template, sql, bound = templates_service.prepare_template_run(
        session, principal, template_id, parameters
    )
    if (
        connection_id is not None
        and template.connection_id is not None
        and connection_id != template.connection_id
    ):
        raise ValidationFailed(
            "This template belongs to another connection.",
            details={"template_connection_id": template.connection_id},
        )
    chosen_id = connection_id or template.connection_id
    if chosen_id is None:
        raise NoConnectionChosen("Choose a connection: the template is not bound to one.")
    connection = ensure_usable_connection(session, principal=principal, connection_id=chosen_id)
    run = _Run(template=template, params=bound)
    return _run_recorded(
        session,
        run,
        principal=principal,
        connection=connection,
        sql=sql,
        settings=settings,
        context=context,
    )


def _run_recorded(
    session: Session,
    run: _Run,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    sql: str,
    settings: Settings,
    context: ClientContext | None,
) -> QueryAnswer:
    user = principal.user
    template = run.template
    source = "template" if template is not None else "sql"
    failure: Exception | None = None
    try:
        _load_limits(session, run)
        snapshot = schema_cache.snapshot_for_connection(session, connection, settings)
        _execute(
            run,
            connection=connection,
            snapshot=snapshot,
            sql=sql,
            settings=settings,
            params=run.params,
        )
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised
        failure = exc
        _recover_platform_session(session, exc)
    error = _as_app_error(failure) if failure is not None else None
    success = failure is None
    error_code = (error.code if error else "internal_error") if failure else None
    with run.timings.measure("record"):
        recorder.query(
            session,
            query_id=run.query_id,
            user_id=user.id,
            source=source,
            success=success,
            question=template.name if template is not None else None,
            sql_query=run.guarded.sql if run.guarded else sql,
            execution_time_ms=run.result.execution_time_ms if run.result else None,
            row_count=run.result.row_count if run.result else None,
            error_message=(error.message if error else "An unexpected error occurred.")
            if failure
            else None,
            error_code=error_code,
            chart_type=run.chart.chart_type if run.chart else None,
            generator=TEMPLATE_GENERATOR if template is not None else None,
            connection_id=connection.id,
        )
        data: dict[str, Any] = {
            "query_id": run.query_id,
            "connection_id": connection.id,
            "success": success,
            "error_code": error_code,
            "row_count": run.result.row_count if run.result else None,
            **_limit_record(run),
        }
        if template is not None:
            # The bound values are kept with the run, so its export re-runs the same query.
            data.update(template_id=template.id, parameters=run.params)
        recorder.event(
            session,
            event_type=EventType.TEMPLATE_RAN if template is not None else EventType.SQL_RAN,
            user_id=user.id,
            context=context,
            user_session_id=principal.user_session_id,
            data=data,
        )
    _record_stage_metrics(session, run, source=source, stages=("guard", "execute", "record"))
    if failure is not None:
        if error is not None:
            error.details.setdefault("query_id", run.query_id)
        session.commit()
        if error is not None and error is not failure:
            raise error from failure
        raise failure
    assert run.guarded is not None and run.result is not None  # noqa: S101
    assert run.chart is not None  # noqa: S101
    return QueryAnswer(
        query_id=run.query_id,
        sql=run.shown_sql or run.guarded.sql,
        result=run.result,
        column_types=run.column_types,
        chart=run.chart,
        timings=run.timings,
    )
