"""The TypeScript side of the contract: the committed types are what the pinned generator makes
of the app's schema, and the typed client example compiles against them.

Needs npm (the registry for `npm ci`): skipped locally without it, a failure in CI (CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.openapi import CONTRACT_DIR, render_openapi

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TYPES = Path("src") / "api-types.ts"

# One worker at a time installs and runs the pinned npm packages in the shared node_modules.
pytestmark = pytest.mark.xdist_group("npm")


@pytest.fixture(scope="module")
def npm() -> str:
    found = shutil.which("npm")
    if found is None:
        if IN_CI:
            pytest.fail("CI must check the TypeScript contract, but npm is not installed")
        pytest.skip("npm is not installed")
    return found


def _run(npm: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [npm, *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _installed_matches_lock() -> bool:
    """node_modules holds exactly the pinned generator and compiler (then `npm ci` is skipped)."""
    pinned = json.loads((CONTRACT_DIR / "package.json").read_text())["devDependencies"]
    for name, version in pinned.items():
        manifest = CONTRACT_DIR / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True


@pytest.fixture(scope="module")
def node_modules(npm: str) -> Path:
    if not _installed_matches_lock():
        _run(npm, "ci", "--no-audit", "--no-fund", cwd=CONTRACT_DIR)
    assert _installed_matches_lock()
    return CONTRACT_DIR / "node_modules"


def test_dev_dependencies_are_pinned_exactly() -> None:
    package = json.loads((CONTRACT_DIR / "package.json").read_text())
    lock = json.loads((CONTRACT_DIR / "package-lock.json").read_text())
    pinned = package["devDependencies"]
    assert set(pinned) == {"openapi-typescript", "typescript"}
    for name, version in pinned.items():
        assert version[0].isdigit(), f"{name} must be pinned to an exact version, not {version}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_generated_types_match_and_the_client_compiles(
    npm: str, node_modules: Path, tmp_path: Path
) -> None:
    # Generate from the schema the app produces now, in a scratch copy of the package.
    work = tmp_path / "contract"
    work.mkdir()
    for name in ("package.json", "package-lock.json", "tsconfig.json"):
        shutil.copy2(CONTRACT_DIR / name, work / name)
    shutil.copytree(CONTRACT_DIR / "src", work / "src")
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    (work / "openapi.json").write_text(render_openapi(), encoding="utf-8")
    (work / TYPES).unlink()

    _run(npm, "run", "generate", cwd=work)
    generated = (work / TYPES).read_text(encoding="utf-8")
    committed = (CONTRACT_DIR / TYPES).read_text(encoding="utf-8")
    assert generated == committed, (
        "frontend_contract/src/api-types.ts differs from the types of the app's schema: run "
        "`nlsql openapi`, then `npm run generate` in frontend_contract/, and commit both"
    )

    # The typed client example compiles against the fresh types.
    _run(npm, "run", "typecheck", cwd=work)


def test_typecheck_catches_a_client_that_drifted(
    npm: str, node_modules: Path, tmp_path: Path
) -> None:
    work = tmp_path / "contract"
    work.mkdir()
    for name in ("package.json", "tsconfig.json"):
        shutil.copy2(CONTRACT_DIR / name, work / name)
    shutil.copytree(CONTRACT_DIR / "src", work / "src")
    (work / "node_modules").symlink_to(node_modules, target_is_directory=True)
    client = work / "src" / "client.ts"
    client.write_text(
        client.read_text(encoding="utf-8").replace("answer.chart_type", "answer.chart_kind"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [npm, "run", "typecheck"], cwd=work, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    assert "chart_kind" in result.stdout + result.stderr
