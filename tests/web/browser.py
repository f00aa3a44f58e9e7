"""Headless Chromium as the tests drive it: the Debian ``chromium`` binary, one throw-away profile per run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.services import IN_CI

WINDOW = (1400, 1000)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium is not installed and CI=true: apt-get install chromium (see .ci/run)")
        pytest.skip("chromium is not installed")
    return path


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
         "--virtual-time-budget=4000", *args],
        capture_output=True, text=True, timeout=50, check=False,
    )
