"""The API docs pages, `/docs` (Swagger UI) and `/redoc`, served from vendored assets.

FastAPI's defaults load both from a CDN, which leaves a blank page without internet; these
load only files under `/static/vendor`. Swagger UI's Authorize offers both security schemes of
the contract: the OAuth2 password flow (`/api/v1/auth/token`, a bearer token) and `X-API-Key`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
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


router = APIRouter(include_in_schema=False)
"""The docs pages, built once: their endpoints read the app from the request (FastAPI caches
facts about every endpoint function process-wide, so a function per app would keep each app)."""


def _openapi_url(request: Request) -> str:
    return str(request.app.openapi_url or "/openapi.json")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui.css",
        swagger_favicon_url=f"{VENDOR}/swagger-ui-favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_ui_parameters={"persistAuthorization": True},
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return HTMLResponse(
        _REDOC_PAGE.format(
            title=request.app.title, vendor=VENDOR, openapi_url=_openapi_url(request)
        )
    )


def mount_docs(app: FastAPI) -> None:
    """Serve `/docs`, its OAuth2 redirect page and `/redoc` (create the app with both off)."""
    app.include_router(router)
