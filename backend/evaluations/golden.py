"""A connection's golden set: question/SQL pairs added one by one, uploaded as a JSON, CSV or
YAML list, or imported from material the platform already holds (templates, well-rated earlier
answers, the connection's verified examples).

Every gold SQL passes the guard on its connection before it is stored; an upload is all or
nothing. Importers share one small interface (`GoldenImporter`), so another source (verified
examples) plugs in with `register_importer`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.connections import schema_cache
from backend.connections import service as connections_service
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core import yaml_input
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.pagination import keyset_page
from backend.evaluations.errors import (
    GoldenQuestionNotFound,
    GoldenSqlRefused,
    GoldenUploadInvalid,
    GoldenUploadTooLarge,
)
from backend.evaluations.models import GoldenQuestion
from backend.evaluations.schemas import (
    MAX_RUN_QUESTIONS,
    GoldenQuestionCreate,
    GoldenQuestionRead,
)
from backend.feedback.models import AnswerFeedback, VerifiedExample
from backend.feedback.service import GOOD_RATING
from backend.nl2sql import row_cap
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.evaluation import EVAL_ROW_CAP, has_top_level_order
from backend.nl2sql.guard import guard_sql
from backend.observability import recorder
from backend.observability.event_types import AuditAction
from backend.observability.models import QueryAnalytics
from backend.templates import service as templates_service

SessionFactory = Callable[[], Session]


# ------------------------------------------------------------------ reading and guarding


def get_connection(
    session: Session, principal: Principal, connection_id: str
) -> DatabaseConnection:
    """The caller's connection (404 for another user's, 403 for a key not allowed on it)."""
    return connections_service.get_connection(session, principal, connection_id)


def connection_snapshot(
    session: Session,
    session_factory: SessionFactory,
    connection: DatabaseConnection,
    *,
    settings: Settings,
) -> SchemaSnapshot:
    """The cached schema snapshot, or a fresh introspection stored in its own transaction
    (the caller's session is committed first, so nothing is held while the database answers)."""
    cached = schema_cache.load_snapshot(session, connection)
    if cached is not None:
        return cached[0]
    session.commit()
    return schema_cache.introspect_and_store(session_factory, connection, settings=settings)


def check_gold_sql(
    sql: str, *, connection: DatabaseConnection, snapshot: SchemaSnapshot, index: int | None
) -> None:
    """Raises `GoldenSqlRefused` (422) naming the item and the guard's rule."""
    try:
        guard_sql(sql, snapshot=snapshot, dialect=connection.db_type, row_cap=EVAL_ROW_CAP)
    except GuardRefused as exc:
        details: dict[str, Any] = {
            "rule": exc.details.get("rule", exc.code),
            "reason": exc.message,
        }
        if index is not None:
            details["index"] = index
        raise GoldenSqlRefused(details=details) from exc


def golden_read(row: GoldenQuestion) -> GoldenQuestionRead:
    return GoldenQuestionRead(
        id=row.id,
        connection_id=row.connection_id,
        question=row.question,
        sql=row.gold_sql,
        ordered=row.ordered,
        source=row.source,
        source_ref=row.source_ref,
        created_at=row.created_at,
    )


def list_golden(
    session: Session, *, connection: DatabaseConnection, limit: int, cursor: str | None
) -> tuple[list[GoldenQuestion], str | None]:
    return keyset_page(
        session,
        select(GoldenQuestion).where(GoldenQuestion.connection_id == connection.id),
        keys=[GoldenQuestion.created_at, GoldenQuestion.id],
        kinds=[datetime, str],
        key_of=lambda g: (g.created_at, g.id),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


def golden_questions(
    session: Session, *, connection_id: str, ids: Sequence[str] | None
) -> list[GoldenQuestion]:
    """The connection's golden questions, oldest first (only `ids`, in that order, if given);
    raises `GoldenQuestionNotFound` for an id that is not in the set."""
    rows = list(
        session.scalars(
            select(GoldenQuestion)
            .where(GoldenQuestion.connection_id == connection_id)
            .order_by(GoldenQuestion.created_at, GoldenQuestion.id)
        )
    )
    if ids is None:
        return rows
    by_id = {row.id: row for row in rows}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise GoldenQuestionNotFound(details={"golden_ids": missing[:20]})
    return [by_id[i] for i in dict.fromkeys(ids)]


def delete_golden(
    session: Session,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    golden_id: str,
    context: ClientContext,
) -> None:
    row = session.get(GoldenQuestion, golden_id)
    if row is None or row.connection_id != connection.id:
        raise GoldenQuestionNotFound(details={"golden_id": golden_id})
    session.execute(delete(GoldenQuestion).where(GoldenQuestion.id == golden_id))
    recorder.audit(
        session,
        action=AuditAction.GOLDEN_DELETED,
        user_id=principal.user.id,
        context=context,
        resource_type="golden_question",
        resource_id=golden_id,
        old_values={"connection_id": connection.id, "question": row.question},
    )


# ------------------------------------------------------------------ adding


def _key(question: str) -> str:
    return " ".join(question.lower().split())


def add_golden(
    session: Session,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    items: Sequence[GoldenQuestionCreate],
    source: str,
    refs: Sequence[str | None] | None = None,
    context: ClientContext,
) -> tuple[list[GoldenQuestion], int]:
    """Guard every item's SQL (all or nothing), then store the ones whose question is not in
    the set yet. Returns the stored rows and how many were skipped as already present."""
    for index, item in enumerate(items):
        check_gold_sql(item.sql, connection=connection, snapshot=snapshot, index=index)
    known = {
        _key(q)
        for q in session.scalars(
            select(GoldenQuestion.question).where(GoldenQuestion.connection_id == connection.id)
        )
    }
    added: list[GoldenQuestion] = []
    skipped = 0
    for index, item in enumerate(items):
        key = _key(item.question)
        if key in known:
            skipped += 1
            continue
        known.add(key)
        row = GoldenQuestion(
            connection_id=connection.id,
            user_id=principal.user.id,
            question=item.question.strip(),
            gold_sql=item.sql.strip(),
            ordered=item.ordered if item.ordered is not None else has_top_level_order(item.sql),
            source=source,
            source_ref=refs[index] if refs is not None else None,
        )
        session.add(row)
        added.append(row)
    session.flush()
    if added:
        recorder.audit(
            session,
            action=AuditAction.GOLDEN_ADDED,
            user_id=principal.user.id,
            context=context,
            resource_type="connection",
            resource_id=connection.id,
            new_values={"source": source, "added": len(added), "skipped": skipped},
        )
    return added, skipped


# ------------------------------------------------------------------ uploads


MAX_UPLOAD_YAML_EVENTS = 300_000
"""Events a YAML golden set may have: more than a document of `UPLOAD_MAX_CHARS` can hold, so
too many questions is still the 413 it is for JSON; a bound of its own all the same."""
MAX_UPLOAD_YAML_DEPTH = 8


def _truthy(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("", "null"):
        return None
    if lowered in ("1", "true", "yes", "y"):
        return True
    if lowered in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"not a boolean: {value[:20]!r}")


def _parse(text: str, kind: str) -> Any:
    if kind == "json":
        return json.loads(text)
    if kind == "yaml":
        return yaml_input.load_bounded(
            text, max_events=MAX_UPLOAD_YAML_EVENTS, max_depth=MAX_UPLOAD_YAML_DEPTH
        )
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if not {"question", "sql"} <= fields:
        raise ValueError("the CSV header must name the columns question and sql (and ordered)")
    items: list[dict[str, Any]] = []
    for row in reader:
        clean = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        item: dict[str, Any] = {"question": clean.get("question"), "sql": clean.get("sql")}
        if clean.get("ordered") is not None:
            item["ordered"] = _truthy(str(clean["ordered"]))
        items.append(item)
        if len(items) > MAX_RUN_QUESTIONS:
            break
    return items


def parse_upload(text: str, *, kind: str) -> list[GoldenQuestionCreate]:
    """A golden-set file's items; raises `GoldenUploadTooLarge` (413, over 1000 items) or
    `GoldenUploadInvalid` (422, naming the item and field) for anything else than a list of
    {question, sql, ordered?}."""
    try:
        parsed = _parse(text, kind)
    except (ValueError, yaml.YAMLError, csv.Error, RecursionError) as exc:
        raise GoldenUploadInvalid(
            f"The file is not a valid {kind.upper()} golden set.",
            details={"reason": "unparseable", "format": kind, "error": str(exc)[:300]},
        ) from exc
    if isinstance(parsed, dict) and isinstance(parsed.get("questions"), list):
        parsed = parsed["questions"]
    if not isinstance(parsed, list) or not parsed:
        raise GoldenUploadInvalid(
            "A golden set is a non-empty list of {question, sql, ordered?} items.",
            details={"reason": "not_a_list"},
        )
    if len(parsed) > MAX_RUN_QUESTIONS:
        raise GoldenUploadTooLarge(
            f"A golden set holds at most {MAX_RUN_QUESTIONS} questions.",
            details={"max_items": MAX_RUN_QUESTIONS},
        )
    items: list[GoldenQuestionCreate] = []
    for index, raw in enumerate(parsed):
        try:
            items.append(GoldenQuestionCreate.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
            raise GoldenUploadInvalid(
                f"Item {index} is not a valid golden question.",
                details={
                    "reason": "invalid_item",
                    "index": index,
                    "field": ".".join(str(p) for p in first["loc"]),
                    "problem": first["msg"],
                },
            ) from exc
    return items


# ------------------------------------------------------------------ importers


@dataclass(frozen=True, slots=True)
class GoldenCandidate:
    question: str
    sql: str
    ref: str | None = None
    """Where it came from (a template id, a query id, a verified example's id)."""
    ordered: bool | None = None


class GoldenImporter(Protocol):
    """A source of golden questions for one connection, drawn only from material the caller
    may use on it (their own, or verified for the connection)."""

    source: str
    """The `source` stored on the golden questions it yields."""

    def __call__(
        self,
        session: Session,
        *,
        principal: Principal,
        connection: DatabaseConnection,
        limit: int,
    ) -> list[GoldenCandidate]: ...


class TemplateImporter:
    """Parameterless templates that apply to the connection (verified ones first)."""

    source = "template"

    def __call__(
        self,
        session: Session,
        *,
        principal: Principal,
        connection: DatabaseConnection,
        limit: int,
    ) -> list[GoldenCandidate]:
        templates = templates_service.applicable_templates(session, connection)
        return [
            GoldenCandidate(question=t.question_template, sql=t.sql_template, ref=t.id)
            for t in templates
            if not t.parameters
        ][:limit]


class AnswerImporter:
    """The caller's own earlier successful answers on the connection that they rated well
    (4 or 5, not corrected: a corrected answer comes in through its verified example), newest
    first."""

    source = "answer"

    def rated_well(self, session: Session, query_ids: Iterable[str]) -> set[str]:
        ids = list(query_ids)
        if not ids:
            return set()
        found = session.scalars(
            select(AnswerFeedback.query_id).where(
                AnswerFeedback.query_id.in_(ids),
                AnswerFeedback.rating >= GOOD_RATING,
                AnswerFeedback.corrected_sql.is_(None),
            )
        )
        return {query_id for query_id in found if query_id is not None}

    def __call__(
        self,
        session: Session,
        *,
        principal: Principal,
        connection: DatabaseConnection,
        limit: int,
    ) -> list[GoldenCandidate]:
        rows = session.execute(
            select(QueryAnalytics.query_id, QueryAnalytics.question, QueryAnalytics.sql_query)
            .where(
                QueryAnalytics.connection_id == connection.id,
                QueryAnalytics.user_id == principal.user.id,
                QueryAnalytics.source == "ask",
                QueryAnalytics.success,
                QueryAnalytics.question.is_not(None),
                QueryAnalytics.sql_query.is_not(None),
            )
            .order_by(QueryAnalytics.timestamp.desc(), QueryAnalytics.id.desc())
            .limit(limit * 4)
        ).all()
        good = self.rated_well(session, (r[0] for r in rows))
        seen: set[str] = set()
        found: list[GoldenCandidate] = []
        for query_id, question, sql in rows:
            key = _key(str(question))
            if query_id not in good or key in seen:
                continue
            seen.add(key)
            query = row_cap.answer_query(session, str(sql), dialect=connection.db_type)
            found.append(GoldenCandidate(question=str(question), sql=query, ref=query_id))
            if len(found) == limit:
                break
        return found


class VerifiedExampleImporter:
    """The connection's approved verified examples (from ratings, corrections, templates or
    added by hand), oldest first."""

    source = "verified"

    def __call__(
        self,
        session: Session,
        *,
        principal: Principal,
        connection: DatabaseConnection,
        limit: int,
    ) -> list[GoldenCandidate]:
        rows = session.scalars(
            select(VerifiedExample)
            .where(VerifiedExample.connection_id == connection.id, VerifiedExample.approved)
            .order_by(VerifiedExample.created_at, VerifiedExample.id)
            .limit(limit)
        )
        return [
            GoldenCandidate(
                question=r.question,
                sql=(
                    row_cap.answer_query(session, r.sql, dialect=connection.db_type)
                    if r.source == "feedback"  # (one made before the cap was taken out)
                    else r.sql
                ),
                ref=r.id,
            )
            for r in rows
        ]


IMPORTERS: dict[str, GoldenImporter] = {
    "templates": TemplateImporter(),
    "answers": AnswerImporter(),
    "verified": VerifiedExampleImporter(),
}


def register_importer(name: str, importer: GoldenImporter) -> None:
    """Make `importer` available as `POST .../golden-questions/import {"source": name}`."""
    IMPORTERS[name] = importer


def import_golden(
    session: Session,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    source: str,
    limit: int,
    context: ClientContext,
) -> tuple[list[GoldenQuestion], int]:
    """Import from a registered source. Candidates whose SQL no longer passes the guard on the
    connection (a table dropped since) are skipped, not refused: the source is not the caller's
    upload to fix."""
    importer = IMPORTERS[source]
    candidates = importer(session, principal=principal, connection=connection, limit=limit)
    items: list[GoldenQuestionCreate] = []
    refs: list[str | None] = []
    skipped = 0
    for candidate in candidates:
        try:
            item = GoldenQuestionCreate(
                question=candidate.question[:2000], sql=candidate.sql, ordered=candidate.ordered
            )
            check_gold_sql(item.sql, connection=connection, snapshot=snapshot, index=None)
        except (ValidationError, GoldenSqlRefused):
            skipped += 1
            continue
        items.append(item)
        refs.append(candidate.ref)
    added, present = add_golden(
        session,
        principal=principal,
        connection=connection,
        snapshot=snapshot,
        items=items,
        source=importer.source,
        refs=refs,
        context=context,
    )
    return added, skipped + present
