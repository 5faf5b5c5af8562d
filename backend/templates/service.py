"""Query templates: the caller's own and everyone's public ones; runs bind typed parameters.

Services flush, never commit. Visibility: a template is seen by its owner, by everyone when
public, and by admins; anyone else gets 404, as if it did not exist. Seeing is not applying:
which templates answer questions, serve as examples and run on a connection is decided by
`template_applies` alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    SQLColumnExpression,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.auth.scopes import Scope
from backend.connections import schema_cache
from backend.connections.errors import ConnectionNotFound
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core.context import ClientContext
from backend.core.errors import ValidationFailed
from backend.core.pagination import encode_cursor, offset_of
from backend.nl2sql.engines.base import Example
from backend.nl2sql.errors import GuardRefused, SqlReadsHidden
from backend.nl2sql.guard import guard_sql, names_hidden
from backend.observability import recorder
from backend.observability.event_types import AuditAction
from backend.semantic.current import load_current_layer
from backend.semantic.visibility import HiddenItems, hidden_items
from backend.templates.errors import (
    TemplateNotApplicable,
    TemplateNotEditable,
    TemplateNotFound,
    TemplateReadsHidden,
    VerificationForbidden,
)
from backend.templates.models import QueryTemplate
from backend.templates.parameters import (
    SQLGLOT_DIALECTS,
    bind_parameters,
    declared_parameters,
    match_template,
    validate_definition,
)
from backend.templates.schemas import TemplateCreate, TemplateParameter, TemplateUpdate

__all__ = [
    "applicable_templates",
    "bind_parameters",
    "ensure_template_applies",
    "create_template",
    "delete_template",
    "get_template",
    "list_templates",
    "match_template",
    "prepare_template_run",
    "template_examples",
    "template_applies",
    "update_template",
]

RESOURCE_TYPE = "query_template"
MAX_PAGE_SIZE = 100
_AUDITED_FIELDS = (
    "name",
    "description",
    "question_template",
    "sql_template",
    "parameters",
    "category",
    "is_public",
    "is_verified",
    "connection_id",
)
_DEFINITION_FIELDS = frozenset({"question_template", "sql_template", "parameters"})


def _is_admin(principal: Principal) -> bool:
    return principal.has_scope(Scope.ADMIN)


def _snapshot(template: QueryTemplate) -> dict[str, Any]:
    return {name: getattr(template, name) for name in _AUDITED_FIELDS}


def _connection_dialect(
    session: Session, principal: Principal, connection_id: str | None
) -> str | None:
    """The sqlglot dialect of the caller's connection; raises `ConnectionNotFound` (404)."""
    if connection_id is None:
        return None
    connection = session.scalar(
        select(DatabaseConnection).where(
            DatabaseConnection.id == connection_id,
            DatabaseConnection.user_id == principal.user.id,
        )
    )
    if connection is None:
        raise ConnectionNotFound(details={"connection_id": connection_id})
    principal.require_connection(connection_id)
    return SQLGLOT_DIALECTS.get(connection.db_type)


def _visible(principal: Principal) -> Any:
    return or_(QueryTemplate.user_id == principal.user.id, QueryTemplate.is_public.is_(True))


def get_template(session: Session, principal: Principal, template_id: str) -> QueryTemplate:
    """A template the caller may see; raises `TemplateNotFound` (404) otherwise."""
    template = session.get(QueryTemplate, template_id)
    if template is None or not (
        template.user_id == principal.user.id or template.is_public or _is_admin(principal)
    ):
        raise TemplateNotFound(details={"template_id": template_id})
    return template


def _get_editable(session: Session, principal: Principal, template_id: str) -> QueryTemplate:
    template = get_template(session, principal, template_id)
    if template.user_id != principal.user.id and not _is_admin(principal):
        raise TemplateNotEditable(details={"template_id": template_id})
    return template


