"""The `nlsql` command line: serve, worker, mcp, migrate, create-admin, demo, ask, eval, rotate-keys,
prune, openapi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import ConfigurationError, Settings, get_settings

app = typer.Typer(
    name="nlsql",
    help="Natural-language SQL analytics: ask questions of your own databases.",
    no_args_is_help=True,
    add_completion=False,
)

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-2024"  # noqa: S105 - the documented demo account's password
DEMO_CONNECTION_NAME = "demo"
CLI_SESSION_TITLE = "Command line"


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigurationError as exc:
        typer.secho(f"configuration error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def _session(settings: Settings) -> Session:
    from backend.core.db import create_app_engine, create_session_factory

    return create_session_factory(create_app_engine(str(settings.database_url)))()


def _migrate(settings: Settings) -> None:
    from backend.core.migrations import upgrade_to_head

    upgrade_to_head(str(settings.database_url))


@app.command()
def migrate() -> None:
    """Upgrade the platform database to the newest revision."""
    settings = _settings()
    _migrate(settings)
    typer.echo(f"platform database at head: {settings.database_url}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="HTTP worker processes (default NLSQL_WORKERS, 1)."),
    ] = None,
) -> None:
    """Run the HTTP API (several worker processes with --workers N)."""
    from backend.core.logs import configure_logging, logging_config
    from backend.serving import prepare_database, serve_many, serve_one

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        prepare_database(settings)
    except RuntimeError as exc:
        typer.secho(f"cannot start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    bind_host, bind_port = host or settings.host, port or settings.port
    count = workers or settings.workers
    log_config = logging_config(settings.log_level, settings.log_format)
    if count == 1:
        serve_one(settings, bind_host, bind_port, log_config)
    else:
        serve_many(settings, bind_host, bind_port, count, log_config)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Jobs run at once (NLSQL_JOBS_CONCURRENCY).")
    ] = None,
) -> None:
    """Run background jobs from the PostgreSQL queue until SIGTERM (finishes running jobs)."""
    from backend.core.logs import configure_logging
    from backend.core.migrations import DatabaseNotAtHead, ensure_at_head
    from backend.jobs.worker import run_worker

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.is_sqlite:
        typer.secho(
            "the embedded default (SQLite) runs jobs inside `nlsql serve`; "
            "`nlsql worker` needs a PostgreSQL platform database",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    if concurrency is not None:
        settings.jobs_concurrency = concurrency
    from backend.core.db import create_app_engine

    engine = create_app_engine(str(settings.database_url))
    try:
        ensure_at_head(engine)
    except DatabaseNotAtHead as exc:
        typer.secho(f"cannot start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    run_worker(settings)


@app.command()
def mcp(
    api_key: Annotated[
        str | None,
        typer.Option(help="The API key to act with (default: NLSQL_MCP_API_KEY)."),
    ] = None,
) -> None:
    """Serve the MCP server over stdio for an agent, acting with one API key."""
    import anyio

    from backend.main import create_app
    from backend.mcp_server import build_mcp_server, stdio_caller

    settings = _settings()
    key = api_key or (settings.mcp_api_key.get_secret_value() if settings.mcp_api_key else None)
    if not key:
        typer.secho(
            "give an API key: --api-key or NLSQL_MCP_API_KEY", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(2)
    if settings.run_migrations_on_start:
        _migrate(settings)
    application = create_app(settings)
    server = build_mcp_server(application, stdio_caller(key))
    application.state.metric_writer.start()
    try:
        anyio.run(server.run_stdio_async)
    finally:
        application.state.metric_writer.stop()
        application.state.engine.dispose()


def _upsert_user(
    settings: Settings, *, email: str, password: str, full_name: str, role: str
) -> tuple[str, bool]:
    from backend.auth import service as auth_service

    session = _session(settings)
    try:
        user = auth_service.get_user_by_email_or_none(session, email)
        created = user is None
        if user is None:
            user = auth_service.create_user(
                session, email=email, password=password, full_name=full_name, role=role
            )
        else:
            auth_service.set_password(session, user, password)
            user.role = role
            user.is_active = True
        session.commit()
        return user.id, created
    finally:
        session.close()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email.")],
    password: Annotated[str, typer.Option(help="The admin's password.")],
    full_name: Annotated[str, typer.Option(help="The admin's name.")] = "Administrator",
) -> None:
    """Create an admin account (or promote an existing one and reset its password)."""
    settings = _settings()
    _migrate(settings)
    _, created = _upsert_user(
        settings, email=email, password=password, full_name=full_name, role="admin"
    )
    typer.echo(f"{'created' if created else 'updated'} admin {email}")


@app.command()
def demo(
    email: Annotated[str, typer.Option(help="The demo account's email.")] = DEMO_EMAIL,
    password: Annotated[str, typer.Option(help="The demo account's password.")] = DEMO_PASSWORD,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Set up, then exit.")] = False,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Set up the demo account and the bundled demo database, then serve the API."""
    from backend.connections import service as connections_service
    from backend.demo import DEMO_DB_PATH
    from backend.demo.builder import build_demo_database

    settings = _settings()
    _migrate(settings)
    if not DEMO_DB_PATH.exists():
        build_demo_database(DEMO_DB_PATH)
    user_id, created = _upsert_user(
        settings, email=email, password=password, full_name="Demo User", role="viewer"
    )
    session = _session(settings)
    try:
        connections_service.ensure_sqlite_connection(
            session, user_id=user_id, connection_name=DEMO_CONNECTION_NAME, path=str(DEMO_DB_PATH)
        )
        session.commit()
    finally:
        session.close()

    bind_host = host or settings.host
    bind_port = port or settings.port
    base = f"http://{bind_host}:{bind_port}"
    typer.echo(
        f"""
Demo ready ({"created" if created else "password reset for"} {email}).
  platform database : {settings.database_url}
  demo database     : {DEMO_DB_PATH} (connection "{DEMO_CONNECTION_NAME}")

Sign in and ask:
  TOKEN=$(curl -s {base}/api/v1/auth/login -H 'Content-Type: application/json' \\
      -d '{{"email": "{email}", "password": "{password}"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s {base}/api/v1/connections -H "Authorization: Bearer $TOKEN"
  SESSION=$(curl -s {base}/api/v1/chat/sessions -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"title": "First questions"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -s {base}/api/v1/chat/sessions/$SESSION/ask -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"question": "top 5 customers by revenue"}}'
API docs: {base}/docs
Try it in a browser: {base}/
"""
    )
    if not no_serve:
        serve(host=bind_host, port=bind_port)


