"""`nlsql eval` picks its engine without handing any generator unvalidated settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from backend.core.config import Settings
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import EvaluationInputError, get_generator


class _Probe(SqlGenerator):
    name = "probe"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation(sql="SELECT 1", explanation="probe")


@pytest.fixture
def real_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'app_data.db'}",
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        _env_file=None,
    )


@pytest.fixture
def builtin_restored() -> Iterator[None]:
    yield
    registry.restore_builtin()


def _never() -> Settings:
    raise AssertionError("the offline engine must not load settings")


def test_the_offline_engine_is_built_without_loading_settings() -> None:
    assert isinstance(get_generator("builtin", _never), BuiltinGenerator)


def test_a_generator_that_reads_settings_gets_validated_ones(
    real_settings: Settings, builtin_restored: None
) -> None:
    # Whatever is registered under the default name, a factory that takes settings is handed
    # the validated ones the caller loads, never a `Settings.model_construct()` stand-in.
    registry.register_generator("builtin", _Probe)
    built = get_generator("builtin", lambda: real_settings)
    assert isinstance(built, _Probe)
    assert built.settings is real_settings
    registry.restore_builtin()
    assert isinstance(get_generator("builtin", _never), BuiltinGenerator)


def test_an_llm_engine_loads_the_settings_once_and_an_unknown_one_is_refused(
    real_settings: Settings,
) -> None:
    loaded: list[Settings] = []

    def load() -> Settings:
        loaded.append(real_settings)
        return real_settings

    assert get_generator("openai", load).name == "openai"
    assert loaded == [real_settings]
    with pytest.raises(EvaluationInputError, match="unknown engine 'nope'"):
        get_generator("nope", _never)
