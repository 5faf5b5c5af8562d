"""Template runs: typed values bound as parameters (never pasted into SQL), usage counted."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.connections import service as connections_service
from backend.connections.models import DatabaseConnection
from backend.core.errors import Forbidden
from backend.demo import DEMO_DB_PATH
from backend.templates import service
from backend.templates.errors import TemplateNotFound, TemplateParameterInvalid
from backend.templates.schemas import TemplateCreate, TemplateParameter
from tests.templates.conftest import Caller

INJECTION = "x'; DROP TABLE customers; --"


def customers_template(session: Session, caller: Caller, **changes: object) -> str:
    fields: dict[str, object] = {
        "name": "Customers of a country",
        "question_template": "customers in {country}",
        "sql_template": "SELECT id, first_name, country FROM customers WHERE country = :country",
        "parameters": [TemplateParameter(name="country", type="string")],
    }
    data = TemplateCreate.model_validate({**fields, **changes})
    template = service.create_template(session, caller.principal, data)
    session.commit()
    return template.id


def test_a_value_holding_sql_is_bound_as_data(
    session: Session, make_caller: Callable[..., Caller], tmp_path: Path
) -> None:
    caller = make_caller()
    template_id = customers_template(session, caller)

    template, sql, params = service.prepare_template_run(
        session, caller.principal, template_id, {"country": INJECTION}
    )
    assert sql == template.sql_template, "the SQL text is the template's, untouched"
    assert INJECTION not in sql
    assert params == {"country": INJECTION}

    # Run it on a WRITABLE copy of the demo database: pasted in, the value would drop a table.
    target = tmp_path / "shop.sqlite"
    shutil.copyfile(DEMO_DB_PATH, target)
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.begin() as conn:
            assert conn.execute(text(sql), params).fetchall() == []
            france = conn.execute(text(sql), {"country": "France"}).fetchall()
        with engine.connect() as conn:
            remaining = conn.execute(text("SELECT COUNT(*) FROM customers")).scalar_one()
    finally:
        engine.dispose()
    assert france and all(row.country == "France" for row in france)
    assert remaining == 600


def test_runs_count_uses_and_check_parameters(
    session: Session, make_caller: Callable[..., Caller]
) -> None:
    caller = make_caller()
    template_id = customers_template(session, caller)
    for _ in range(2):
        service.prepare_template_run(session, caller.principal, template_id, {"country": "Peru"})
    session.commit()
    session.expire_all()
    assert service.get_template(session, caller.principal, template_id).usage_count == 2

    with pytest.raises(TemplateParameterInvalid):
        service.prepare_template_run(session, caller.principal, template_id, {})
    with pytest.raises(TemplateParameterInvalid):
        service.prepare_template_run(
            session, caller.principal, template_id, {"country": "Peru", "limit": 3}
        )


def test_runs_respect_visibility_and_api_key_connections(
    session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner, other = make_caller(), make_caller()
    private_id = customers_template(session, owner)
    with pytest.raises(TemplateNotFound):
        service.prepare_template_run(session, other.principal, private_id, {"country": "Peru"})

    connection = DatabaseConnection(
        user_id=owner.user.id, connection_name="shop", db_type="sqlite", db_name="shop.sqlite"
    )
    session.add(connection)
    session.flush()
    bound_id = customers_template(session, owner, connection_id=connection.id)
    restricted = Principal(
        user=owner.user,
        scopes=owner.principal.scopes,
        allowed_connection_ids=frozenset({"another-connection"}),
    )
    with pytest.raises(Forbidden):
        service.prepare_template_run(session, restricted, bound_id, {"country": "Peru"})


def _connection(session: Session, caller: Caller, name: str = "demo") -> DatabaseConnection:
    return connections_service.ensure_sqlite_connection(
        session, user_id=caller.user.id, connection_name=name, path=str(DEMO_DB_PATH)
    )


def test_a_question_is_matched_against_the_templates_that_apply_to_the_connection(
    session: Session, make_caller: Callable[..., Caller]
) -> None:
    owner, other = make_caller(), make_caller()
    mine = _connection(session, owner)
    theirs = _connection(session, other)
    customers_template(session, owner)
    public_id = customers_template(session, owner, is_public=True, name="public")

    found = service.match_template(
        "Customers in  New Zealand?", service.applicable_templates(session, mine)
    )
    assert found is not None
    assert found[1] == {"country": "New Zealand"}
    assert (
        service.match_template("orders in France", service.applicable_templates(session, mine))
        is None
    )
    # Another user's public template is visible to read, but never applies to their connection.
    assert service.get_template(session, other.principal, public_id).id == public_id
    assert service.applicable_templates(session, theirs) == []


def test_parameterless_templates_become_examples(
    session: Session, make_caller: Callable[..., Caller]
) -> None:
    caller = make_caller()
    customers_template(session, caller)
    service.create_template(
        session,
        caller.principal,
        TemplateCreate(
            name="count",
            question_template="How many customers are there?",
            sql_template="SELECT COUNT(*) FROM customers",
        ),
    )
    examples = service.template_examples(session, _connection(session, caller))
    assert [(e.question, e.sql) for e in examples] == [
        ("How many customers are there?", "SELECT COUNT(*) FROM customers")
    ]
