"""The ask flow: question -> generator -> guard -> read-only run -> chart -> one recording.

It runs in phases that hold nothing across slow work: read what the ask needs in one short
transaction (the session is closed before anything slow starts); generate (the offline engine
on a worker thread, an LLM awaited on the event loop) and run the SQL on the user's database
with no platform connection checked out; record in one short write transaction. The pipeline
opens its own sessions from the session factory; callers hand it none.

A failure (engine declined, guard refused, database error, a client that went away) is recorded
like a success (its messages, analytics row, event and timings), committed, and only then
raised, so nothing that fails is lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache, partial
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
from sqlalchemy import Select, String, Table, and_, bindparam, select
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth import service as auth_service
from backend.auth.deps import Credentials, Principal, principal_of_session_row
from backend.auth.models import User, UserSession
from backend.chat import service as chat_service
from backend.chat.models import ChatSession
from backend.chat.service import NewMessage
from backend.connections import executor, schema_cache
from backend.connections import service as connections_service
from backend.connections.executor import QueryResult
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.cpu_slots import ask_threads, cpu_work, waiting
from backend.core.db import commit_with_retry, new_uuid
from backend.core.errors import AppError
from backend.feedback import retrieval as feedback_retrieval
from backend.nl2sql import row_cap
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
from backend.nl2sql.engines.llm import LLM_GENERATORS, estimate_cost
from backend.nl2sql.engines.repair import (
    RepairOutcome,
    generate_with_repair,
    generate_with_repair_async,
)
from backend.nl2sql.errors import (
    AskCancelled,
    DraftConnectionMismatch,
    GenerationFailed,
    NoConnectionChosen,
    QuestionNotUnderstoodError,
    is_repairable,
)
from backend.nl2sql.guard import (
    GuardedSql,
    ParsedSql,
    cap_limit_parameter,
    guard_sql,
    names_hidden,
    sqlglot_dialect,
)
from backend.nl2sql.relevance import rank_examples
from backend.nl2sql.summaries import summarize_result
from backend.observability import recorder
from backend.observability.event_types import EventType
from backend.observability.models import Event, QueryAnalytics
from backend.semantic import service as semantic_service
from backend.semantic.current import layer_at
from backend.semantic.layer import SemanticLayer
from backend.semantic.models import SemanticLayerHead
from backend.semantic.visibility import (
    NOTHING_HIDDEN,
    HiddenItems,
    hidden_items,
    public_layer,
    visible_snapshot,
)
from backend.templates import service as templates_service
from backend.templates.errors import TemplateConnectionMismatch
from backend.templates.models import QueryTemplate

_log = logging.getLogger(__name__)

DRAFT_SOURCE = "draft"
"""The analytics `source` of an ask answered with SQL only (`execute: false`), never run."""
TEMPLATE_GENERATOR = "template"
"""The `generator` of an answer that came from a query template, not from a generator."""
MAX_HISTORY_TURNS = 6
MAX_EXAMPLES = 5
MAX_EXAMPLE_CANDIDATES = 200
"""Most recent templates and earlier answers each considered for one prompt's examples."""
STAGES = ("generate", "guard", "execute", "record")

_ANALYTICS = cast("Table", QueryAnalytics.__table__)
_EVENTS = cast("Table", Event.__table__)

SessionFactory = Callable[[], Session]
"""Opens a platform session (the app's `sessionmaker`); the pipeline opens short ones itself."""
OnRecorded = Callable[[Session, "AskAnswer | Exception"], None]
"""Writes in the ask's recording transaction, before its commit, given what the ask answers
(its answer, or the error it raises): a background job stores its outcome this way."""
Authenticate = Callable[[Session], Principal]
"""Reads and checks the caller in the ask's first transaction (`auth.deps.Credentials.resolve`):
an ask then takes no session and no thread hop of its own for authentication."""
Notify = Callable[[str, dict[str, Any]], None]
"""Hears each stage of an ask as it happens: `understood`, `sql`, `guard`, `rows`, `chart`.
Called from worker threads and from the event loop alike, so it must be thread-safe."""


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


_NOT_SUMMARIZED = object()


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
    max_result_bytes: int = executor.DEFAULT_MAX_RESULT_BYTES
    max_cell_bytes: int = executor.DEFAULT_MAX_CELL_BYTES
    preview_max_bytes: int = 65_536
    attempts: list[dict[str, Any]] = field(default_factory=list)
    """Every generation of an ask, in order: its SQL and the error that sent it back (None for
    the accepted one)."""
    template: QueryTemplate | None = None
    """The template that answered, for a template run or a question it matched."""
    params: dict[str, Any] | None = None
    notify: Notify | None = None
    execute: bool = True
    """False: generate and guard only (the caller reviews the SQL and runs it later)."""
    shown_sql: str | None = None
    """The guarded SQL with the row cap (not the cap's probe row) as its LIMIT."""
    draft_message_id: int | None = None
    """The draft answer (`execute: false`) this SQL run carries out, shown in its thread."""
    hidden: HiddenItems = NOTHING_HIDDEN
    """What the connection's semantic layer hides: the guard refuses SQL that reads it."""
    summary: object = _NOT_SUMMARIZED
    """`_summary`'s sentence once made (it may be None)."""
    parsed: ParsedSql | None = None
    """The latest generation's SQL as its engine parsed it, for the guard to take."""

    def emit(self, stage: str, data: dict[str, Any]) -> None:
        if self.notify is not None:
            self.notify(stage, {"query_id": self.query_id, **data})


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
    run.max_result_bytes = int(get_config_value(session, "query.max_result_bytes"))
    run.max_cell_bytes = int(get_config_value(session, "query.max_cell_bytes"))
    run.preview_max_bytes = int(get_config_value(session, "chat.preview_max_bytes"))


