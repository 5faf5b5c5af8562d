"""The API docs pages, `/docs` (Swagger UI) and `/redoc`, served from vendored assets.

FastAPI's defaults load both from a CDN, which leaves a blank page without internet; these
load only files under `/static/vendor`. Swagger UI's Authorize offers both security schemes of
the contract: the OAuth2 password flow (`/api/v1/auth/token`, a bearer token) and `X-API-Key`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

VENDOR = "/static/vendor"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} - ReDoc</title>
  <link rel="icon" type="image/png" href="{vendor}/swagger-ui-favicon-32x32.png">
  <style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
  <div id="redoc"></div>
  <script src="{vendor}/redoc.standalone.js"></script>
  <script>
    Redoc.init("{openapi_url}", {{}}, document.getElementById("redoc"));
  </script>
</body>
</html>
"""


def mount_docs(app: FastAPI) -> None:
    """Serve `/docs`, its OAuth2 redirect page and `/redoc` (create the app with both off)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui-favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return HTMLResponse(
            _REDOC_PAGE.format(title=app.title, vendor=VENDOR, openapi_url=openapi_url)
        )