@app.command()
def prune(
    batch_size: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per delete.")] = 5000,
) -> None:
    """Delete expired refresh tokens and events/metrics older than the retention config."""
    from backend.admin import service as admin_service

    settings = _settings()
    session = _session(settings)
    try:
        report = admin_service.prune_expired_data(
            session, batch_size=batch_size, after_batch=session.commit
        )
        session.commit()
    finally:
        session.close()
    typer.echo(
        f"pruned {report.refresh_tokens} expired refresh tokens, {report.events} events "
        f"(before {report.events_before:%Y-%m-%d}), {report.performance_metrics} metrics "
        f"(before {report.metrics_before:%Y-%m-%d})"
    )


def _ensure_demo_user(settings: Settings) -> None:
    from backend.auth import service as auth_service

    session = _session(settings)
    try:
        if auth_service.get_user_by_email_or_none(session, DEMO_EMAIL) is not None:
            return
    finally:
        session.close()
    _upsert_user(
        settings, email=DEMO_EMAIL, password=DEMO_PASSWORD, full_name="Demo User", role="viewer"
    )


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    connection: Annotated[
        str | None, typer.Option("--connection", help="Name of one of your connections.")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="A SQLite file (inside the allowed directories).")
    ] = None,
    email: Annotated[str, typer.Option(help="Whose connections and history to use.")] = DEMO_EMAIL,
    generator: Annotated[
        str | None, typer.Option(help="Generator to use (default: the configured one).")
    ] = None,
) -> None:
    """Ask a question and print the SQL and the result (the demo database when nothing is given).

    Questions asked here share one chat session per connection, so follow-ups work.
    """
    from rich.console import Console
    from rich.table import Table

    from backend.auth import service as auth_service
    from backend.auth.deps import Principal
    from backend.auth.scopes import ROLE_SCOPES
    from backend.chat import service as chat_service
    from backend.chat.models import ChatSession
    from backend.connections import service as connections_service
    from backend.connections.paths import confine_database_path
    from backend.core.db import create_session_factory
    from backend.core.errors import AppError
    from backend.demo import DEMO_DB_PATH
    from backend.demo.builder import build_demo_database
    from backend.nl2sql import pipeline

    if connection and db:
        typer.secho("give --connection or --db, not both", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    settings = _settings()
    _migrate(settings)
    if email == DEMO_EMAIL:
        _ensure_demo_user(settings)
    console = Console()
    session = _session(settings)
    try:
        user = auth_service.get_user_by_email_or_none(session, email)
        if user is None or not user.is_active:
            typer.secho(f"no active user {email}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        if connection:
            target = connections_service.get_connection_by_name_or_none(
                session, user_id=user.id, connection_name=connection
            )
            if target is None:
                typer.secho(
                    f"{email} has no connection {connection!r}", fg=typer.colors.RED, err=True
                )
                raise typer.Exit(2)
        else:
            try:
                path = confine_database_path(db, settings) if db else DEMO_DB_PATH
            except AppError as exc:
                typer.secho(f"{exc.code}: {exc.message}", fg=typer.colors.RED, err=True)
                typer.echo("(allowed directories: NLSQL_SQLITE_ALLOWED_DIRS)", err=True)
                raise typer.Exit(2) from exc
            if not db and not DEMO_DB_PATH.exists():
                build_demo_database(DEMO_DB_PATH)
            name = DEMO_CONNECTION_NAME if not db else f"file:{path.name}"[:100]
            target = connections_service.ensure_sqlite_connection(
                session, user_id=user.id, connection_name=name, path=str(path)
            )
        chat = session.scalar(
            select(ChatSession)
            .where(
                ChatSession.user_id == user.id,
                ChatSession.connection_id == target.id,
                ChatSession.title == CLI_SESSION_TITLE,
                ChatSession.is_active,
            )
            .order_by(ChatSession.created_at.desc())
            .limit(1)
        ) or chat_service.create_chat_session(
            session, user_id=user.id, title=CLI_SESSION_TITLE, connection_id=target.id
        )
        session.commit()
        principal = Principal(user=user, scopes=ROLE_SCOPES.get(user.role, frozenset()))
        try:
            answer = pipeline.ask(
                create_session_factory(session.get_bind().engine),
                principal=principal,
                chat_session_id=chat.id,
                question=question,
                settings=settings,
                generator_name=generator,
            )
        except AppError as exc:
            typer.secho(f"{exc.code}: {exc.message}", fg=typer.colors.RED, err=True)
            shown = {k: v for k, v in exc.details.items() if k not in ("query_id", "message_id")}
            if shown:
                typer.echo(json.dumps(shown, indent=2, default=str), err=True)
            raise typer.Exit(1) from exc
    finally:
        session.close()

    console.print(answer.sql, markup=False, highlight=False, soft_wrap=True)
    if answer.explanation:
        console.print(answer.explanation, style="dim", markup=False)
    table = Table(*[c.name for c in answer.result.columns], show_lines=False)
    for row in answer.result.rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)
    reasons = {
        "row_limit": "truncated at the row cap",
        "byte_limit": "truncated at the result's byte cap",
        "cell_limit": "long values cut",
    }
    reason = answer.result.truncated_reason
    more = f" ({reasons.get(reason or '', 'truncated')})" if answer.result.truncated else ""
    console.print(
        f"{answer.result.row_count} row(s){more} in {answer.result.execution_time_ms:.1f} ms; "
        f"chart: {answer.chart.chart_type}; generator: {answer.generator}",
        style="dim",
        markup=False,
    )


@app.command("rotate-keys")
def rotate_keys(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Connections re-encrypted per transaction.")
    ] = 200,
) -> None:
    """Re-encrypt every stored connection password and sensitive system config value under
    the newest Fernet key (and seal any such value still stored in clear).

    Put the new key first in NLSQL_FERNET_KEYS and keep the old ones after it everywhere,
    run this, then drop the old keys: the API keeps serving throughout.
    """
    import backend.models  # noqa: F401 - every table, so foreign keys resolve
    from backend.admin.secrets import seal_sensitive_config
    from backend.connections.crypto import rotate_connection_secrets
    from backend.core.db import create_app_engine, create_session_factory
    from backend.observability import recorder
    from backend.observability.event_types import AuditAction

    settings = _settings()
    engine = create_app_engine(str(settings.database_url))
    factory = create_session_factory(engine)
    try:
        report = rotate_connection_secrets(factory, settings, batch_size=batch_size)
        with factory() as session:
            config_report = seal_sensitive_config(session, settings)
            report.unreadable += len(config_report.unreadable)
            report.unreadable_ids.extend(config_report.unreadable)
            recorder.audit(
                session,
                action=AuditAction.SECRETS_ROTATED,
                user_id=None,
                resource_type="database_connection",
                new_values={
                    "rotated": report.rotated,
                    "unreadable": report.unreadable,
                    "batches": report.batches,
                    "config_values": config_report.rotated + config_report.sealed,
                    "key_count": len(settings.fernet_keys),
                },
                success=report.unreadable == 0,
                error_message=(
                    f"{report.unreadable} secrets no configured key can decrypt: "
                    + ", ".join(report.unreadable_ids[:20])
                    if report.unreadable
                    else None
                ),
            )
            session.commit()
    finally:
        engine.dispose()
    typer.echo(
        f"re-encrypted {report.rotated} connection secrets in {report.batches} batches"
        f" and {config_report.rotated + config_report.sealed} sensitive config values"
        + (f"; {report.unreadable} could not be decrypted" if report.unreadable else "")
    )
    if report.unreadable:
        raise typer.Exit(1)