@cache
def _earlier_successes_statement() -> Select[Any]:
    """`_earlier_successes`' statement, built once (bound: `connection_id`, `user_id`)."""
    analytics = _ANALYTICS
    user_id = bindparam("user_id", type_=String())
    return (
        select(analytics.c.question, analytics.c.sql_query)
        .where(
            analytics.c.connection_id == bindparam("connection_id", type_=String()),
            analytics.c.user_id == user_id,
            analytics.c.source == "ask",
            analytics.c.success,
            analytics.c.question.is_not(None),
            analytics.c.sql_query.is_not(None),
            analytics.c.query_id.not_in(feedback_retrieval.wrong_query_ids(user_id)),
        )
        .order_by(analytics.c.timestamp.desc(), analytics.c.id.desc())
        .limit(MAX_EXAMPLE_CANDIDATES)
    )


def _earlier_successes(session: Session, *, connection_id: str, user_id: str) -> list[Example]:
    """The caller's own answered questions on the connection, newest first, less those the
    caller rated poorly or corrected. A question asked again counts once, with its newest SQL
    (`rank_examples` would keep only that one)."""
    rows = session.connection().execute(
        _earlier_successes_statement(), {"connection_id": connection_id, "user_id": user_id}
    )
    seen: set[str] = set()
    examples: list[Example] = []
    for question, sql in rows:
        if question not in seen:
            seen.add(question)
            examples.append(Example(question=str(question), sql=str(sql)))
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
    parsed, run.parsed = run.parsed, None
    with run.timings.measure("guard"):
        # One row beyond the cap lets the executor tell whether the result was truncated.
        # The probe row is the platform's business: the SQL shown has the cap itself.
        run.guarded = guard_sql(
            sql,
            snapshot=snapshot,
            dialect=connection.db_type,
            row_cap=run.row_cap + 1,
            parameters=None if params is None else list(params),
            shown_row_cap=run.row_cap,
            hidden=run.hidden,
            parsed=parsed,
        )
        run.shown_sql = run.guarded.shown_sql or run.guarded.sql
    run.emit("guard", {"sql": run.shown_sql, "tables": list(run.guarded.tables)})
    if not run.execute:
        return
    if params is not None:
        params = cap_limit_parameter(run.guarded, params, run.row_cap + 1)
    with run.timings.measure("execute"), waiting():
        run.result = executor.run_on_connection(
            connection,
            run.guarded.sql,
            row_cap=run.row_cap,
            timeout_seconds=run.timeout_seconds,
            settings=settings,
            params=params,
            max_result_bytes=run.max_result_bytes,
            max_cell_bytes=run.max_cell_bytes,
        )
        run.column_types = _column_types(run.result, snapshot, run.guarded.tables)
    result = run.result
    run.emit(
        "rows",
        {
            "columns": [
                {"name": c.name, "type": t}
                for c, t in zip(result.columns, run.column_types, strict=True)
            ],
            "rows": result.rows,
            "row_count": result.row_count,
            "truncated": result.truncated,
            "execution_time_ms": result.execution_time_ms,
        },
    )
    with run.timings.measure("execute"):
        run.chart = suggest_chart(
            [(c.name, t) for c, t in zip(result.columns, run.column_types, strict=True)],
            result.rows,
        )
    run.emit("chart", {"chart": run.chart.spec, "chart_type": run.chart.chart_type})


class _Repairable(Exception):
    """A failure the model may fix: the guard refused, or the database rejected the query."""

    def __init__(self, original: AppError) -> None:
        super().__init__(str(original))
        self.original = original
        self.details = original.details


def _checker(
    run: _Run, *, connection: DatabaseConnection, snapshot: SchemaSnapshot, settings: Settings
) -> Callable[[str], None]:
    """Guard and run one generated SQL; failures a model may fix come out as `_Repairable`."""

    def check(sql: str) -> None:
        try:
            _execute(run, connection=connection, snapshot=snapshot, sql=sql, settings=settings)
        except AppError as exc:
            if is_repairable(exc):
                raise _Repairable(exc) from exc
            raise

    return check


def _take_outcome(run: _Run, outcome: RepairOutcome[None]) -> None:
    run.generation = outcome.generation
    run.attempts = [{"sql": f.sql, "error": f.error} for f in outcome.failures]
    if outcome.error is not None:
        error = outcome.error
        raise error.original if isinstance(error, _Repairable) else error
    run.attempts.append({"sql": outcome.generation.sql, "error": None})


def _set_generate_ms(run: _Run, started: float) -> None:
    # generate_ms is the time spent generating: the whole loop minus guard and execution.
    run.timings.generate_ms = max(
        0.0,
        (time.perf_counter() - started) * 1000 - run.timings.guard_ms - run.timings.execute_ms,
    )


def _generated(run: _Run, generation: Generation) -> None:
    run.parsed = generation.parsed
    run.emit("sql", {"sql": generation.sql, "explanation": generation.explanation})


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
    check = _checker(run, connection=connection, snapshot=snapshot, settings=settings)
    started = time.perf_counter()
    try:
        outcome = generate_with_repair(
            generator,
            request,
            check,
            repairable=(_Repairable,),
            on_generated=partial(_generated, run),
        )
    finally:
        _set_generate_ms(run, started)
    _take_outcome(run, outcome)


async def _generate_and_run_async(
    run: _Run,
    generator: SqlGenerator,
    request: GenerationRequest,
    *,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    settings: Settings,
) -> None:
    """`_generate_and_run` with the generator awaited (no thread waits on the LLM) and each
    guard and execution on a worker thread."""
    check = _checker(run, connection=connection, snapshot=snapshot, settings=settings)

    def check_in_slot(sql: str) -> None:
        with cpu_work(settings.ask_cpu_slots):
            check(sql)

    async def check_on_thread(sql: str) -> None:
        await anyio.to_thread.run_sync(check_in_slot, sql, limiter=ask_threads())

    async def generated(generation: Generation) -> None:
        _generated(run, generation)

    started = time.perf_counter()
    try:
        outcome = await generate_with_repair_async(
            generator,
            request,
            check_on_thread,
            repairable=(_Repairable,),
            on_generated=generated,
        )
    finally:
        _set_generate_ms(run, started)
    _take_outcome(run, outcome)


