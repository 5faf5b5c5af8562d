"""Browser-test helpers: the Chromium to drive, and where screenshots are kept."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cdp import Browser, find_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ROOT = REPO_ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_chromium() -> str:
    """The Chromium executable; skips locally (fails in CI) when none is installed."""
    found = find_chromium()
    if found is None:
        if IN_CI:
            pytest.fail("CI must run the browser tests, but chromium is not installed")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def artifacts_dir(request: pytest.FixtureRequest) -> Path:
    """`test-artifacts/<test name>/` (gitignored): screenshots kept after the run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    path = ARTIFACTS_ROOT / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def offline_browser() -> Iterator[Browser]:
    """Headless Chromium at 1280x900 on which no host name resolves (only the loopback app)."""
    browser = Browser(require_chromium(), offline=True)
    try:
        for domain in ("Runtime", "Network", "Page"):
            browser.send(f"{domain}.enable")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield browser
    finally:
        browser.close()
