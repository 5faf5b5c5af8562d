"""The page at `/` in headless Chromium: sign in, pick the demo connection, ask, see the chart.

A real uvicorn server on loopback serves the app over a fresh embedded-default data dir in which
`nlsql demo --no-serve` created the demo account and connection. The question goes to the
default generator (the offline `builtin` engine), and the rows shown are checked against a
reference query.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from backend.cli import DEMO_EMAIL, DEMO_PASSWORD
from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from backend.main import create_app
from tests.support.cdp import Browser, find_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
QUESTION = "Number of orders per status"
REFERENCE_SQL = "SELECT status, COUNT(*) FROM orders GROUP BY status"


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        if IN_CI:
            pytest.fail("CI must run the browser test, but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture
def demo_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chromium: str) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("NLSQL_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NLSQL_DATA_DIR": str(data_dir)}
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "demo", "--no-serve"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=180,
    )
    app = create_app(Settings(_env_file=None, data_dir=data_dir))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    browser = Browser(chromium)
    try:
        browser.send("Runtime.enable")
        browser.send("Network.enable")
        yield browser
    finally:
        browser.close()


def _visible(selector: str) -> str:
    return f"(el => !!el && !el.hidden)(document.querySelector('{selector}'))"


def test_sign_in_ask_and_see_the_chart(demo_server: str, browser: Browser) -> None:
    browser.navigate(demo_server + "/")
    assert browser.evaluate("document.title").startswith("nlsql")
    browser.wait_for(_visible("#login-view"), what="the sign-in form")

    # A wrong password shows the API's error message and keeps the form.
    browser.type_into("#email", DEMO_EMAIL)
    browser.type_into("#password", "not-the-password")
    browser.click("#sign-in")
    error = browser.wait_for(
        "!document.getElementById('error').hidden && document.getElementById('error').textContent",
        what="the sign-in error",
    )
    assert "password" in error.lower() or "credentials" in error.lower(), error
    assert browser.evaluate("document.getElementById('ask-view').hidden") is True

    browser.evaluate("document.getElementById('password').value = ''")
    browser.type_into("#password", DEMO_PASSWORD)
    browser.click("#sign-in")
    browser.wait_for(
        "document.getElementById('connection').options.length > 0",
        what="the connection list after sign-in",
    )
    assert browser.evaluate("document.getElementById('error').hidden") is True
    assert browser.evaluate("document.getElementById('user-email').textContent") == DEMO_EMAIL
    selected = browser.evaluate(
        "document.getElementById('connection').selectedOptions[0].textContent"
    )
    assert selected == "demo (sqlite)"

    browser.type_into("#question", QUESTION)
    browser.click("#ask")
    browser.wait_for(
        "document.getElementById('chart').dataset.rendered === 'true'",
        what="the chart",
        timeout=60,
    )

    sql = browser.evaluate("document.getElementById('sql').textContent")
    assert "orders" in sql.lower() and "status" in sql.lower(), sql
    shown = browser.evaluate(
        "[...document.querySelectorAll('#rows tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as db:
        reference = db.execute(REFERENCE_SQL).fetchall()
    # Each reference column appears among the shown columns (an engine may add or reorder).
    shown_columns = [Counter(column) for column in zip(*shown, strict=True)]
    for index in range(2):
        expected = Counter(str(row[index]) for row in reference)
        assert expected in shown_columns, (expected, shown)

    # The chart is drawn from the answer's Vega-Lite spec: an SVG with one bar per status.
    marks = browser.evaluate("document.querySelectorAll('#chart svg .role-mark > *').length")
    assert browser.evaluate("!!document.querySelector('#chart svg, #chart canvas')")
    assert marks >= len(reference), marks

    # Everything the page loaded came from the app itself: it works offline.
    urls = [p["request"]["url"] for p in browser.events_named("Network.requestWillBeSent")]
    assert urls, "no network request was recorded"
    outside = [u for u in urls if not u.startswith((demo_server, "data:", "blob:", "about:"))]
    assert outside == [], outside
    assert browser.events_named("Runtime.exceptionThrown") == [], browser.diagnostics()