def _listed(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _as_app_error(exc: Exception) -> AppError | None:
    if isinstance(exc, QuestionNotUnderstood):
        # Engines may describe what they recognised with sets or tuples; the answer is JSON.
        recognised = json.loads(json.dumps(exc.recognised, default=_listed))
        details: dict[str, Any] = {
            "recognised": recognised,
            "suggestions": [s.as_dict() for s in exc.suggestions],
        }
        if exc.confidence is not None:
            details["confidence"] = round(exc.confidence, 3)
        return QuestionNotUnderstoodError(exc.message, details=details)
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


_RecordT = TypeVar("_RecordT")


def _record_retrying(
    session_factory: SessionFactory,
    write: Callable[[Session], _RecordT],
    settings: Settings,
    run: _Run,
) -> _RecordT:
    """Commit a run's recording in one short write transaction, tried again while the
    platform database is busy (`Settings.record_retry_seconds`): the query already ran, so its
    record is not given up at the first lock held past the lock timeout."""
    try:
        return commit_with_retry(
            session_factory,
            write,
            retry_seconds=settings.record_retry_seconds,
            what=f"the recording of {run.query_id}",
        )
    except Exception:
        _log.exception("the recording of query %s was not written", run.query_id)
        raise


def _write_stage_metrics(
    session_factory: SessionFactory, run: _Run, *, source: str, stages: tuple[str, ...]
) -> None:
    """The stage timings, off the recording's transaction (see `_record_stage_metrics`)."""
    with session_factory() as session:
        _record_stage_metrics(session, run, source=source, stages=stages)
        session.commit()


def _record_stage_metrics(
    session: Session, run: _Run, *, source: str, stages: tuple[str, ...]
) -> None:
    """Queue the stage timings for the batch metric writer (off the recording transaction);
    without a writer they are written in `session`, which the caller commits."""
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
    """The sentence about the rows, made once per run (the message and the answer share it)."""
    if run.result is None or not run.execute:
        return None
    if run.summary is _NOT_SUMMARIZED:
        run.summary = summarize_result(
            [(c.name, t) for c, t in zip(run.result.columns, run.column_types, strict=True)],
            run.result.rows,
            truncated=run.result.truncated,
        )
    return cast("str | None", run.summary)


def _result_payload(run: _Run) -> dict[str, Any] | None:
    """What the chat message keeps: the columns and a preview of the rows of at most
    `run.preview_max_bytes` (the export re-runs the query for all of them)."""
    if run.result is None:
        return None
    preview, size = [], 0
    for row in run.result.rows:
        size += len(json.dumps(row, ensure_ascii=False, default=str))
        if size > run.preview_max_bytes:
            break
        preview.append(row)
    return {
        "summary": _summary(run),
        "columns": [
            {"name": c.name, "type": t}
            for c, t in zip(run.result.columns, run.column_types, strict=True)
        ],
        "rows": preview,
        "row_count": run.result.row_count,
        "preview_row_count": len(preview),
        "truncated": run.result.truncated,
        "truncated_reason": run.result.truncated_reason,
        "chart_type": run.chart.chart_type if run.chart else None,
        "chart": run.chart.spec if run.chart else None,
    }


def _example_candidates(
    session: Session,
    principal: Principal,
    *,
    connection_id: str,
    templates: list[QueryTemplate],
) -> list[Example]:
    """What an LLM prompt's examples are chosen from, most trusted first: only material the
    caller may see on this connection: its approved verified examples (and the caller's own
    pending ones), the query templates that apply to it
    (`templates_service.applicable_templates`), and the caller's own earlier answers that were
    not judged wrong. Never another user's answers."""
    verified = [
        Example(question=q, sql=s, verified=True)
        for q, s in feedback_retrieval.usable_examples(
            session, connection_id=connection_id, user_id=principal.user.id
        )
    ]
    return (
        verified
        + templates_service.examples_of(templates, MAX_EXAMPLE_CANDIDATES)
        + _earlier_successes(session, connection_id=connection_id, user_id=principal.user.id)
    )


def _uncapped(examples: list[Example], db_type: str, cap: int) -> list[Example]:
    """The chosen examples as the queries they stand for: an earlier answer's SQL is recorded
    with the platform's row cap (`LIMIT <cap + 1>`), which a prompt must not teach."""
    return [
        replace(e, sql=row_cap.without_row_cap(e.sql, dialect=db_type, row_cap=cap))
        for e in examples
    ]


def _examples(question: str, candidates: list[Example]) -> list[Example]:
    """The few-shot examples most similar to `question` (`relevance.rank_examples`), chosen
    with no platform transaction open."""
    return rank_examples(question, candidates, limit=MAX_EXAMPLES)


@dataclass(slots=True)
class _AskPlan:
    """Everything an ask read in its first phase, and what happened since."""

    principal: Principal
    chat: ChatSession
    connection: DatabaseConnection
    question: str
    choice: GeneratorChoice
    settings: Settings
    context: ClientContext | None
    run: _Run
    price_table: Any = None
    snapshot: SchemaSnapshot | None = None
    generator: SqlGenerator | None = None
    request: GenerationRequest | None = None
    failure: Exception | None = None
    """The first failure (recorded with the ask, then raised)."""
    on_recorded: OnRecorded | None = None

    @property
    def generator_name(self) -> str:
        return TEMPLATE_GENERATOR if self.run.template is not None else self.choice.name

    @property
    def waits_on_network(self) -> bool:
        return (
            self.failure is None
            and self.run.template is None
            and self.generator is not None
            and self.generator.waits_on_network
        )


AskPlan = _AskPlan
"""What an ask's first phase read (`read_ask_async`), handed to `finish_ask_async`."""


@dataclass(frozen=True, slots=True)
class _AskRow:
    """What an ask's one read statement found (None: no such row)."""

    user: User | None
    session_is_active: bool | None
    """The caller's user session (a bearer token's `sid`), when one was asked for."""
    chat: ChatSession | None
    connection: DatabaseConnection | None
    layer_version: int | None
    """The connection's current semantic layer version (None: it has no layer)."""
    templates_version: tuple[int, datetime | None]
    snapshot_version: schema_cache.SnapshotVersion


@cache
def _ask_row_statement(*, connection_given: bool) -> Select[Any]:
    """`_read_ask_row`'s statement, built once (bound parameters: `user_id`,
    `user_session_id`, `chat_session_id` and, when `connection_given`, `connection_id`)."""
    chosen: Any = (
        bindparam("connection_id", type_=String) if connection_given else ChatSession.connection_id
    )
    return (
        select(
            User,
            UserSession.is_active,
            ChatSession,
            DatabaseConnection,
            SemanticLayerHead.current_version,
            *templates_service.applicable_version_columns(
                DatabaseConnection.user_id, DatabaseConnection.id
            ),
            *schema_cache.snapshot_version_columns(DatabaseConnection.id),
        )
        .select_from(User)
        .outerjoin(
            UserSession,
            and_(
                UserSession.user_id == User.id,
                UserSession.id == bindparam("user_session_id", type_=String),
            ),
        )
        .outerjoin(ChatSession, ChatSession.id == bindparam("chat_session_id", type_=String))
        .outerjoin(DatabaseConnection, DatabaseConnection.id == chosen)
        .outerjoin(SemanticLayerHead, SemanticLayerHead.connection_id == DatabaseConnection.id)
        .where(User.id == bindparam("user_id", type_=String))
    )


def _read_ask_row(
    session: Session,
    *,
    caller: Credentials | Principal,
    chat_session_id: str,
    connection_id: str | None,
) -> _AskRow:
    """One statement: the caller's user and user session (a bearer token's), the chat
    session, the connection (`connection_id`, else the chat session's), the version number of
    its semantic layer, and the versions of its templates and schema snapshot as the shared
    database has them now, which key this process's parsed copies (`_visible_templates`,
    `semantic.current.layer_at`, `schema_cache.load_snapshot`): a change made by any process
    is seen by the next ask."""
    if isinstance(caller, Credentials):
        claims = caller.claims or {}
        user_id, sid = str(claims.get("sub")), claims.get("sid")
        user_session_id = sid if isinstance(sid, str) else None
    else:
        user_id, user_session_id = caller.user.id, None
    statement = _ask_row_statement(connection_given=connection_id is not None)
    values = {
        "user_id": user_id,
        "user_session_id": user_session_id,
        "chat_session_id": chat_session_id,
        "connection_id": connection_id,
    }
    found = session.execute(statement, values).first()
    if found is None:
        return _AskRow(None, None, None, None, None, (0, None), (0, None))
    user, active, chat, connection, layer, templates, template_change, tables, snapshot = found
    return _AskRow(
        user=user,
        session_is_active=active if user_session_id is not None else None,
        chat=chat,
        connection=connection,
        layer_version=layer,
        templates_version=(int(templates or 0), template_change),
        snapshot_version=(int(tables or 0), snapshot),
    )


VISIBLE_TEMPLATES_CACHE_ENTRIES = 256
"""Connections whose visible templates this process keeps (least recently used dropped)."""
_visible: OrderedDict[tuple[Any, ...], list[QueryTemplate]] = OrderedDict()
_visible_lock = threading.Lock()


def _visible_templates(
    session: Session,
    connection: DatabaseConnection,
    *,
    row: _AskRow,
    hidden: HiddenItems,
    snapshot: SchemaSnapshot | None,
) -> list[QueryTemplate]:
    """The templates a question on `connection` may match or learn from, less those reading
    what the layer hides: read and checked once per version of the templates, the layer and
    the snapshot (the ask's one statement read them), then kept in this process. The templates
    kept are detached copies, read and never written through."""
    key = (
        connection.id,
        connection.user_id,
        row.templates_version,
        row.layer_version,
        # The snapshot matters only to templates checked against hidden items.
        row.snapshot_version if hidden else None,
    )
    with _visible_lock:
        known = _visible.get(key)
        if known is not None:
            _visible.move_to_end(key)
            return known
    templates = templates_service.without_hidden_reads(
        templates_service.applicable_templates(session, connection),
        connection=connection,
        hidden=hidden,
        snapshot=snapshot,
    )
    with _visible_lock:
        _visible[key] = templates
        while len(_visible) > VISIBLE_TEMPLATES_CACHE_ENTRIES:
            _visible.popitem(last=False)
    return templates


def _without_transaction(session: Session) -> None:
    """On PostgreSQL, let the session run its statements without BEGIN and COMMIT/ROLLBACK
    (each statement is then its own transaction): for a read phase, where at READ COMMITTED
    every statement takes its own snapshot inside a transaction too, so the reads see the same
    data (the phase's one possible write, a session adopting the caller's only connection, is
    a single statement); and for a recording written as one statement."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _read_ask(
    session_factory: SessionFactory,
    *,
    principal: Principal | Authenticate,
    chat_session_id: str,
    question: str,
    settings: Settings,
    context: ClientContext | None,
    connection_id: str | None,
    generator_name: str | None,
    notify: Notify | None,
    execute: bool = True,
) -> _AskPlan:
    """Phase one: one short read transaction, closed before anything slow starts.

    Raises what makes the ask impossible (quota, unknown session or connection); a failure
    after that is kept in the plan, to be recorded with the ask. Given an `Authenticate`, the
    caller is read first in that same transaction (401/403 before anything else).
    """
    question = question.strip()
    with session_factory() as session:
        _without_transaction(session)
        # A bearer token's caller is read with everything else in the ask's one statement;
        # an API key's (a write of its own: its use is counted) or a given principal first.
        bearer = (
            principal if isinstance(principal, Credentials) and principal.api_key is None else None
        )
        if bearer is None and not isinstance(principal, Principal):
            principal = principal(session)
        row = _read_ask_row(
            session,
            caller=bearer if bearer is not None else cast("Principal", principal),
            chat_session_id=chat_session_id,
            connection_id=connection_id,
        )
        if bearer is not None:
            assert bearer.claims is not None  # noqa: S101 - a bearer's credentials have claims
            principal = bearer.accept(
                principal_of_session_row(bearer.claims, row.user, row.session_is_active)
            )
        assert isinstance(principal, Principal)  # noqa: S101 - resolved above
        user = principal.user
        chat = chat_service.own_chat_session(row.chat, user_id=user.id, session_id=chat_session_id)
        chosen_id = connection_id or chat.connection_id
        if chosen_id is None:
            # A session without a connection asks the caller's only one, and keeps it from
            # then on (one short write, committed before anything slow starts).
            chosen_id = only_connection_id(session, principal=principal)
            if chosen_id is None:
                raise NoConnectionChosen()
            chat.connection_id = chosen_id
            session.commit()
            row = _read_ask_row(
                session, caller=principal, chat_session_id=chat_session_id, connection_id=chosen_id
            )
        connection = connections_service.usable_connection(row.connection, principal, chosen_id)
        generator_settings = llm_settings(session, settings)
        choice = choose_generator(session, user, generator_name, generator_settings)
        if choice.name in LLM_GENERATORS:
            # Only LLMs spend tokens: the offline engine is never refused by the quota.
            auth_service.ensure_token_quota(session, user)
        plan = _AskPlan(
            principal=principal,
            chat=chat,
            connection=connection,
            question=question,
            choice=choice,
            settings=settings,
            context=context,
            run=_Run(notify=notify, execute=execute),
        )
        run = plan.run
        cached = None
        layer: SemanticLayer | None = None
        candidates: list[Example] = []
        history: list[Turn] = []
        try:
            _load_limits(session, run)
            plan.price_table = get_config_value(session, "llm.price_table")
            cached = schema_cache.load_snapshot(session, connection, version=row.snapshot_version)
            if row.layer_version is not None:
                layer = layer_at(session, connection.id, row.layer_version)
            run.hidden = hidden_items(layer)
            templates = _visible_templates(
                session,
                connection,
                row=row,
                hidden=run.hidden,
                snapshot=cached[0] if cached is not None else None,
            )
            matched = templates_service.match_template(question, templates)
            if matched is not None:
                run.template, run.params = matched
            else:
                plan.generator = registry.get_generator(choice.name, generator_settings)
                history = [
                    Turn(question=q, sql=s)
                    for q, s in chat_service.recent_turns(
                        session, chat, max_turns=MAX_HISTORY_TURNS
                    )
                ]
                if plan.generator.uses_examples:
                    candidates = _example_candidates(
                        session, principal, connection_id=connection.id, templates=templates
                    )
        except Exception as exc:  # noqa: BLE001 - recorded with the ask, then raised
            plan.failure = exc
    if plan.failure is not None:
        return plan
    run.emit(
        "understood",
        {
            "question": question,
            "connection_id": connection.id,
            "generator": plan.generator_name,
            "requested_generator": choice.requested,
            "template_id": run.template.id if run.template is not None else None,
        },
    )
    try:
        # A first use introspects with no platform connection open (and no CPU slot held: it
        # waits on the user's database), then stores the snapshot in a short transaction.
        if cached is not None:
            plan.snapshot = cached[0]
        else:
            with waiting():
                plan.snapshot = schema_cache.introspect_and_store(
                    session_factory, connection, settings=settings
                )
        if plan.generator is not None:
            if run.hidden:
                history, candidates = _without_hidden_sql(
                    history, candidates, snapshot=plan.snapshot, hidden=run.hidden
                )
            view = _generator_view(connection.id, plan.snapshot, layer, run.hidden)
            plan.request = GenerationRequest(
                question=question,
                # Hidden tables and columns never reach a generator or a prompt.
                schema=view[0],
                history=history,
                examples=_uncapped(
                    _examples(question, candidates), connection.db_type, run.row_cap
                ),
                dialect=sqlglot_dialect(connection.db_type),
                row_cap=run.row_cap,
                model=choice.model,
                semantic=view[1],
            )
    except Exception as exc:  # noqa: BLE001 - recorded with the ask, then raised
        plan.failure = exc
    return plan


_GeneratorView = tuple[SchemaSnapshot, SemanticLayer | None]
_views: OrderedDict[
    str, tuple[SchemaSnapshot, SemanticLayer | None, SchemaSnapshot, SemanticLayer | None]
] = OrderedDict()
_views_lock = threading.Lock()


def _generator_view(
    connection_id: str,
    snapshot: SchemaSnapshot,
    layer: SemanticLayer | None,
    hidden: HiddenItems,
) -> _GeneratorView:
    """The snapshot and layer as a generator sees them (hidden items left out), made once per
    parsed snapshot and layer (both kept per version, see `_read_ask_row`): the same objects
    for every ask while nothing changed, so a generator's per-schema preparation is found by
    identity (`engines.builtin.schema_index`)."""
    with _views_lock:
        seen = _views.get(connection_id)
        if seen is not None and seen[0] is snapshot and seen[1] is layer:
            _views.move_to_end(connection_id)
            return seen[2], seen[3]
    view = (
        visible_snapshot(snapshot, hidden),
        public_layer(layer) if layer is not None else None,
    )
    with _views_lock:
        _views[connection_id] = (snapshot, layer, *view)
        while len(_views) > VISIBLE_TEMPLATES_CACHE_ENTRIES:
            _views.popitem(last=False)
    return view


def _without_hidden_sql(
    history: list[Turn],
    examples: list[Example],
    *,
    snapshot: SchemaSnapshot,
    hidden: HiddenItems,
) -> tuple[list[Turn], list[Example]]:
    """Earlier answers and examples whose SQL reads what the layer now hides lose that SQL:
    it would show a generator the hidden names."""
    dialect = snapshot.db_type
    turns = [
        Turn(question=t.question, sql=None)
        if t.sql and names_hidden(t.sql, dialect=dialect, hidden=hidden)
        else t
        for t in history
    ]
    kept = [e for e in examples if not names_hidden(e.sql, dialect=dialect, hidden=hidden)]
    return turns, kept


def _run_blocking(plan: _AskPlan) -> None:
    """Phase two on this thread: the template's SQL, or generate (with repairs), guard, run."""
    run = plan.run
    assert plan.snapshot is not None  # noqa: S101
    if run.template is not None:
        run.generation = Generation(
            sql=run.template.sql_template,
            explanation=f"Answered from the query template {run.template.name!r}.",
        )
        run.emit("sql", {"sql": run.generation.sql, "explanation": run.generation.explanation})
        _execute(
            run,
            connection=plan.connection,
            snapshot=plan.snapshot,
            sql=run.template.sql_template,
            settings=plan.settings,
            params=run.params,
        )
        return
    assert plan.generator is not None and plan.request is not None  # noqa: S101
    _generate_and_run(
        run,
        plan.generator,
        plan.request,
        connection=plan.connection,
        snapshot=plan.snapshot,
        settings=plan.settings,
    )


def _finish_ask(session_factory: SessionFactory, plan: _AskPlan) -> AskAnswer:
    """Phase three: record in one short write transaction; raises the failure, if any, after
    the commit. `plan.on_recorded` writes in that same transaction (a background job's
    outcome), so the ask and what depends on it commit together or not at all."""
    run, failure = plan.run, plan.failure
    error = _as_app_error(failure) if failure is not None else None

    def write(session: Session) -> tuple[list[int], float | None, AskAnswer | Exception | None]:
        messages, cost = _record_ask(session, plan, error=error, failure=failure)
        outcome: AskAnswer | Exception | None = None
        if plan.on_recorded is not None:
            outcome = _outcome(plan, messages, cost, error)
            plan.on_recorded(session, outcome)
        return messages, cost, outcome

    with run.timings.measure("record"):
        messages, cost, outcome = _record_retrying(session_factory, write, plan.settings, run)
    _write_stage_metrics(session_factory, run, source="ask", stages=STAGES)
    if outcome is None:
        outcome = _outcome(plan, messages, cost, error)
    if isinstance(outcome, AskAnswer):
        return outcome
    if failure is not None and outcome is not failure:
        raise outcome from failure
    raise outcome


def _outcome(
    plan: _AskPlan, messages: list[int], cost: float | None, error: AppError | None
) -> AskAnswer | Exception:
    """What the ask answers: its answer, or the error to raise (with the ids it was recorded
    under in its details)."""
    run, failure = plan.run, plan.failure
    ran = plan.generator_name
    if failure is not None:
        if error is None:
            return failure
        error.details.setdefault("query_id", run.query_id)
        error.details.setdefault("message_id", messages[1])
        error.details.setdefault("generator", ran)
        return error

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
        message_id=messages[1],
        user_message_id=messages[0],
        explanation=run.generation.explanation,
        generator=ran,
        model=run.generation.model,
        prompt_tokens=run.generation.prompt_tokens,
        completion_tokens=run.generation.completion_tokens,
        requested_generator=plan.choice.requested,
        generator_note=plan.choice.fallback_reason if run.template is None else None,
        template_id=run.template.id if run.template is not None else None,
        parameters=run.params,
        attempts=len(run.attempts) or 1,
        cost_estimate=cost,
        executed=run.execute,
        summary=_summary(run),
    )


