"""Fuzzing from the contract: schemathesis drives the app with requests drawn from openapi.json.

`run_fuzz` seeds a platform database with real objects (a viewer with the demo connection, a
chat session with an answered question, a template, an API key; an admin; spare objects that
deleting and editing operations may use up), then for every operation of the contract draws
`examples` requests per caller with hypothesis (derandomized: the same cases every run) and
sends them through the app. Each response must pass schemathesis' checks:

* `not_a_server_error`: no 5xx, except a documented 502/504 saying that a user's database
  could not be reached (`unreachable_database_documented`): an edit may point the spare
  connection at any host, and every later call that reads through it answers so;
* `status_code_conformance`: the status is one the operation documents;
* `response_schema_conformance`: the body matches the documented schema of that status;
* positive data acceptance (`schema_valid_request_accepted`): a request the schema allows is
  never refused for its shape; refusals for its meaning (documented domain codes) are counted.

Drawn credentials and page cursors are dropped (see `_as_caller`).
Path ids are drawn twice per caller: once set to the seeded objects (so the handlers run for
real) and once as drawn by hypothesis (unknown ids must answer the documented 404).
Used by `tests/contract/test_fuzz.py` (a small budget in CI) and `scripts/fuzz.sh` (longer).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.connections import service as connections_service
from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from tests import factories

# The contract refuses NUL in every text (its 422 says so; `core.hygiene` answers it), which a
# JSON Schema cannot state: schema-valid requests are drawn without NUL, and the negative mode
# keeps it. tests/core/test_input_hygiene.py sends NUL to every operation on purpose.


def _without_nul(value: Any) -> Any:
    """`value` without what the contract refuses but a JSON Schema of free-form values cannot
    say: NUL in text, integers beyond 64 bits (clamped)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-(2**63), min(2**63 - 1, value))
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


# The codes of a request refused for its shape: a schema-valid request must never get one.
SHAPE_CODES = frozenset({"validation_error", "bad_request", "invalid_cursor"})


def schema_valid_request_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> None:
    """Positive data acceptance, told apart from rules the schema cannot state.

    A request drawn from the schema may still be refused for what it means (a question the
    engine cannot answer, SQL that does not parse, a value of the wrong type for that config
    key): those answers carry a domain code the operation documents, and are counted. A refusal
    for its shape (`validation_error`, `bad_request`) means the schema and the handler disagree.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if response.status_code not in (400, 413, 422):
        return
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if code is None or code in SHAPE_CODES:
        raise AssertionError(
            f"schema-valid request refused with {response.status_code} {code}: {response.text}"
        )


CONNECTION_FAILURES = frozenset(
    {"unreachable", "connect_timeout", "auth_failed", "unknown_database", "connection_lost"}
)
"""`details.kind` of a 502/504 about reaching the user's database, not about the request."""


def unreachable_database_documented(ctx: Any, response: Any, case: schemathesis.Case) -> bool:
    """Whether the answer is the contract's own for a connection the fuzzer itself pointed at
    a host that does not answer: a documented 502/504 `target_database_*` whose kind says the
    connection failed (not the query)."""
    if response.status_code not in (502, 504):
        return False
    if str(response.status_code) not in case.operation.definition.raw.get("responses", {}):
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return (
        error.get("code") in ("target_database_error", "target_database_timeout")
        and error.get("details", {}).get("kind") in CONNECTION_FAILURES
    )


def no_server_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """`not_a_server_error`, but for `unreachable_database_documented` answers."""
    if unreachable_database_documented(ctx, response, case):
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    response_schema_conformance,
]
_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass
class Seeded:
    """Ids of the objects the fuzzer's callers own, by path parameter name."""

    viewer: User
    admin: User
    keep: dict[str, str]
    """Objects that reading and running operations use."""
    spare: dict[str, str]
    """Objects that deleting and editing operations may use up."""


@dataclass
class FuzzReport:
    backend: str
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    """Codes of the 400/422 answers (to positive and negative cases alike)."""
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        top = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.backend}: {self.operations} operations, {self.cases} cases in "
            f"{self.seconds:.0f} s, {len(self.failures)} failing operations; statuses {top}; "
            f"refusals {dict(sorted(self.refusals.items()))}"
        )


def seed(client: TestClient, session: Session, settings: Settings) -> Seeded:
    """Real objects to aim path ids at, made through the API where the API makes them."""
    viewer = factories.create_user(session, full_name="Fuzz Viewer")
    admin = factories.create_user(session, role="admin", full_name="Fuzz Admin")
    patient = factories.create_user(session, full_name="Fuzz Patient")
    ids: dict[str, dict[str, str]] = {"keep": {}, "spare": {}}
    for kind in ("keep", "spare"):
        connection = connections_service.ensure_sqlite_connection(
            session, user_id=viewer.id, connection_name=f"demo {kind}", path=str(DEMO_DB_PATH)
        )
        session.commit()
        headers = factories.token_headers(session, settings, viewer)
        chat = client.post(
            "/api/v1/chat/sessions",
            json={"title": f"fuzz {kind}", "connection_id": connection.id},
            headers=headers,
        )
        chat.raise_for_status()
        answer = client.post(
            f"/api/v1/chat/sessions/{chat.json()['id']}/ask",
            json={"question": "how many orders are there?"},
            headers=headers,
        )
        answer.raise_for_status()
        template = client.post(
            "/api/v1/templates",
            json={
                "name": f"fuzz {kind}",
                "question_template": f"how many customers {kind}",
                "sql_template": "SELECT COUNT(*) AS customers FROM customers",
                "connection_id": connection.id,
            },
            headers=headers,
        )
        template.raise_for_status()
        golden = client.post(
            f"/api/v1/connections/{connection.id}/golden-questions",
            json={
                "question": f"how many customers {kind}",
                "sql": "SELECT COUNT(*) FROM customers",
            },
            headers=headers,
        )
        golden.raise_for_status()
        run = client.post(
            f"/api/v1/connections/{connection.id}/evaluations", json={}, headers=headers
        )
        run.raise_for_status()
        key = factories.create_api_key(session, viewer, name=f"fuzz {kind}")
        ids[kind] = {
            "connection_id": connection.id,
            "session_id": chat.json()["id"],
            "query_id": answer.json()["query_id"],
            "template_id": template.json()["id"],
            "key_id": key.id,
            "golden_id": golden.json()["id"],
            "run_id": run.json()["id"],
            "user_id": patient.id,
            "key": "nl2sql.default_model" if kind == "keep" else "export.timeout_seconds",
        }
    return Seeded(viewer=viewer, admin=admin, keep=ids["keep"], spare=ids["spare"])


