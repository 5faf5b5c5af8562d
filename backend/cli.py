"""The `nlsql` command line: serve, migrate, create-admin, demo, eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from backend.main import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=settings.trusted_proxy_count > 0,
    )


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
"""
    )
    if not no_serve:
        serve(host=bind_host, port=bind_port)


@app.command("eval")
def eval_command(
    questions: Annotated[Path, typer.Argument(help="JSON list of {db_id, question, query?}.")],
    db_root: Annotated[Path, typer.Option(help="Folder holding <db_id>/<db_id>.sqlite.")],
    engine: Annotated[str, typer.Option(help="Generator to measure.")] = "builtin",
    out: Annotated[Path | None, typer.Option(help="Write predictions JSON here.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
) -> None:
    """Run a generator over a question set; print execution accuracy where gold SQL exists."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from backend.nl2sql import evaluation

    console = Console(stderr=True)
    try:
        items = evaluation.load_questions(questions)[:limit]
        generator = evaluation.get_generator(engine)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{engine}", total=len(items))
            report = evaluation.evaluate(
                items,
                db_root=db_root,
                generator=generator,
                on_progress=lambda n: progress.advance(task, n),
            )
    except evaluation.EvaluationInputError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    if out is not None:
        evaluation.write_predictions(out, report.predictions)
    summary = report.summary()
    out_console = Console()
    out_console.print(
        f"questions {summary['questions']}  declined {summary['decline_rate']:.1%}  "
        f"median {summary['median_ms']:.2f} ms/question"
    )
    if report.has_gold:
        table = Table(title="execution accuracy")
        for name in ("bucket", "n", "answered", "correct", "EX", "precision"):
            table.add_column(name, justify="left" if name == "bucket" else "right")
        rows = [("overall", report.overall)]
        rows += [(f"difficulty: {k}", v) for k, v in report.by_difficulty.items()]
        rows += [(f"db: {k}", v) for k, v in sorted(report.by_database.items())]
        for label, t in rows:
            table.add_row(
                label, str(t.total), str(t.answered), str(t.correct),
                f"{t.accuracy:.1%}", f"{t.precision:.1%}",
            )  # fmt: skip
        out_console.print(table)


if __name__ == "__main__":
    app()