def _run_blocking_failures(plan: _AskPlan) -> None:
    """`_run_blocking`, keeping its failure in the plan (to be recorded, then raised)."""
    if plan.failure is None:
        try:
            _run_blocking(plan)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised
            plan.failure = exc


def _continue_blocking(session_factory: SessionFactory, plan: _AskPlan) -> AskAnswer:
    _run_blocking_failures(plan)
    return _finish_ask(session_factory, plan)


def _start_ask(session_factory: SessionFactory, **kwargs: Any) -> AskAnswer | _AskPlan:
    """Read; then, unless generating waits on the network, finish on this same thread (the
    offline engine and templates take one thread hop in all)."""
    with cpu_work(kwargs["settings"].ask_cpu_slots):
        plan = _read_ask(session_factory, **kwargs)
        if plan.waits_on_network:
            return plan
        return _continue_blocking(session_factory, plan)


def _finish_in_slot(session_factory: SessionFactory, plan: _AskPlan) -> AskAnswer:
    with cpu_work(plan.settings.ask_cpu_slots):
        return _finish_ask(session_factory, plan)


def ask(
    session_factory: SessionFactory,
    *,
    principal: Principal,
    chat_session_id: str,
    question: str,
    settings: Settings,
    context: ClientContext | None = None,
    connection_id: str | None = None,
    generator_name: str | None = None,
    notify: Notify | None = None,
    execute: bool = True,
    on_recorded: OnRecorded | None = None,
) -> AskAnswer:
    """Answer a question in a chat session, blocking this thread throughout (the command line,
    background work); records it, and on failure commits then raises.

    A question that fits a visible query template is answered from the template, whatever
    generator is configured; otherwise the chosen generator writes SQL, and one that supports
    repair gets the guard's or the database's error back a bounded number of times.
    `on_recorded` writes in the recording's transaction (see `OnRecorded`).
    """
    with cpu_work(settings.ask_cpu_slots):
        plan = _read_ask(
            session_factory,
            principal=principal,
            chat_session_id=chat_session_id,
            question=question,
            settings=settings,
            context=context,
            connection_id=connection_id,
            generator_name=generator_name,
            notify=notify,
            execute=execute,
        )
        plan.on_recorded = on_recorded
        if plan.waits_on_network:
            # An LLM's answer is awaited with the slot given back.
            with waiting():
                _run_blocking_failures(plan)
            return _finish_ask(session_factory, plan)
        return _continue_blocking(session_factory, plan)


