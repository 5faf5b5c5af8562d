"""The recipe `nlsql demo` prints works as printed: its shell lines, run by bash with curl
against the served app, sign in, list the connections, open a session and get an answer."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from backend.core.config import Settings
from backend.main import create_app
from tests.cli.test_cli import _env, nlsql
from tests.support.live_server import serve_on_loopback


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _recipe(printed: str) -> str:
    """The shell lines between 'Sign in and ask:' and 'API docs:'."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Sign in and ask:"))
    end = next(i for i, line in enumerate(lines) if line.startswith("API docs:"))
    return "\n".join(line.strip() for line in lines[start + 1 : end])


def _documents(output: str) -> list[dict[str, object]]:
    """The JSON bodies curl printed back to back (curl adds no newline after a body)."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    text = output.strip()
    while position < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


def test_the_printed_recipe_answers_the_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the recipe uses curl")
    port = _free_port()
    printed = nlsql(tmp_path, "demo", "--no-serve", "--host", "127.0.0.1", "--port", str(port))
    recipe = _recipe(printed.stdout)
    assert "curl" in recipe and f"127.0.0.1:{port}" in recipe

    for name in [n for n in os.environ if n.startswith("NLSQL_")]:
        monkeypatch.delenv(name)
    app = create_app(Settings(_env_file=None, data_dir=tmp_path))
    with serve_on_loopback(app, port=port) as base:
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", recipe],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        connections, answer = _documents(ran.stdout)
        assert [c["connection_name"] for c in connections["items"]] == ["demo"]
        assert "error" not in answer, answer
        assert answer["sql"].lower().startswith(("select", "with"))
        assert len(answer["rows"]) == 5 and answer["summary"]
        for page in ("/docs", "/"):
            assert httpx.get(base + page).status_code == 200
