"""The API docs work offline: `/docs` and `/redoc` load only the app's own files, render every
operation in Chromium with no host name resolvable, and Authorize takes both the API key and the
OAuth2 password flow (a bearer token)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.web import STATIC_DIR
from tests import factories
from tests.support.cdp import Browser
from tests.support.live_server import serve_on_loopback
from tests.web.conftest import artifacts_dir

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
DOCS_VENDORED = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "swagger-ui-favicon-32x32.png",
    "redoc.standalone.js",
)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_name_only_the_apps_own_files(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    html = page.text
    referenced = re.findall(r"""(?:src|href|from)\s*=?\s*["']([^"']+)["']""", html)
    assert referenced, html
    assert [url for url in referenced if not url.startswith("/")] == [], referenced
    assert "http://" not in html and "https://" not in html
    for url in referenced:
        assert client.get(url).status_code == 200, url


def test_docs_vendored_files_are_the_recorded_versions() -> None:
    readme = (STATIC_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    for name in DOCS_VENDORED:
        digest = hashlib.sha256((STATIC_DIR / "vendor" / name).read_bytes()).hexdigest()
        assert f"`{name}`" in readme and digest in readme, f"{name} is not the recorded file"
    for package in ("swagger-ui-dist@5.35.0", "redoc@2.5.4"):
        assert package in readme


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    with serve_on_loopback(app) as url:
        yield url


def _operation_count(app: FastAPI) -> int:
    return sum(len(methods) for methods in app.openapi()["paths"].values())


def test_swagger_ui_renders_offline_and_authorizes_both_ways(
    app: FastAPI,
    live_url: str,
    offline_browser: Browser,
    session: Session,
    request: pytest.FixtureRequest,
) -> None:
    browser = offline_browser
    user = factories.create_user(session, email="docs-reader@example.com")
    key = factories.create_api_key(session, user)

    browser.navigate(live_url + "/docs")
    expected = _operation_count(app)
    browser.wait_for(
        f"document.querySelectorAll('.opblock').length >= {expected}",
        what="every operation",
        timeout=60,
    )
    shown = browser.evaluate("document.querySelectorAll('.opblock').length")
    assert shown == expected
    assert "/api/v1/chat/sessions/{session_id}/ask" in browser.evaluate("document.body.innerText")

    # Authorize offers both schemes; the password flow gets a bearer token from /auth/token.
    browser.click(".auth-wrapper .authorize")
    browser.wait_for("!!document.querySelector('.modal-ux')", what="the Authorize dialog")
    dialog = browser.evaluate("document.querySelector('.modal-ux').innerText")
    assert "APIKeyHeader" in dialog and "OAuth2PasswordBearer" in dialog
    section = (
        "[...document.querySelectorAll('.modal-ux .auth-container')]"
        ".find(s => s.innerText.includes('{}'))"
    )
    browser.evaluate(section.format("APIKeyHeader") + ".querySelector('input').focus()")
    browser.send("Input.insertText", text=key.key)
    browser.evaluate(section.format("APIKeyHeader") + ".querySelector('button.authorize').click()")
    browser.type_into("#oauth_username", user.email)
    browser.type_into("#oauth_password", factories.DEFAULT_PASSWORD)
    browser.evaluate(
        section.format("OAuth2PasswordBearer") + ".querySelector('button.authorize').click()"
    )
    authorized = browser.wait_for(
        "(a => a.OAuth2PasswordBearer && a.OAuth2PasswordBearer.token && a)"
        "(ui.authSelectors.authorized().toJS())",
        what="both authorizations",
    )
    assert authorized["APIKeyHeader"]["value"] == key.key
    assert authorized["OAuth2PasswordBearer"]["token"]["token_type"] == "bearer"
    browser.screenshot(artifacts_dir(request) / "docs.png")

    # Everything came from the app; the page threw nothing.
    urls = [p["request"]["url"] for p in browser.events_named("Network.requestWillBeSent")]
    outside = [u for u in urls if not u.startswith((live_url, "data:", "blob:", "about:"))]
    assert outside == []
    assert browser.events_named("Network.loadingFailed") == []
    assert browser.events_named("Runtime.exceptionThrown") == [], browser.diagnostics()


def test_redoc_renders_offline(
    live_url: str, offline_browser: Browser, request: pytest.FixtureRequest
) -> None:
    browser = offline_browser
    browser.navigate(live_url + "/redoc")
    browser.wait_for(
        "document.body.innerText.includes('/api/v1/auth/login')",
        what="the operations in ReDoc",
        timeout=60,
    )
    browser.screenshot(artifacts_dir(request) / "redoc.png")
    failed = [
        (e["requestId"], e.get("errorText")) for e in browser.events_named("Network.loadingFailed")
    ]
    urls = {
        p["requestId"]: p["request"]["url"]
        for p in browser.events_named("Network.requestWillBeSent")
    }
    # Redoc's sidebar credit shows Redocly's logo from its CDN; the only thing the page cannot
    # load offline is that decorative image.
    assert [(urls.get(i), error) for i, error in failed if urls.get(i) != REDOCLY_LOGO] == []
    assert browser.events_named("Runtime.exceptionThrown") == [], browser.diagnostics()