async def ask_async(
    session_factory: SessionFactory,
    *,
    principal: Principal | Authenticate,
    chat_session_id: str,
    question: str,
    settings: Settings,
    context: ClientContext | None = None,
    connection_id: str | None = None,
    generator_name: str | None = None,
    notify: Notify | None = None,
    execute: bool = True,
) -> AskAnswer:
    """`ask` for the event loop: platform reads and writes and the target query run on worker
    threads, an LLM is awaited with no thread and no platform connection held.

    Cancelled while it waits (a streaming client went away), the ask is recorded as
    `cancelled` before the cancellation goes on. `principal` may be an `Authenticate`, read in
    the ask's first transaction.
    """
    started = await anyio.to_thread.run_sync(
        partial(
            _start_ask,
            session_factory,
            principal=principal,
            chat_session_id=chat_session_id,
            question=question,
            settings=settings,
            context=context,
            connection_id=connection_id,
            generator_name=generator_name,
            notify=notify,
            execute=execute,
        ),
        limiter=ask_threads(),
    )
    if isinstance(started, AskAnswer):
        return started
    return await _generate_and_finish_async(session_factory, started)


def _read_in_slot(session_factory: SessionFactory, **kwargs: Any) -> _AskPlan:
    with cpu_work(kwargs["settings"].ask_cpu_slots):
        return _read_ask(session_factory, **kwargs)


