"""The page's files are served by the app next to the API, the docs and the probes."""

from __future__ import annotations

import hashlib
import re

from fastapi.testclient import TestClient

from backend.web import STATIC_DIR

VENDORED = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


def test_page_and_its_files_are_served_beside_the_api(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for element in ("login-form", "connection", "question", "thread", "sessions", "admin-view"):
        assert f'id="{element}"' in html
    # Every script and stylesheet the page names is served from this app, none from a CDN.
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {f"/static/vendor/{name}" for name in VENDORED} | {
        "/static/app.js",
        "/static/format.js",
        "/static/admin.js",
    } <= set(assets)
    assert "//" not in "".join(re.findall(r'src="([^"]+)"', html))
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert response.content == (STATIC_DIR / asset.removeprefix("/static/")).read_bytes()

    assert client.get("/static/no-such-file.js").status_code == 404
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/docs").status_code == 200
    assert "/" not in client.get("/openapi.json").json()["paths"]
    unauthorized = client.get("/api/v1/auth/me")
    assert unauthorized.status_code == 401
    assert unauthorized.json()["error"]["code"] == "unauthorized"


def test_vendored_files_are_the_recorded_versions() -> None:
    readme = (STATIC_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    for name in VENDORED:
        digest = hashlib.sha256((STATIC_DIR / "vendor" / name).read_bytes()).hexdigest()
        assert f"`{name}`" in readme and digest in readme, f"{name} is not the recorded file"
    for package in ("vega@6.4.0", "vega-lite@6.5.0", "vega-embed@7.3.0"):
        assert package in readme
