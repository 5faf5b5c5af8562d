"""Tests write nothing into the working directory (the repository root when pytest runs there):
no generated secrets file from `Settings()` built without a `data_dir`, no `.hypothesis`
directory. `tests/conftest.py` also fails any test, and the run, that leaves a file in the
root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis.configuration import storage_directory
from pydantic import SecretStr

from backend.core.config import SECRETS_FILE_NAME, Settings
from tests.conftest import REPO_ROOT


def test_settings_without_a_data_dir_write_nothing_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    settings = Settings(_env_file=None, database_url="sqlite://")  # generates its secrets

    assert list(tmp_path.iterdir()) == []
    assert settings.data_dir == Path(os.environ["NLSQL_DATA_DIR"]).resolve()
    assert settings.secrets_file is not None and settings.secrets_file.is_file()


def test_a_data_dir_given_is_still_used(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None, data_dir=tmp_path, jwt_secret=SecretStr("s" * 40), database_url="sqlite://"
    )
    assert settings.data_dir == tmp_path.resolve()
    assert (tmp_path / SECRETS_FILE_NAME).is_file()  # the Fernet key it generated


def test_hypothesis_keeps_its_files_outside_the_repository() -> None:
    home = storage_directory("examples", intent_to_write=False).home_directory
    assert REPO_ROOT not in home.resolve().parents


def test_the_root_check_knows_where_the_root_is() -> None:
    assert (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "tests").is_dir()
