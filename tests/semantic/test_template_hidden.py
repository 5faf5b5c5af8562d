"""Query templates and the semantic layer's hidden items, over HTTP: a template that reads a hidden
item is refused when saved (422 naming it); one saved before the layer hid what it reads is
listed with the layer, answers no question and is refused when run."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.chat.conftest import STAND_IN, Caller, StandInGenerator

TEMPLATES = "/api/v1/templates"
LAYER: dict[str, Any] = {
    "tables": [{"name": "customers", "columns": [{"name": "email", "hidden": True}]}]
}
EMAILS: dict[str, Any] = {
    "name": "Customer emails",
    "question_template": "customer emails",
    "sql_template": "SELECT first_name, email FROM customers ORDER BY id",
}


def _put_layer(client: TestClient, caller: Caller, layer: dict[str, Any]) -> Any:
    response = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={"document": layer},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _refused(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "template_reads_hidden"
    assert "customers.email" in error["message"]
    assert error["details"]["column"] == "customers.email"
    assert error["details"]["field"] == "sql_template"
    return error


def test_a_template_reading_a_hidden_column_is_refused_when_saved(
    client: TestClient, caller: Caller
) -> None:
    _put_layer(client, caller, LAYER)
    bound = {**EMAILS, "connection_id": caller.connection_id}
    error = _refused(client.post(TEMPLATES, json=bound, headers=caller.headers))
    assert error["details"]["connection_id"] == caller.connection_id
    # Unbound, it applies to every connection of its owner: refused too.
    _refused(client.post(TEMPLATES, json=EMAILS, headers=caller.headers))

    # A name the layer hides elsewhere passes where it resolves to a visible column.
    visible = {
        **bound,
        "question_template": "supplier mails",
        "sql_template": "SELECT company_name, contact_email AS email FROM suppliers ORDER BY email",
    }
    created = client.post(TEMPLATES, json=visible, headers=caller.headers)
    assert created.status_code == 201, created.text
    patched = client.patch(
        f"{TEMPLATES}/{created.json()['id']}",
        json={"sql_template": EMAILS["sql_template"]},
        headers=caller.headers,
    )
    _refused(patched)
    # Renaming touches no SQL and is not checked again.
    renamed = client.patch(
        f"{TEMPLATES}/{created.json()['id']}", json={"name": "Mails"}, headers=caller.headers
    )
    assert renamed.status_code == 200, renamed.text


def test_a_template_saved_before_the_layer_hid_its_column_is_listed_and_stops_answering(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    created = client.post(
        TEMPLATES, json={**EMAILS, "connection_id": caller.connection_id}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]

    layer = _put_layer(client, caller, LAYER)
    assert layer["templates_reading_hidden"] == [
        {"template_id": template_id, "name": "Customer emails", "item": "customers.email"}
    ]
    again = client.get(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer", headers=caller.headers
    )
    assert again.json()["templates_reading_hidden"][0]["template_id"] == template_id

    run = client.post(f"{TEMPLATES}/{template_id}/run", json={}, headers=caller.headers)
    assert run.status_code == 400, run.text
    assert run.json()["error"]["code"] == "sql_reads_hidden"

    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()
    answer = client.post(
        f"/api/v1/chat/sessions/{chat['id']}/ask",
        json={"question": "customer emails", "generator": STAND_IN},
        headers=caller.headers,
    )
    # Not answered from the template (its SQL would be refused): the generator gets the question.
    assert "sql_reads_hidden" not in answer.text
    assert [r.question for r in stand_in.requests] == ["customer emails"]

    # Once the layer no longer hides the column, the template is back.
    assert _put_layer(client, caller, {})["templates_reading_hidden"] == []
    run = client.post(f"{TEMPLATES}/{template_id}/run", json={}, headers=caller.headers)
    assert run.status_code == 200, run.text
