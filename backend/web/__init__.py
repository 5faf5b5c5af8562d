"""The small browser page served at `/`: sign in, pick a connection, ask, see SQL, rows, chart.

Plain HTML and JavaScript with vendored Vega, Vega-Lite and vega-embed (no build step, works
offline). It talks to the same `/api/v1` endpoints as any other front end.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from backend.web.docs import mount_docs

STATIC_DIR = Path(__file__).resolve().parent / "static"


router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def mount_web(app: FastAPI) -> None:
    """The page, its static files and the docs pages; the endpoints are built once per process
    (FastAPI caches facts about endpoint functions process-wide: one per app would keep it)."""
    mount_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
