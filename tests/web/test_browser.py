"""The page at `/` in headless Chromium, as a viewer and as an admin.

A real uvicorn server on loopback serves the app over a fresh embedded-default data dir in which
`nlsql demo --no-serve` created the demo account and connection, and `nlsql create-admin` an
admin. The viewer asks, follows up, meets a decline and takes one of its suggestions, drafts SQL
and runs it, rates an answer with a comment and a corrected SQL (which the guard checks first),
resumes the conversation; the admin opens the dashboard and verifies the audit
chain. Screenshots of each step are kept in `test-artifacts/` (gitignored). Nothing is loaded
from outside the app and nothing is logged as an error.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.cli import DEMO_EMAIL, DEMO_PASSWORD
from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from backend.main import create_app
from tests.support.cdp import Browser
from tests.support.live_server import serve_on_loopback
from tests.web.conftest import artifacts_dir, require_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password-2024"
QUESTION = "Number of orders per status"
FOLLOW_UP = "and only for 2023?"
NONSENSE = "xyzzy plugh frobnicate"
REFERENCE_SQL = "SELECT status, COUNT(*) FROM orders GROUP BY status"
COMMENT = "Right counts; I would name the column orders."
CORRECTED_SQL = "SELECT status, COUNT(*) AS orders FROM orders GROUP BY status"


@pytest.fixture
def demo_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    require_chromium()
    for name in list(os.environ):
        if name.startswith("NLSQL_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NLSQL_DATA_DIR": str(data_dir)}
    for command in (
        ["demo", "--no-serve"],
        ["create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD],
    ):
        subprocess.run(
            [sys.executable, "-m", "backend.cli", *command],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            timeout=180,
        )
    app = create_app(Settings(_env_file=None, data_dir=data_dir))
    with serve_on_loopback(app) as url:
        yield url


def _visible(selector: str) -> str:
    return f"(el => !!el && !el.hidden)(document.querySelector('{selector}'))"


LAST_TURN = "document.querySelector('#thread .turn:last-child')"


def _last_turn_state(browser: Browser, state: str, what: str) -> None:
    browser.wait_for(
        f"{LAST_TURN} && {LAST_TURN}.dataset.state === '{state}'", what=what, timeout=60
    )


def _ask(browser: Browser, question: str) -> None:
    browser.evaluate("document.getElementById('question').value = ''")
    browser.type_into("#question", question)
    browser.click("#ask")


def _sign_in(browser: Browser, email: str, password: str) -> None:
    browser.evaluate("document.getElementById('email').value = ''")
    browser.evaluate("document.getElementById('password').value = ''")
    browser.type_into("#email", email)
    browser.type_into("#password", password)
    browser.click("#sign-in")
    browser.wait_for(_visible("#whoami"), what="the signed-in header")


def _press_enter(browser: Browser) -> None:
    browser.send("Input.dispatchKeyEvent", type="keyDown", key="Enter", code="Enter", text="\r")
    browser.send("Input.dispatchKeyEvent", type="keyUp", key="Enter", code="Enter")


def _console_errors(browser: Browser) -> list[str]:
    return [
        " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        for p in browser.events_named("Runtime.consoleAPICalled")
        if p.get("type") == "error"
    ]


def test_a_viewer_converses_and_an_admin_reviews(
    demo_server: str, offline_browser: Browser, request: pytest.FixtureRequest
) -> None:
    browser = offline_browser
    shots = artifacts_dir(request)
    browser.navigate(demo_server + "/")
    assert browser.evaluate("document.title").startswith("nlsql")
    browser.wait_for(_visible("#login-view"), what="the sign-in form")
    browser.screenshot(shots / "01-sign-in.png")

    # A wrong password shows the API's message and keeps the form.
    browser.type_into("#email", DEMO_EMAIL)
    browser.type_into("#password", "not-the-password")
    browser.click("#sign-in")
    error = browser.wait_for(
        "!document.getElementById('error').hidden && document.getElementById('error').textContent",
        what="the sign-in error",
    )
    assert "password" in error.lower() or "credentials" in error.lower(), error

    _sign_in(browser, DEMO_EMAIL, DEMO_PASSWORD)
    browser.wait_for(
        "document.getElementById('connection').options.length > 0", what="the connections"
    )
    assert browser.evaluate("document.getElementById('user-email').textContent") == DEMO_EMAIL
    assert browser.evaluate("document.getElementById('tab-admin').hidden") is True
    assert (
        browser.evaluate("document.getElementById('connection').selectedOptions[0].textContent")
        == "demo (sqlite)"
    )

    # Ask: summary, the SQL as one would run it, formatted rows, a chart as wide as the thread.
    _ask(browser, QUESTION)
    _last_turn_state(browser, "answered", "the first answer")
    browser.wait_for(
        f"{LAST_TURN}.querySelector('.chart').dataset.rendered === 'true'", what="the chart"
    )
    sql = browser.evaluate(f"{LAST_TURN}.querySelector('.sql').textContent")
    assert "status" in sql.lower() and "1001" not in sql, sql
    summary = browser.evaluate(f"{LAST_TURN}.querySelector('.summary').textContent")
    assert "delivered (2,436)" in summary, summary
    shown = browser.evaluate(
        f"[...{LAST_TURN}.querySelectorAll('tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent))"
    )
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as db:
        reference = db.execute(REFERENCE_SQL).fetchall()
    shown_columns = [Counter(column) for column in zip(*shown, strict=True)]
    assert Counter(str(status) for status, _ in reference) in shown_columns
    assert Counter(f"{count:,}" for _, count in reference) in shown_columns
    widths = browser.evaluate(
        f"(t => [t.querySelector('.chart svg').getBoundingClientRect().width,"
        f" t.getBoundingClientRect().width])({LAST_TURN})"
    )
    assert widths[0] >= 0.8 * widths[1] and widths[0] > 400, widths

    # Rating with the keyboard: focus the "4" button, press Enter; the page shows the rating.
    browser.evaluate(f"{LAST_TURN}.querySelector('.rating .rate[data-value=\"4\"]').focus()")
    _press_enter(browser)
    rated = browser.wait_for(
        f"{LAST_TURN}.querySelector('.rating').dataset.rating === '4'"
        f" && {LAST_TURN}.querySelector('.rating-status').textContent",
        what="the rating",
    )
    assert "4 of 5" in rated, rated
    pressed = browser.evaluate(
        f"[...{LAST_TURN}.querySelectorAll('.rate')].map(b => b.getAttribute('aria-pressed'))"
    )
    assert pressed == ["false", "false", "false", "true", "false"], pressed

    # A comment and a corrected SQL go with the rating; the guard's refusal shows by the field.
    browser.click("#thread .turn:last-child .feedback-more summary")
    browser.wait_for(_visible("#thread .turn:last-child .feedback-comment"), what="the comment box")
    labels = browser.evaluate(
        f"[...{LAST_TURN}.querySelectorAll('.feedback-form textarea')]"
        ".map(t => t.labels[0].textContent)"
    )
    assert labels == ["Comment (optional)", "Suggest corrected SQL (optional)"], labels
    browser.type_into("#thread .turn:last-child .feedback-comment", COMMENT)
    browser.type_into("#thread .turn:last-child .feedback-sql", "DELETE FROM orders")
    browser.click("#thread .turn:last-child .send-feedback")
    refusal = browser.wait_for(
        f"(e => !e.hidden && e.textContent)({LAST_TURN}.querySelector('.feedback-error'))",
        what="the guard's refusal of the corrected SQL",
    )
    assert "not accepted" in refusal and "DELETE" in refusal, refusal
    assert (
        browser.evaluate(f"{LAST_TURN}.querySelector('.feedback-sql').getAttribute('aria-invalid')")
        == "true"
    )
    assert browser.evaluate(
        f"{LAST_TURN}.querySelector('.feedback-sql').getAttribute('aria-describedby')"
    ) == browser.evaluate(f"{LAST_TURN}.querySelector('.feedback-error').id")
    browser.screenshot(shots / "02-feedback-refused.png")
    browser.evaluate(f"{LAST_TURN}.querySelector('.feedback-sql').value = ''")
    browser.type_into("#thread .turn:last-child .feedback-sql", CORRECTED_SQL)
    # Keyboard: Enter on the focused Send button submits.
    browser.evaluate(f"{LAST_TURN}.querySelector('.send-feedback').focus()")
    _press_enter(browser)
    sent = browser.wait_for(
        f"{LAST_TURN}.querySelector('.feedback-status').textContent", what="the feedback sent"
    )
    assert "comment and corrected SQL" in sent and "example" in sent, sent
    assert browser.evaluate(f"{LAST_TURN}.querySelector('.feedback-error').hidden") is True
    assert browser.evaluate(f"{LAST_TURN}.querySelector('.rating').dataset.rating") == "4"
    browser.screenshot(shots / "02-answer.png")

    # A follow-up stays in the same conversation and narrows the question.
    _ask(browser, FOLLOW_UP)
    _last_turn_state(browser, "answered", "the follow-up")
    assert browser.evaluate("document.querySelectorAll('#thread .turn').length") == 2
    follow_sql = browser.evaluate(f"{LAST_TURN}.querySelector('.sql').textContent")
    assert "2023" in follow_sql, follow_sql

    # In a new conversation, a decline shows what was understood and offers questions to choose.
    browser.click("#new-chat")
    _ask(browser, NONSENSE)
    _last_turn_state(browser, "declined", "the decline")
    suggestions = browser.wait_for(
        f"[...{LAST_TURN}.querySelectorAll('.suggestion')].map(b => b.textContent)",
        what="the suggestions",
    )
    assert suggestions, suggestions
    assert browser.evaluate(f"{LAST_TURN}.querySelector('.understood').textContent")
    browser.screenshot(shots / "03-decline.png")
    browser.click("#thread .turn:last-child .suggestion")
    browser.wait_for(
        "document.querySelectorAll('#thread .turn').length === 2", what="the suggestion's turn"
    )
    _last_turn_state(browser, "answered", "the suggestion's answer")

    # SQL only: nothing runs until asked to.
    browser.click("#draft-only")
    _ask(browser, "How many customers are there?")
    _last_turn_state(browser, "draft", "the drafted SQL")
    assert browser.evaluate(f"{LAST_TURN}.querySelector('table')") is None
    browser.click("#thread .turn:last-child .run-draft")
    _last_turn_state(browser, "answered", "the draft once run")
    assert browser.evaluate(f"{LAST_TURN}.querySelector('tbody td').textContent") == "600"
    assert browser.evaluate(f"{LAST_TURN}.querySelectorAll('.rating .rate').length") == 5
    browser.click("#draft-only")

    # Both conversations are listed, newest first, and each can be resumed.
    browser.wait_for(
        "document.querySelectorAll('#sessions .session').length === 2", what="the session list"
    )
    browser.click("#new-chat")
    assert browser.evaluate("document.querySelectorAll('#thread .turn').length") == 0
    turn_states = "[...document.querySelectorAll('#thread .turn')].map(t => t.dataset.state)"
    browser.click("#sessions li:nth-child(2) .session")
    browser.wait_for(
        "document.querySelectorAll('#thread .turn').length === 2", what="the first conversation"
    )
    assert browser.evaluate(turn_states) == ["answered", "answered"]
    # A reopened answer shows its chart again, and the rating given to it.
    first_turn = "document.querySelector('#thread .turn:first-child')"
    browser.wait_for(
        f"{first_turn}.querySelector('.chart').dataset.rendered === 'true'",
        what="the reopened answer's chart",
    )
    assert browser.evaluate(f"{first_turn}.querySelector('.rating').dataset.rating") == "4"
    # ... and, once its disclosure is opened, the comment and corrected SQL sent with it.
    browser.click("#thread .turn:first-child .feedback-more summary")
    kept = browser.wait_for(
        f"(t => t.querySelector('.feedback-comment').value"
        f" && [t.querySelector('.feedback-comment').value,"
        f" t.querySelector('.feedback-sql').value])({first_turn})",
        what="the earlier comment",
    )
    assert kept == [COMMENT, CORRECTED_SQL], kept
    browser.click("#sessions li:nth-child(1) .session")
    browser.wait_for(
        "document.querySelectorAll('#thread .turn').length === 3", what="the second conversation"
    )
    # The draft that was run later shows its result, not the draft.
    assert browser.evaluate(turn_states) == ["declined", "answered", "answered"]
    assert browser.evaluate(f"{LAST_TURN}.querySelector('tbody td').textContent") == "600"
    assert browser.evaluate(f"{LAST_TURN}.querySelector('.run-draft')") is None
    browser.screenshot(shots / "04-resumed.png")

    # A chart spec that names the answer's rows instead of copying them gets them filled in.
    filled = browser.evaluate(
        "nlsqlFormat.chartSpec({data: {name: 'rows'}, mark: 'bar'},"
        " [{name: 'status'}, {name: 'n'}], [['a', 1]]).datasets.rows"
    )
    assert filled == [{"status": "a", "n": 1}]

    # An expired access token is refreshed once, and the request goes through.
    browser.evaluate(
        "(p => sessionStorage.setItem('nlsql.tokens', JSON.stringify({...p, access_token: 'x'})))"
        "(JSON.parse(sessionStorage.getItem('nlsql.tokens')))"
    )
    old_refresh = browser.evaluate(
        "JSON.parse(sessionStorage.getItem('nlsql.tokens')).refresh_token"
    )

    # Keyboard: Enter in the question field asks.
    browser.evaluate("document.getElementById('question').value = ''")
    browser.type_into("#question", QUESTION)
    _press_enter(browser)
    browser.wait_for(
        "document.querySelectorAll('#thread .turn').length === 4", what="the keyboard ask"
    )
    _last_turn_state(browser, "answered", "the keyboard ask's answer")
    assert browser.evaluate(
        "JSON.parse(sessionStorage.getItem('nlsql.tokens')).refresh_token"
    ) not in (None, old_refresh)

    browser.click("#sign-out")
    browser.wait_for(_visible("#login-view"), what="the sign-in form after signing out")

    # The admin reviews: charts from the review API, the audit chain, users, config.
    _sign_in(browser, ADMIN_EMAIL, ADMIN_PASSWORD)
    browser.wait_for(_visible("#tab-admin"), what="the admin tab")
    browser.click("#tab-admin")
    browser.wait_for(_visible("#admin-view"), what="the admin area")
    assert (
        browser.evaluate("getComputedStyle(document.getElementById('ask-view')).display") == "none"
    )
    for chart in ("chart-asks", "chart-latency", "chart-users", "chart-errors", "chart-ratings"):
        browser.wait_for(
            f"document.getElementById('{chart}').dataset.rendered === 'true'",
            what=f"the {chart} chart",
            timeout=60,
        )
    cards = browser.evaluate(
        "[...document.querySelectorAll('#admin-totals .card')].map(c => c.textContent)"
    )
    assert any(card.endswith("queries") for card in cards), cards
    ratings = browser.evaluate(
        "[...document.querySelectorAll('#ratings tbody tr')].map(r => r.cells[1].textContent)"
    )
    assert ratings == ["4"], ratings
    assert browser.evaluate("document.querySelectorAll('#audit tbody tr').length") > 0
    assert browser.evaluate("document.querySelectorAll('#events tbody tr').length") > 0
    users = browser.evaluate(
        "[...document.querySelectorAll('#users tbody tr')].map(r => r.cells[0].textContent)"
    )
    assert set(users) == {DEMO_EMAIL, ADMIN_EMAIL}
    config = browser.evaluate("document.querySelector('#config').innerText")
    assert "query.row_cap" in config
    browser.click("#verify-chain")
    status = browser.wait_for(
        "document.getElementById('chain-status').dataset.intact === 'true'"
        " && document.getElementById('chain-status').textContent",
        what="the audit chain verdict",
    )
    assert status.startswith("Intact"), status
    browser.screenshot(shots / "05-admin.png")

    # Everything the page loaded came from the app itself; nothing failed or logged an error.
    urls = [p["request"]["url"] for p in browser.events_named("Network.requestWillBeSent")]
    outside = [u for u in urls if not u.startswith((demo_server, "data:", "blob:", "about:"))]
    assert outside == [], outside
    assert browser.events_named("Runtime.exceptionThrown") == [], browser.diagnostics()
    assert _console_errors(browser) == [], browser.diagnostics()