def list_templates(
    session: Session,
    principal: Principal,
    *,
    category: str | None = None,
    connection_id: str | None = None,
    mine: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[QueryTemplate], str | None]:
    """The caller's templates and the public ones, verified and most used first."""
    offset = offset_of(cursor)
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    query = select(QueryTemplate).where(
        QueryTemplate.user_id == principal.user.id if mine else _visible(principal)
    )
    if category is not None:
        query = query.where(QueryTemplate.category == category)
    if connection_id is not None:
        query = query.where(QueryTemplate.connection_id == connection_id)
    query = query.order_by(
        QueryTemplate.is_verified.desc(),
        QueryTemplate.usage_count.desc(),
        QueryTemplate.created_at.desc(),
        QueryTemplate.id,
    )
    rows = list(session.scalars(query.offset(offset).limit(limit + 1)))
    next_cursor = encode_cursor(offset + limit) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _dump_parameters(parameters: list[TemplateParameter]) -> list[dict[str, Any]]:
    return [p.model_dump(exclude_none=True) for p in parameters]


def create_template(
    session: Session,
    principal: Principal,
    data: TemplateCreate,
    *,
    context: ClientContext | None = None,
) -> QueryTemplate:
    """Raises `VerificationForbidden` (403), `TemplateInvalid` (422), `ConnectionNotFound`."""
    if data.is_verified and not _is_admin(principal):
        raise VerificationForbidden()
    dialect = _connection_dialect(session, principal, data.connection_id)
    validate_definition(
        question_template=data.question_template,
        sql_template=data.sql_template,
        parameters=data.parameters,
        dialect=dialect,
    )
    _refuse_hidden_reads(
        session,
        owner_id=principal.user.id,
        connection_id=data.connection_id,
        sql=data.sql_template,
        parameters=[p.name for p in data.parameters],
    )
    template = QueryTemplate(
        user_id=principal.user.id,
        name=data.name,
        description=data.description,
        question_template=data.question_template,
        sql_template=data.sql_template,
        parameters=_dump_parameters(data.parameters),
        category=data.category,
        is_public=data.is_public,
        is_verified=data.is_verified,
        usage_count=0,
        connection_id=data.connection_id,
    )
    session.add(template)
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.TEMPLATE_CREATED,
        user_id=principal.user.id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=template.id,
        new_values=_snapshot(template),
    )
    return template


def update_template(
    session: Session,
    principal: Principal,
    template_id: str,
    data: TemplateUpdate,
    *,
    context: ClientContext | None = None,
) -> QueryTemplate:
    """Only the owner or an admin; a non-admin's change to the question, SQL or parameters of a
    verified template withdraws the verification (an admin has to look again)."""
    template = _get_editable(session, principal, template_id)
    changes = data.model_dump(exclude_unset=True)
    is_admin = _is_admin(principal)
    if "is_verified" in changes and changes["is_verified"] != template.is_verified and not is_admin:
        raise VerificationForbidden()
    for required in ("name", "question_template", "sql_template", "is_public", "is_verified"):
        if required in changes and changes[required] is None:
            raise ValidationFailed(f"{required} cannot be null.", details={"field": required})
    before = _snapshot(template)
    parameters = (
        (data.parameters or []) if "parameters" in changes else declared_parameters(template)
    )
    connection_id = changes.get("connection_id", template.connection_id)
    dialect = (
        _connection_dialect(session, principal, connection_id)
        if "connection_id" in changes
        else _stored_connection_dialect(session, connection_id)
    )
    validate_definition(
        question_template=changes.get("question_template", template.question_template),
        sql_template=changes.get("sql_template", template.sql_template),
        parameters=parameters,
        dialect=dialect,
    )
    if {"sql_template", "connection_id", "parameters"} & changes.keys():
        _refuse_hidden_reads(
            session,
            owner_id=template.user_id,
            connection_id=connection_id,
            sql=changes.get("sql_template", template.sql_template),
            parameters=[p.name for p in parameters],
        )
    if "parameters" in changes:
        changes["parameters"] = _dump_parameters(parameters)
    definition_changed = any(
        name in changes and changes[name] != before[name] for name in _DEFINITION_FIELDS
    )
    for name, value in changes.items():
        setattr(template, name, value)
    if definition_changed and template.is_verified and not is_admin:
        template.is_verified = False
    session.flush()
    after = _snapshot(template)
    changed = {k for k in after if after[k] != before[k]}
    recorder.audit(
        session,
        action=AuditAction.TEMPLATE_UPDATED,
        user_id=principal.user.id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=template.id,
        old_values={k: before[k] for k in sorted(changed)},
        new_values={k: after[k] for k in sorted(changed)},
    )
    return template