def _order(operation: Any) -> tuple[int, str, str]:
    # Operations that end what others need (deleting, signing out) run last.
    ending = operation.method.upper() == "DELETE" or operation.path.endswith(
        ("/logout", "/logout-all", "/change-password")
    )
    return (1 if ending else 0, operation.path, operation.method)


def run_fuzz(
    app: FastAPI,
    client: TestClient,
    session: Session,
    settings: Settings,
    *,
    backend: str,
    examples: int,
    seed_value: int = 0,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE,),
) -> FuzzReport:
    seeded = seed(client, session, settings)
    viewer_key = factories.create_api_key(session, seeded.viewer, name="fuzz caller")
    admin_key = factories.create_api_key(session, seeded.admin, name="fuzz admin caller")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report = FuzzReport(backend=backend)
    started = time.monotonic()
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=_order)
    for operation in operations:
        report.operations += 1
        admin_only = operation.path.startswith("/api/v1/admin")
        user = seeded.admin if admin_only else seeded.viewer
        callers = {
            "bearer": lambda u=user: factories.token_headers(session, settings, u),
            "api key": lambda k=(admin_key if admin_only else viewer_key): k.headers,
        }
        names = _PATH_PARAM.findall(operation.path)
        ends = _order(operation)[0] == 1 or operation.method.upper() in ("PATCH", "PUT")
        known = seeded.spare if ends else seeded.keep
        aims: list[dict[str, str] | None] = [None]
        if names and all(n in known for n in names):
            aims.insert(0, {n: known[n] for n in names})
        for mode in modes:
            if mode is GenerationMode.NEGATIVE and not _negatable(operation):
                continue
            for caller, headers_of in callers.items():
                for aim in aims:
                    failure = _fuzz_operation(
                        operation, headers_of(), aim, mode, examples, seed_value, report
                    )
                    if failure:
                        where = "seeded ids" if aim else "drawn ids"
                        report.failures.append(
                            f"{operation.method.upper()} {operation.path} "
                            f"({mode.value}, {caller}, {where}): {failure}"
                        )
    report.seconds = time.monotonic() - started
    return report


def _fuzz_operation(
    operation: Any,
    headers: dict[str, str],
    path_parameters: dict[str, str] | None,
    mode: GenerationMode,
    examples: int,
    seed_value: int,
    report: FuzzReport,
) -> str | None:
    strategy = operation.as_strategy(mode, path_parameters=path_parameters).map(_as_caller)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(_strip_nul)

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @hypothesis.seed(seed_value)
    @given(case=strategy)
    def fuzz(case: schemathesis.Case) -> None:
        report.cases += 1
        response = case.call(headers=headers)
        report.statuses[response.status_code] += 1
        if response.status_code in (400, 422):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                report.refusals[response.json()["error"]["code"]] += 1
        case.validate_response(response, checks=CHECKS)
        schema_valid_request_accepted(None, response, case)

    try:
        fuzz()
    except hypothesis.errors.Unsatisfiable:
        return None  # nothing of this operation could be drawn invalid in this mode
    except (Exception, BaseExceptionGroup) as exc:  # every failure is reported, the run goes on
        return str(exc).strip()[:3000]
    return None


def _negatable(operation: Any) -> bool:
    """Whether schemathesis can draw an invalid request: a body or a constrained query.

    Path ids and header-free operations accept any string, so every negative draw would be
    filtered out (hypothesis gives up after hundreds of tries).
    """
    spec = operation.definition.raw
    if spec.get("requestBody"):
        return True
    return any(
        p.get("in") == "query" and set(p.get("schema", {})) - {"title", "description", "default"}
        for p in spec.get("parameters", [])
    )


def _strip_nul(case: schemathesis.Case) -> schemathesis.Case:
    for part in ("body", "query", "path_parameters", "headers"):
        value = getattr(case, part, None)
        if isinstance(value, dict | list | str):
            setattr(case, part, _without_nul(value))
    return case


def _as_caller(case: schemathesis.Case) -> schemathesis.Case:
    # The caller's own credentials are sent: drawn ones would only ever meet the 401 path.
    if case.headers:
        case.headers = {
            k: v for k, v in case.headers.items() if k.lower() not in ("authorization", "x-api-key")
        }
    # A page cursor is opaque: only one the API handed out is valid, and any other answers the
    # documented 400 `invalid_cursor` on every list (tests/core/test_pagination.py). A drawn
    # cursor would only ever test that, so lists are fuzzed from their first page.
    if case.query and "cursor" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}
    return case
