"""Fixtures of the semantic-layer tests: callers on the demo database (from the chat tests),
the loopback LLM provider, and a folder for target databases of the tests' own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from backend.core.config import DEMO_DIR, Settings
from tests.chat.conftest import caller, other_caller, stand_in
from tests.nl2sql.provider_server import API_KEY, ProviderServer, provider_server

__all__ = ["caller", "other_caller", "stand_in"]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    path = tmp_path / "dbs"
    path.mkdir()
    return path


@pytest.fixture
def settings(settings: Settings, db_dir: Path, server: ProviderServer) -> Settings:
    """The shared settings, with a folder of target databases allowed and both LLM providers
    pointed at the loopback server."""
    return settings.model_copy(
        update={
            "sqlite_allowed_dirs": [db_dir.resolve(), DEMO_DIR.resolve()],
            "openai_base_url": server.base_url,
            "openai_api_key": SecretStr(API_KEY),
            "openai_model": "test-model",
            "anthropic_base_url": server.base_url,
            "anthropic_api_key": SecretStr(API_KEY),
            "anthropic_model": "test-model",
            "llm_timeout_seconds": 5.0,
        }
    )
