"""Headless Debian Chromium for the real-browser tests (playwright drives the system browser)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

# Flags for a sandboxed, offline machine: no GPU, no sandbox as root, no background network calls.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """The system Chromium, or skip the test where it is not installed (CI installs it)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian chromium is not installed")
    return path


def launch_chromium(playwright: Any) -> Any:
    """Start headless Chromium through a running ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=LAUNCH_ARGS)