@app.command("eval")
def eval_command(
    questions: Annotated[
        Path | None, typer.Argument(help="JSON list of {db_id, question, query?}.")
    ] = None,
    db_root: Annotated[
        Path | None, typer.Option(help="Folder holding <db_id>/<db_id>.sqlite.")
    ] = None,
    engine: Annotated[str, typer.Option(help="Generator to measure.")] = "builtin",
    out: Annotated[Path | None, typer.Option(help="Write predictions JSON here.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    semantic_layer: Annotated[
        Path | None,
        typer.Option(help="A semantic-layer document (YAML or JSON) given to the generator."),
    ] = None,
    connection: Annotated[
        str | None,
        typer.Option(
            "--connection",
            help="Evaluate this connection's golden set (its id) in the platform database.",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="With --connection: the model.")] = None,
    semantic_layer_version: Annotated[
        int | None, typer.Option(min=1, help="With --connection: the semantic-layer version.")
    ] = None,
) -> None:
    """Run a generator over a question set; print execution accuracy where gold SQL exists.

    With --connection, run a connection's golden set instead, recorded as an evaluation of that
    connection (as `POST /connections/{id}/evaluations` does), with a progress bar.
    """
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from backend.nl2sql import evaluation

    if connection is not None:
        if questions is not None or db_root is not None or semantic_layer is not None:
            typer.secho(
                "give --connection or a questions file (and --semantic-layer), not both",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(2)
        _eval_connection(
            connection, engine, model=model, semantic_layer_version=semantic_layer_version
        )
        return
    if questions is None or db_root is None:
        typer.secho(
            "give a questions file and --db-root (or --connection ID)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    console = Console(stderr=True)
    try:
        items = evaluation.load_questions(questions)[:limit]
        generator = evaluation.get_generator(engine, _settings)
        layer = None if semantic_layer is None else evaluation.load_semantic_layer(semantic_layer)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{engine}", total=len(items))
            report = evaluation.evaluate(
                items,
                db_root=db_root,
                generator=generator,
                on_progress=lambda n: progress.advance(task, n),
                semantic=layer,
            )
        if layer is not None:
            report.semantic_layer = evaluation.describe_layer(layer, str(semantic_layer))
    except evaluation.EvaluationInputError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    if out is not None:
        evaluation.write_predictions(out, report.predictions)
    summary = report.summary()
    out_console = Console()
    if not out_console.is_terminal:
        out_console.width = max(out_console.width, 110)  # a log or a pipe: keep rows on one line
    out_console.print(f"semantic layer: {summary['semantic_layer'] or 'none'}")
    out_console.print(
        f"questions {summary['questions']}  declined {summary['decline_rate']:.1%}  "
        f"p50 {summary['median_ms']:.2f} ms  p95 {summary['p95_ms']:.2f} ms/question"
    )
    if report.has_gold:
        table = Table(title="execution accuracy")
        for name in ("bucket", "n", "answered", "correct", "EX", "answered %", "precision"):
            table.add_column(name, justify="left" if name == "bucket" else "right")
        rows = [("overall", report.overall)]
        rows += [(f"level: {k}", v) for k, v in report.by_level.items()]
        rows += [(f"difficulty: {k}", v) for k, v in report.by_difficulty.items()]
        rows += [(f"tag: {k}", v) for k, v in sorted(report.by_tag.items())]
        rows += [(f"db: {k}", v) for k, v in sorted(report.by_database.items())]
        for label, t in rows:
            answered_share = t.answered / t.total if t.total else 0.0
            table.add_row(
                label, str(t.total), str(t.answered), str(t.correct),
                f"{t.accuracy:.1%}", f"{answered_share:.1%}", f"{t.precision:.1%}",
            )  # fmt: skip
        out_console.print(table)
        if summary["consistency"] is not None:
            out_console.print(
                f"paraphrase groups {summary['paraphrase_groups']}: consistency "
                f"{summary['consistency']:.1%} (all members answered alike), all right "
                f"{summary['groups_all_right']:.1%}"
            )
        if any(p.confidence is not None for p in report.predictions):
            curve = Table(title="if answering only at confidence >= threshold")
            for name in ("threshold", "answered", "precision", "EX"):
                curve.add_column(name, justify="right")
            for point in summary["curve"]:
                curve.add_row(
                    f"{point['threshold']:.2f}", f"{point['answered']:.1%}",
                    f"{point['precision']:.1%}", f"{point['accuracy']:.1%}",
                )  # fmt: skip
            out_console.print(curve)


def _eval_connection(
    connection_id: str, generator: str, *, model: str | None, semantic_layer_version: int | None
) -> None:
    """`nlsql eval --connection`: the connection's golden set, as its owner, in this process."""
    from rich.console import Console
    from rich.progress import Progress

    from backend.auth.deps import Principal
    from backend.auth.models import User
    from backend.auth.scopes import ROLE_SCOPES
    from backend.connections.models import DatabaseConnection
    from backend.core.context import ClientContext
    from backend.core.db import create_session_factory
    from backend.core.errors import AppError
    from backend.evaluations import runner
    from backend.evaluations import service as evaluations_service
    from backend.evaluations.models import EvaluationRun
    from backend.evaluations.schemas import EvaluationCreate

    settings = _settings()
    _migrate(settings)
    session = _session(settings)
    factory = create_session_factory(session.get_bind().engine)
    try:
        target = session.get(DatabaseConnection, connection_id)
        owner = session.get(User, target.user_id) if target is not None else None
        if target is None or owner is None or not owner.is_active:
            typer.secho(f"no connection {connection_id!r}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        principal = Principal(user=owner, scopes=ROLE_SCOPES.get(owner.role, frozenset()))
        try:
            data = EvaluationCreate(
                generator=generator, model=model, semantic_layer_version=semantic_layer_version
            )
            params = evaluations_service.plan_run(
                session, principal, connection_id=target.id, data=data
            )
            evaluations_service.create_run(
                session,
                principal=principal,
                params=params,
                job_id=None,
                context=ClientContext(user_agent="nlsql eval"),
            )
            session.commit()
            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task(generator, total=len(params["golden_ids"]))
                runner.run_evaluation(
                    factory,
                    run_id=params["run_id"],
                    principal=principal,
                    settings=settings,
                    context=ClientContext(user_agent="nlsql eval"),
                    on_progress=lambda done, total: progress.update(
                        task, completed=done, total=total
                    ),
                )
        except AppError as exc:
            typer.secho(f"{exc.code}: {exc.message}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc
        run = session.get(EvaluationRun, params["run_id"])
        assert run is not None  # noqa: S101 - just run
        session.refresh(run)
        read = evaluations_service.run_read(session, run)
    finally:
        session.close()

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    Console().print(
        f"evaluation {read.id} ({read.status}) of {read.done}/{read.total} questions with "
        f"{read.used_generator}\n"
        f"EX {share(read.ex)}  answered {read.answered} ({share(read.answered_share)})  "
        f"precision {share(read.precision)}  p50 {ms(read.p50_ms)}  p95 {ms(read.p95_ms)}\n"
        f"right {read.right}  wrong {read.wrong}  declined {read.declined}  errors {read.errors}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("openapi")
def openapi(
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write it (default: frontend_contract/openapi.json)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the file is not current.")
    ] = False,
) -> None:
    """Write the API contract (the app's OpenAPI document) deterministically.

    Built from the app itself with an in-memory database and dummy secrets: it reads no
    settings and writes nothing but the output file. Run it after changing any endpoint or
    schema, then `npm run generate` in frontend_contract/ to refresh the TypeScript types.
    """
    from backend.openapi import OPENAPI_PATH, render_openapi

    target = out or OPENAPI_PATH
    rendered = render_openapi()
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != rendered:
            typer.secho(
                f"{target} is out of date with the app; run `nlsql openapi` and commit it.",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1)
        typer.echo(f"{target} is up to date")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered, encoding="utf-8")
    typer.echo(f"wrote {target}")


if __name__ == "__main__":
    app()