def _continue_in_slot(session_factory: SessionFactory, plan: _AskPlan) -> AskAnswer:
    with cpu_work(plan.settings.ask_cpu_slots):
        return _continue_blocking(session_factory, plan)


async def read_ask_async(
    session_factory: SessionFactory,
    *,
    principal: Principal | Authenticate,
    chat_session_id: str,
    question: str,
    settings: Settings,
    context: ClientContext | None = None,
    connection_id: str | None = None,
    generator_name: str | None = None,
    notify: Notify | None = None,
) -> AskPlan:
    """The ask's first phase alone, on a worker thread (its one short read transaction, the
    caller read first when given an `Authenticate`): raises what makes the ask impossible
    before anything is answered; `finish_ask_async` does the rest. For a streamed ask, whose
    refused caller is answered with a status before the stream starts."""
    return await anyio.to_thread.run_sync(
        partial(
            _read_in_slot,
            session_factory,
            principal=principal,
            chat_session_id=chat_session_id,
            question=question,
            settings=settings,
            context=context,
            connection_id=connection_id,
            generator_name=generator_name,
            notify=notify,
        ),
        limiter=ask_threads(),
    )


async def finish_ask_async(session_factory: SessionFactory, plan: AskPlan) -> AskAnswer:
    """Generate, guard, execute and record an ask `read_ask_async` read, as `ask_async` does.

    Cancelled at any point, the ask is recorded (as `cancelled` unless its work had already
    run to the end) before the cancellation goes on."""
    if not plan.waits_on_network:
        try:
            return await anyio.to_thread.run_sync(
                _continue_in_slot, session_factory, plan, limiter=ask_threads()
            )
        except anyio.get_cancelled_exc_class():
            # Cancelled while waiting for a thread: the work never began (once begun, the
            # thread runs to its end and records the ask itself).
            await record_cancelled_async(session_factory, plan)
            raise
    return await _generate_and_finish_async(session_factory, plan)