# --- the semantic layer's hidden items ---------------------------------------------------------


def hidden_read(
    sql: str,
    *,
    connection: DatabaseConnection,
    hidden: HiddenItems,
    snapshot: SchemaSnapshot | None,
    parameters: Collection[str] = (),
    by_name: bool = True,
) -> dict[str, Any] | None:
    """What a template's SQL reads that `hidden` hides on `connection` (the guard's details:
    `rule`, `table` or `column`), or None. Without a schema snapshot the SQL's names are judged
    alone (erring on refusing) when `by_name`, else it counts as reading nothing hidden."""
    if not hidden:
        return None
    if snapshot is None:
        if by_name and names_hidden(sql, dialect=connection.db_type, hidden=hidden):
            return {"rule": "hidden_name"}
        return None
    try:
        guard_sql(
            sql,
            snapshot=snapshot,
            dialect=connection.db_type,
            row_cap=None,
            parameters=list(parameters),
            hidden=hidden,
        )
    except SqlReadsHidden as exc:
        return dict(exc.details)
    except GuardRefused:
        # Not runnable here for another reason (an unknown table, ...): the run says so.
        return None
    return None


def _refuse_hidden_reads(
    session: Session,
    *,
    owner_id: str | None,
    connection_id: str | None,
    sql: str,
    parameters: list[str],
) -> None:
    """Raises `TemplateReadsHidden` (422) when the SQL reads what the semantic layer of a
    connection the template applies to hides: the one it is bound to, else each of its owner's
    connections whose schema has the tables it reads."""
    query = select(DatabaseConnection).where(DatabaseConnection.user_id == owner_id)
    if connection_id is not None:
        query = query.where(DatabaseConnection.id == connection_id)
    for connection in session.scalars(query.order_by(DatabaseConnection.created_at)):
        hidden = hidden_items(load_current_layer(session, connection.id))
        if not hidden:
            continue
        cached = schema_cache.load_snapshot(session, connection)
        found = hidden_read(
            sql,
            connection=connection,
            hidden=hidden,
            snapshot=cached[0] if cached is not None else None,
            parameters=parameters,
            by_name=connection_id is not None,
        )
        if found is not None:
            item = found.get("column") or found.get("table")
            named = f" ({item})" if item else ""
            raise TemplateReadsHidden(
                f"The template's SQL reads an item the semantic layer of connection "
                f"{connection.connection_name} hides{named}.",
                details={
                    "field": "sql_template",
                    "connection_id": connection.id,
                    **{k: v for k, v in found.items() if k in ("rule", "table", "column")},
                },
            )


def without_hidden_reads(
    templates: list[QueryTemplate],
    *,
    connection: DatabaseConnection,
    hidden: HiddenItems,
    snapshot: SchemaSnapshot | None,
) -> list[QueryTemplate]:
    """The templates that read nothing the connection's layer hides (a template saved before
    the layer hid what it reads stops answering questions and serving as an example)."""
    if not hidden:
        return templates
    return [
        t
        for t in templates
        if hidden_read(
            t.sql_template,
            connection=connection,
            hidden=hidden,
            snapshot=snapshot,
            parameters=[p["name"] for p in t.parameters or ()],
        )
        is None
    ]


def _stored_connection_dialect(session: Session, connection_id: str | None) -> str | None:
    if connection_id is None:
        return None
    connection = session.get(DatabaseConnection, connection_id)
    return SQLGLOT_DIALECTS.get(connection.db_type) if connection is not None else None


def delete_template(
    session: Session,
    principal: Principal,
    template_id: str,
    *,
    context: ClientContext | None = None,
) -> None:
    template = _get_editable(session, principal, template_id)
    before = _snapshot(template)
    session.delete(template)
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.TEMPLATE_DELETED,
        user_id=principal.user.id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=template_id,
        old_values=before,
    )


def prepare_template_run(
    session: Session,
    principal: Principal,
    template_id: str,
    params: Mapping[str, Any],
) -> tuple[QueryTemplate, str, dict[str, Any]]:
    """The template, its SQL text unchanged and the typed values to bind to it; counts the use.

    Raises `TemplateNotFound` (404), `TemplateParameterInvalid` (422), `Forbidden` (403) when an
    API key may not use the template's connection. The SQL keeps its `:name` placeholders: the
    caller executes it with the values as bound parameters, never by formatting them in.
    """
    template = get_template(session, principal, template_id)
    if template.connection_id is not None:
        principal.require_connection(template.connection_id)
    bound = bind_parameters(template, params)
    record_template_use(session, template)
    return template, template.sql_template, bound


