"""The small browser page served at `/`: sign in, pick a connection, ask, see SQL, rows, chart.

Plain HTML and JavaScript with vendored Vega, Vega-Lite and vega-embed (no build step, works
offline). It talks to the same `/api/v1` endpoints as any other front end.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from backend.web.docs import mount_docs

STATIC_DIR = Path(__file__).resolve().parent / "static"


def mount_web(app: FastAPI) -> None:
    mount_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