async def record_cancelled_async(session_factory: SessionFactory, plan: AskPlan) -> None:
    """Record an ask `read_ask_async` read, whose work never began, as `cancelled` (a streamed
    ask whose client left before its response began); shielded from the cancellation that
    usually comes with it."""
    plan.failure = AskCancelled()
    with anyio.CancelScope(shield=True), suppress(AskCancelled):
        await anyio.to_thread.run_sync(
            _finish_in_slot, session_factory, plan, limiter=ask_threads()
        )


async def _generate_and_finish_async(session_factory: SessionFactory, plan: _AskPlan) -> AskAnswer:
    """An LLM awaited with no thread and no platform connection held, then the recording on
    a worker thread; cancelled while it waits, the ask is recorded as `cancelled`."""
    assert plan.generator is not None and plan.request is not None  # noqa: S101
    assert plan.snapshot is not None  # noqa: S101
    try:
        await _generate_and_run_async(
            plan.run,
            plan.generator,
            plan.request,
            connection=plan.connection,
            snapshot=plan.snapshot,
            settings=plan.settings,
        )
    except anyio.get_cancelled_exc_class():
        plan.failure = AskCancelled()
        with anyio.CancelScope(shield=True):
            with suppress(AskCancelled):
                await anyio.to_thread.run_sync(
                    _finish_in_slot, session_factory, plan, limiter=ask_threads()
                )
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, then re-raised
        plan.failure = exc
    # Recorded even if cancelled from here on (waiting for a thread included): the work is done.
    with anyio.CancelScope(shield=True):
        answer = await anyio.to_thread.run_sync(
            _finish_in_slot, session_factory, plan, limiter=ask_threads()
        )
    return answer


def _record_ask(
    session: Session,
    plan: _AskPlan,
    *,
    error: AppError | None,
    failure: Exception | None,
) -> tuple[list[Any], float | None]:
    run, principal, chat, connection = plan.run, plan.principal, plan.chat, plan.connection
    question, choice, generator_name = plan.question, plan.choice, plan.generator_name
    context = plan.context
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
    prompt_tokens = generation.prompt_tokens if generation else 0
    completion_tokens = generation.completion_tokens if generation else 0
    cost = (
        estimate_cost(
            generation.model,
            prompt_tokens,
            completion_tokens,
            plan.price_table,
        )
        if generation is not None and prompt_tokens + completion_tokens > 0
        else None
    )
    template = run.template
    analytics = recorder.query_values(
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
    asked = recorder.event_values(
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
            "estimated_usage": generation.recognised.get("estimated_usage") if generation else None,
            "cost_estimate": cost,
            "success": success,
            "executed": run.execute,
            "error_code": error_code,
            "row_count": run.result.row_count if run.result else None,
            "timings_ms": {k: v for k, v in run.timings.as_dict().items() if k != "record"},
        },
    )
    if template is None and plan.on_recorded is None:
        # The recording is then one statement on PostgreSQL (`append_messages`, an LLM's
        # token usage included), atomic on its own: no BEGIN and COMMIT round trips around
        # it, and no row lock (the chat session's, the user's) held between statements.
        _without_transaction(session)
    usage = auth_service.token_usage_write(
        session, principal.user.id, prompt_tokens + completion_tokens
    )
    # Every row is built before the first write; the writes follow back to back as Core
    # statements (no unit-of-work flush), so the write transaction stays short.
    messages = chat_service.append_messages(
        session,
        chat,
        [NewMessage(message_type="user", content=question, query_id=run.query_id), assistant],
        along=[(_ANALYTICS, analytics), (_EVENTS, asked)],
        then=[usage] if usage is not None else [],
    )
    if template is not None:
        templates_service.count_template_use(session, template.id)
    return messages, cost


