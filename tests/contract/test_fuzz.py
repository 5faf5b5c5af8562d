"""The contract holds under fuzzing: a small, deterministic schemathesis budget per backend.

Every operation of openapi.json gets `NLSQL_FUZZ_EXAMPLES` drawn requests (default 4) per
caller (a signed-in user's bearer token and an API key) and per aim (seeded ids, drawn ids), on
each platform database in NLSQL_TEST_BACKENDS. `scripts/fuzz.sh` runs the same with more.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from sqlalchemy.orm import Session

from backend.core.config import Settings
from tests.contract.fuzzing import run_fuzz

EXAMPLES = int(os.environ.get("NLSQL_FUZZ_EXAMPLES", "4"))
SEED = int(os.environ.get("NLSQL_FUZZ_SEED", "0"))
MODES = tuple(
    GenerationMode(m.strip())
    for m in os.environ.get("NLSQL_FUZZ_MODES", "positive,negative").split(",")
    if m.strip()
)


def test_every_operation_holds_its_contract_under_fuzzing(
    app: FastAPI, client: TestClient, session: Session, settings: Settings, app_db_url: str
) -> None:
    backend = app_db_url.split(":", 1)[0].split("+", 1)[0]
    report = run_fuzz(
        app,
        client,
        session,
        settings,
        backend=backend,
        examples=EXAMPLES,
        seed_value=SEED,
        modes=MODES,
    )
    print(report.summary())  # noqa: T201 - the figures scripts/fuzz.sh reports
    assert report.operations >= 50
    assert report.cases >= report.operations * EXAMPLES * len(MODES)
    assert not report.failures, "\n\n".join(report.failures)
