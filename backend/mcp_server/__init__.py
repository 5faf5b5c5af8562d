"""The MCP server: agents list connections, read schemas, ask, run SQL and query templates, and
rate answers.

Every tool authenticates the caller the way the HTTP API does (an API key, or a bearer token),
requires the scopes of its HTTP twin, and calls the same service functions as the HTTP handler,
so an agent's call is recorded (analytics, audit, events, key usage) exactly like the HTTP one.
Two transports: stdio (`nlsql mcp`, the key from `--api-key` or `NLSQL_MCP_API_KEY`) and
streamable HTTP mounted in the app at `/mcp` (the key in `X-API-Key` or `Authorization`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.orm import Session
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from backend import __version__
from backend.auth.api_keys import KEY_PREFIX
from backend.auth.deps import (
    Principal,
    ensure_scopes,
    principal_from_api_key,
    principal_from_jwt,
)
from backend.auth.scopes import Scope as ApiScope
from backend.chat import service as chat_service
from backend.chat.router import ask_response
from backend.chat.schemas import AskRequest
from backend.connections import service as connections_service
from backend.core.context import ClientContext
from backend.core.errors import AppError, Unauthorized, ValidationFailed
from backend.core.text import text_problem
from backend.feedback import service as feedback_service
from backend.feedback.schemas import FeedbackWrite
from backend.nl2sql import pipeline
from backend.nl2sql.router import query_result_read
from backend.nl2sql.schemas import SqlRunRequest
from backend.semantic import service as semantic_service
from backend.semantic.visibility import public_layer
from backend.templates import service as templates_service
from backend.templates.schemas import TemplateRead, TemplateRunRequest

MCP_PATH = "/mcp"
MAX_TITLE_LENGTH = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    """The credentials and client facts of one tool call."""

    api_key: str | None = None
    bearer: str | None = None
    context: ClientContext = ClientContext()


CallerSource = Callable[[Context], Caller]
"""Reads the caller of a tool call: from the HTTP request's headers, or stdio's fixed key."""


def stdio_caller(api_key: str) -> CallerSource:
    caller = Caller(api_key=api_key, context=ClientContext(user_agent="nlsql-mcp (stdio)"))
    return lambda _ctx: caller


def http_caller() -> CallerSource:
    """The `X-API-Key` header, else `Authorization: Bearer` (an API key or an access token)."""

    def read(ctx: Context) -> Caller:
        headers: Mapping[str, str] = ctx.headers or {}
        api_key = headers.get("x-api-key") or None
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" and credentials else None
        if api_key is None and bearer is not None and bearer.startswith(KEY_PREFIX):
            api_key, bearer = bearer, None
        request = ctx.request_context.request
        client = getattr(request, "client", None)
        agent = headers.get("user-agent")
        context = ClientContext(
            ip_address=client.host[:45] if client is not None else None,
            user_agent=agent[:500] if agent else None,
        )
        return Caller(api_key=api_key, bearer=bearer, context=context)

    return read


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _refused(loc: list[str | int], kind: str, message: str) -> ValidationFailed:
    return ValidationFailed(details={"errors": [{"loc": loc, "msg": message, "type": kind}]})


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """What `core.hygiene` refuses in an HTTP request, refused in a tool call's arguments (the
    stdio transport has no HTTP middleware in front of it): NUL or lone surrogates in any text
    or key, integers beyond 64 bits. Raises `ValidationFailed` (the API's 422)."""
    stack: list[tuple[Any, list[str | int]]] = [(v, [k]) for k, v in arguments.items()]
    while stack:
        value, loc = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise _refused(loc, problem, f"Text must not contain {problem.replace('_', ' ')}s.")
        elif isinstance(value, int) and not isinstance(value, bool):
            if not INT64_MIN <= value <= INT64_MAX:
                raise _refused(loc, "number_too_large", "Integers must fit in 64 bits.")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                stack.append((key, [*loc, "[key]"]))
                stack.append((item, [*loc, str(key)]))
        elif isinstance(value, list | tuple):
            stack.extend((item, [*loc, index]) for index, item in enumerate(value))


M = TypeVar("M", bound=BaseModel)


def as_request(model: type[M], **fields: Any) -> M:
    """A tool's arguments read by the HTTP twin's request schema (lengths, blanks, ranges), so
    a call is refused exactly where the HTTP request would be: `ValidationFailed` (422)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise ValidationFailed(
            details={"errors": exc.errors(include_url=False, include_context=False)}
        ) from exc


def _error_text(exc: AppError) -> str:
    """The API's one error shape, as the text of a failed tool call."""
    return json.dumps(
        {"error": {"code": exc.code, "message": exc.message, "details": exc.details}},
        default=str,
    )


class _Tools:
    """Runs each tool's work in one platform session, as an HTTP request would."""

    def __init__(self, app: FastAPI, callers: CallerSource) -> None:
        self.app = app
        self.callers = callers

    def _principal(self, session: Session, caller: Caller) -> Principal:
        if caller.api_key:
            return principal_from_api_key(self.app, session, caller.api_key)
        if caller.bearer:
            return principal_from_jwt(self.app, session, caller.bearer)
        raise Unauthorized("Send an API key: X-API-Key, or Authorization: Bearer <key>.")

    def call(
        self,
        ctx: Context,
        scopes: tuple[ApiScope, ...],
        work: Callable[[Session, Principal, ClientContext], T],
        **arguments: Any,
    ) -> T:
        """Check the arguments, authenticate, check scopes, do the work, commit; an `AppError`
        becomes a tool error."""
        try:
            check_arguments(arguments)
        except AppError as exc:
            raise ToolError(_error_text(exc)) from exc
        caller = self.callers(ctx)
        session: Session = self.app.state.session_factory()
        try:
            principal = self._principal(session, caller)
            ensure_scopes(principal, *scopes)
            result = work(session, principal, caller.context)
            session.commit()
            return result
        except AppError as exc:
            session.rollback()
            raise ToolError(_error_text(exc)) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def build_mcp_server(app: FastAPI, callers: CallerSource) -> MCPServer:
    """The MCP server whose tools act on `app`'s database with `app`'s settings."""
    tools = _Tools(app, callers)
    settings = app.state.settings
    server = MCPServer(
        name="nlsql",
        version=__version__,
        # The SDK configures the root logger at this level when nothing else has; INFO would
        # log every HTTP request of the app's clients (httpx) and each MCP session's start.
        log_level="WARNING",
        instructions=(
            "Ask questions of the user's databases in plain language. Start with "
            "list_connections, read a connection's tables with describe_schema, then ask; "
            "run_sql runs your own read-only SQL through the same guard."
        ),
    )

    @server.tool(
        description="The connections (databases) this API key may use. Scope connections:read."
    )
    def list_connections(
        ctx: Context, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        def work(session: Session, principal: Principal, _: ClientContext) -> dict[str, Any]:
            rows, next_cursor = connections_service.list_connections(
                session, principal, limit=max(1, min(limit, 100)), cursor=cursor
            )
            return {
                "items": [connections_service.to_read(c).model_dump(mode="json") for c in rows],
                "next_cursor": next_cursor,
            }

        return tools.call(ctx, (ApiScope.CONNECTIONS_READ,), work, limit=limit, cursor=cursor)

    @server.tool(
        description=(
            "The tables, columns and foreign keys of one connection, and its semantic layer "
            "(descriptions, synonyms, measures, filters, joins, instructions). "
            "Scope connections:read."
        )
    )
    def describe_schema(ctx: Context, connection_id: str) -> dict[str, Any]:
        def work(session: Session, principal: Principal, _: ClientContext) -> dict[str, Any]:
            # An agent is a generator too: it reads the schema as generators do, hidden tables
            # and columns left out and no `hidden` marks on what remains.
            snapshot, taken_at = connections_service.generator_view(
                session, owner=principal, connection_id=connection_id, settings=settings
            )
            layer = semantic_service.load_current_layer(session, connection_id)
            return {
                "connection_id": connection_id,
                "db_type": snapshot.db_type,
                "database_name": snapshot.database_name,
                "last_updated": TypeAdapter(datetime).dump_python(taken_at, mode="json"),
                "table_count": len(snapshot.tables),
                # Not the engine's value index (up to a few hundred KB a schema): the samples
                # describe the values, as the REST schema read does.
                "tables": [
                    t.model_dump(mode="json", exclude={"columns": {"__all__": {"indexed_values"}}})
                    for t in snapshot.tables
                ],
                "semantic_layer": (
                    public_layer(layer).model_dump(mode="json", exclude_defaults=True)
                    if layer is not None
                    else None
                ),
            }

        return tools.call(ctx, (ApiScope.CONNECTIONS_READ,), work, connection_id=connection_id)

    @server.tool(
        description=(
            "Ask a question in plain language: answers with the SQL, an explanation, a summary "
            "and the rows. Without session_id a new chat session is started on connection_id "
            "(required then); with one, the question may refer to earlier answers. "
            "execute=false returns the checked SQL without running it. Scope chat:write."
        )
    )
    def ask(
        ctx: Context,
        question: str,
        connection_id: str | None = None,
        session_id: str | None = None,
        execute: bool = True,
    ) -> dict[str, Any]:
        def work(session: Session, principal: Principal, context: ClientContext) -> dict[str, Any]:
            asked = as_request(
                AskRequest, question=question, connection_id=connection_id, execute=execute
            )
            chat_id = session_id
            if chat_id is None:
                if connection_id is not None:
                    pipeline.ensure_usable_connection(
                        session, principal=principal, connection_id=connection_id
                    )
                chat = chat_service.create_chat_session(
                    session,
                    user_id=principal.user.id,
                    title=asked.question[:MAX_TITLE_LENGTH] or None,
                    connection_id=connection_id,
                )
                chat_id = chat.id
            session.commit()  # nothing held while the question is answered
            answer = pipeline.ask(
                app.state.session_factory,
                principal=principal,
                chat_session_id=chat_id,
                question=asked.question,
                connection_id=asked.connection_id,
                settings=settings,
                context=context,
                execute=asked.execute,
            )
            return {"session_id": chat_id, **ask_response(answer).model_dump(mode="json")}

        return tools.call(
            ctx,
            (ApiScope.CHAT_WRITE,),
            work,
            question=question,
            connection_id=connection_id,
            session_id=session_id,
        )

    @server.tool(
        description=(
            "Run your own read-only SQL on a connection through the platform's guard (one "
            "read-only statement, known tables, row cap). Scope query:sql."
        )
    )
    def run_sql(ctx: Context, connection_id: str, sql: str) -> dict[str, Any]:
        def work(session: Session, principal: Principal, context: ClientContext) -> dict[str, Any]:
            request = as_request(SqlRunRequest, connection_id=connection_id, sql=sql)
            session.commit()  # nothing held while the question is answered
            answer = pipeline.run_sql(
                app.state.session_factory,
                principal=principal,
                connection_id=request.connection_id,
                sql=request.sql,
                settings=settings,
                context=context,
            )
            return query_result_read(answer).model_dump(mode="json")

        return tools.call(ctx, (ApiScope.QUERY_SQL,), work, connection_id=connection_id, sql=sql)

    @server.tool(
        description="Query templates you may run (public ones and your own). Scope templates:read."
    )
    def list_templates(
        ctx: Context,
        connection_id: str | None = None,
        category: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        def work(session: Session, principal: Principal, _: ClientContext) -> dict[str, Any]:
            rows, next_cursor = templates_service.list_templates(
                session,
                principal,
                category=category,
                connection_id=connection_id,
                limit=limit,
                cursor=cursor,
            )
            return {
                "items": [TemplateRead.model_validate(t).model_dump(mode="json") for t in rows],
                "next_cursor": next_cursor,
            }

        return tools.call(
            ctx,
            (ApiScope.TEMPLATES_READ,),
            work,
            connection_id=connection_id,
            category=category,
            limit=limit,
            cursor=cursor,
        )

    @server.tool(
        description=(
            "Run a query template with its parameters (bound by the database driver, never "
            "pasted into the SQL). Scope templates:read."
        )
    )
    def run_template(
        ctx: Context,
        template_id: str,
        parameters: dict[str, Any] | None = None,
        connection_id: str | None = None,
    ) -> dict[str, Any]:
        def work(session: Session, principal: Principal, context: ClientContext) -> dict[str, Any]:
            request = as_request(
                TemplateRunRequest, connection_id=connection_id, parameters=parameters or {}
            )
            session.commit()  # nothing held while the question is answered
            answer = pipeline.run_template(
                app.state.session_factory,
                principal=principal,
                template_id=template_id,
                parameters=request.parameters,
                connection_id=request.connection_id,
                settings=settings,
                context=context,
            )
            return query_result_read(answer).model_dump(mode="json")

        return tools.call(
            ctx,
            (ApiScope.TEMPLATES_READ,),
            work,
            template_id=template_id,
            parameters=parameters,
            connection_id=connection_id,
        )

    @server.tool(
        description=(
            "Rate an answer you got from ask (its message_id): rating 1 (wrong) to 5 (right), an "
            "optional comment, and optionally corrected_sql, the SQL that does answer the "
            "question (checked by the guard on the answer's connection). A rating of 4 or more, "
            "or a correction, makes a verified example for later questions. Rating again "
            "replaces your earlier rating. Scope chat:write."
        )
    )
    def rate_answer(
        ctx: Context,
        message_id: int,
        rating: int,
        comment: str | None = None,
        corrected_sql: str | None = None,
    ) -> dict[str, Any]:
        def work(session: Session, principal: Principal, context: ClientContext) -> dict[str, Any]:
            try:
                data = FeedbackWrite(rating=rating, comment=comment, corrected_sql=corrected_sql)
            except ValidationError as exc:
                raise ValidationFailed(
                    details={"errors": exc.errors(include_url=False, include_context=False)}
                ) from exc
            session.commit()  # nothing held while the corrected SQL is checked
            feedback, created = feedback_service.rate_answer(
                app.state.session_factory,
                principal=principal,
                message_id=message_id,
                data=data,
                settings=settings,
                context=context,
            )
            return {**feedback.model_dump(mode="json"), "replaced": not created}

        return tools.call(
            ctx,
            (ApiScope.CHAT_WRITE,),
            work,
            message_id=message_id,
            rating=rating,
            comment=comment,
            corrected_sql=corrected_sql,
        )

    return server


class _Endpoint:
    """The ASGI app at `/mcp` (a class, so Starlette passes scope, receive and send through)."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


def mount_mcp(app: FastAPI) -> Callable[[], Any]:
    """Serve the MCP server over streamable HTTP at `/mcp`; returns the lifespan to enter."""
    server = build_mcp_server(app, http_caller())
    app.router.routes.append(
        Route(
            MCP_PATH, _Endpoint(server), methods=["GET", "POST", "DELETE"], include_in_schema=False
        )
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        # A fresh session manager per lifespan (one may run only once). Stateless: every call
        # carries its credentials, so nothing ties a client to one server process. DNS-rebinding
        # protection guards ambient credentials (cookies); these calls carry explicit headers
        # a rebinding page cannot read, and the app may be served under any host name.
        server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        async with server.session_manager.run():
            yield

    return lifespan