def run_sql(
    session_factory: SessionFactory,
    *,
    principal: Principal,
    connection_id: str,
    sql: str,
    settings: Settings,
    context: ClientContext | None = None,
    message_id: int | None = None,
) -> QueryAnswer:
    """Run user-written SQL through the same guard and executor; records like an ask.

    With `message_id` (a draft answer of the caller's, asked with `execute: false` on this
    connection) the run is also recorded on that message, so its thread shows the result."""
    with session_factory() as session:
        connection = ensure_usable_connection(
            session, principal=principal, connection_id=connection_id
        )
        if message_id is not None:
            draft = chat_service.get_draft(
                session, user_id=principal.user.id, message_id=message_id
            )
            drafted_on = session.scalar(
                select(QueryAnalytics.connection_id).where(
                    QueryAnalytics.query_id == draft.query_id
                )
            )
            if drafted_on is not None and drafted_on != connection.id:
                raise DraftConnectionMismatch(
                    details={"message_id": message_id, "connection_id": drafted_on}
                )
    return _run_recorded(
        session_factory,
        _Run(draft_message_id=message_id),
        principal=principal,
        connection=connection,
        sql=sql,
        settings=settings,
        context=context,
    )


def check_sql(
    session_factory: SessionFactory,
    *,
    connection: DatabaseConnection,
    sql: str,
    settings: Settings,
) -> str:
    """Check SQL with the guard of `POST /query/sql` on `connection` without running it (the
    guard's 400 when it refuses); returns the SQL as checked, without a row cap. Reads in a
    short transaction; a connection never introspected is introspected with nothing held."""
    with session_factory() as session:
        cached = schema_cache.load_snapshot(session, connection)
    snapshot = (
        cached[0]
        if cached is not None
        else schema_cache.introspect_and_store(session_factory, connection, settings=settings)
    )
    guard_sql(sql, snapshot=snapshot, dialect=connection.db_type, row_cap=None)
    return sql.strip().rstrip(";").strip()


def run_template(
    session_factory: SessionFactory,
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
    with session_factory() as session:
        template, sql, bound = templates_service.prepare_template_run(
            session, principal, template_id, parameters
        )
        if (
            connection_id is not None
            and template.connection_id is not None
            and connection_id != template.connection_id
        ):
            raise TemplateConnectionMismatch(
                details={"template_connection_id": template.connection_id}
            )
        chosen_id = connection_id or template.connection_id
        if chosen_id is None:
            raise NoConnectionChosen("Choose a connection: the template is not bound to one.")
        connection = ensure_usable_connection(session, principal=principal, connection_id=chosen_id)
        templates_service.ensure_template_applies(template, connection)
        # The use is counted in this short transaction, before the query runs.
        session.commit()
    run = _Run(template=template, params=bound)
    return _run_recorded(
        session_factory,
        run,
        principal=principal,
        connection=connection,
        sql=sql,
        settings=settings,
        context=context,
    )


def _run_recorded(
    session_factory: SessionFactory,
    run: _Run,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    sql: str,
    settings: Settings,
    context: ClientContext | None,
) -> QueryAnswer:
    """Read limits and the snapshot (short transaction), run with no platform connection
    held, record in one short write transaction; on failure commit the record, then raise."""
    user = principal.user
    template = run.template
    source = "template" if template is not None else "sql"
    failure: Exception | None = None
    try:
        with session_factory() as session:
            _load_limits(session, run)
            cached = schema_cache.load_snapshot(session, connection)
            run.hidden = hidden_items(semantic_service.load_current_layer(session, connection.id))
        snapshot = (
            cached[0]
            if cached is not None
            else schema_cache.introspect_and_store(session_factory, connection, settings=settings)
        )
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
    error = _as_app_error(failure) if failure is not None else None
    success = failure is None
    error_code = (error.code if error else "internal_error") if failure else None

    def write(session: Session) -> None:
        if run.draft_message_id is None:
            # The recording is then one statement on PostgreSQL (`insert_rows_together`),
            # atomic on its own: no BEGIN and COMMIT round trips around it.
            _without_transaction(session)
        analytics = recorder.query_values(
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
        if run.draft_message_id is not None:
            data["message_id"] = run.draft_message_id
            if success:
                payload = _result_payload(run) or {}
                chat_service.record_draft_run(
                    session,
                    message_id=run.draft_message_id,
                    sql=run.shown_sql or sql,
                    query_result={**payload, "ran_query_id": run.query_id},
                    execution_time_ms=run.result.execution_time_ms if run.result else None,
                )
        ran = recorder.event_values(
            event_type=EventType.TEMPLATE_RAN if template is not None else EventType.SQL_RAN,
            user_id=user.id,
            context=context,
            user_session_id=principal.user_session_id,
            data=data,
        )
        recorder.insert_rows_together(session, [(QueryAnalytics, analytics), (Event, ran)])

    with run.timings.measure("record"):
        _record_retrying(session_factory, write, settings, run)
    _write_stage_metrics(session_factory, run, source=source, stages=("guard", "execute", "record"))
    if failure is not None:
        if error is not None:
            error.details.setdefault("query_id", run.query_id)
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