def record_template_use(session: Session, template: QueryTemplate) -> None:
    """Count one use of the template (a run, or a question it answered). Flushes."""
    template.usage_count = QueryTemplate.usage_count + 1
    session.flush()
    session.refresh(template, ["usage_count"])


def _applies_to(connection: DatabaseConnection) -> ColumnElement[bool]:
    """The one rule for which templates apply to a connection (see `template_applies`)."""
    return _applies_to_ids(connection.user_id, connection.id)


def _applies_to_ids(
    owner_id: str | SQLColumnExpression[str], connection_id: str | SQLColumnExpression[str]
) -> ColumnElement[bool]:
    return or_(
        and_(
            QueryTemplate.user_id == owner_id,
            or_(
                QueryTemplate.connection_id.is_(None),
                QueryTemplate.connection_id == connection_id,
            ),
        ),
        and_(
            QueryTemplate.connection_id == connection_id,
            QueryTemplate.is_public.is_(True),
            QueryTemplate.is_verified.is_(True),
        ),
    )


def applicable_version_columns(
    owner_id: SQLColumnExpression[str], connection_id: SQLColumnExpression[str]
) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """The version of `applicable_templates`' answer as the shared database has it now, as two
    scalar subqueries on a connection's columns in an enclosing statement: how many apply, and
    the newest change among them (every change of a template, its use counted included, sets
    its `updated_at`; a template deleted or no longer applying changes the count)."""
    applies = _applies_to_ids(owner_id, connection_id)
    changed = func.coalesce(QueryTemplate.updated_at, QueryTemplate.created_at)
    return (
        select(func.count()).where(applies).scalar_subquery(),
        select(func.max(changed)).where(applies).scalar_subquery(),
    )


def template_applies(template: QueryTemplate, connection: DatabaseConnection) -> bool:
    """Whether `template` may answer a question, be an example or run on `connection`.

    A template applies to the connections of its owner (all of them when it is bound to none,
    else the one it is bound to), and to the one connection a verified, public template was
    published for. Another user's public template is readable, and may be copied, but its SQL
    never runs on a connection its owner may not use, and its texts never reach a prompt built
    for someone else's connection.
    """
    if template.user_id == connection.user_id:
        return template.connection_id in (None, connection.id)
    return (
        template.connection_id == connection.id
        and bool(template.is_public)
        and bool(template.is_verified)
    )


def applicable_templates(session: Session, connection: DatabaseConnection) -> list[QueryTemplate]:
    """Templates a question on `connection` may be matched against, verified ones first."""
    query = select(QueryTemplate).where(_applies_to(connection))
    return list(session.scalars(query.order_by(QueryTemplate.is_verified.desc(), QueryTemplate.id)))


def template_examples(
    session: Session, connection: DatabaseConnection, *, limit: int = 4
) -> list[Example]:
    """Parameterless templates that apply to `connection`, as generator examples."""
    return examples_of(applicable_templates(session, connection), limit)


def examples_of(templates: list[QueryTemplate], limit: int = 4) -> list[Example]:
    """Parameterless templates of `applicable_templates`' answer as examples, in its order."""
    examples = [
        Example(question=t.question_template, sql=t.sql_template, verified=bool(t.is_verified))
        for t in templates
        if not t.parameters
    ]
    return examples[:limit]


def ensure_template_applies(template: QueryTemplate, connection: DatabaseConnection) -> None:
    """Raises `TemplateNotApplicable` (403) unless the template may run on `connection`."""
    if not template_applies(template, connection):
        raise TemplateNotApplicable(
            details={"template_id": template.id, "connection_id": connection.id}
        )


def count_template_use(session: Session, template_id: str) -> None:
    """Count one use of a template by id (when the loaded object is not in `session`)."""
    session.execute(
        update(QueryTemplate)
        .where(QueryTemplate.id == template_id)
        .values(usage_count=QueryTemplate.usage_count + 1)
        .execution_options(synchronize_session=False)
    )
