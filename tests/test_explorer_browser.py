"""The explorer in a real headless Chromium: upload a demo submission, see it scored and explore it.

Starts ``ecva serve explorer`` on a free loopback port with a private ECVA_HOME and the AnomEval
judge pointed at a loopback OpenAI-compatible stub (the app generates the demo dataset and scores
its three submissions on first start), then clicks through the pages and saves a screenshot of
each under ``test-output/explorer/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser import launch_chromium

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "test-output" / "explorer"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ecva serve explorer exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the explorer did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def explorer(isolated_home: Path):
    """The app on a free loopback port, judging through a loopback OpenAI-compatible stub."""
    from tests.openai_stub import OpenAIStub

    stub = OpenAIStub()
    port = _free_port()
    env = dict(
        os.environ,
        ECVA_HOME=str(isolated_home),
        ECVA_JUDGE_BASE_URL=stub.base_url,
        ECVA_JUDGE_API_KEY="loopback-test-key",
        ECVA_JUDGE_PRICE_IN="0.15",
        ECVA_JUDGE_PRICE_OUT="0.60",
    )
    log = (isolated_home.parent / "explorer.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecva_core.cli.main", "serve", "explorer", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, proc)
        yield url, isolated_home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        stub.close()


def _settle(page, timeout: float = 180_000) -> None:
    """Wait until Streamlit has finished running the script (no spinner, status widget idle)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_timeout(1000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]')",
        timeout=timeout,
    )
    page.wait_for_timeout(1500)


def _go(page, url: str, path: str, title: str) -> None:
    page.goto(f"{url}/{path}")
    _settle(page)
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    _settle(page)


def _sidebar_links(browser, url: str, path: str) -> list[str]:
    """The sidebar navigation of ``url/path`` opened in a fresh browser session."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{url}/{path}")
        _settle(page)
        links = page.locator("[data-testid='stSidebarNav'] a")
        links.first.wait_for(timeout=60_000)
        return [text.strip().splitlines()[-1] for text in links.all_inner_texts()]  # after the icon's ligature
    finally:
        context.close()


def test_upload_score_and_explore_in_chromium(explorer) -> None:
    from playwright.sync_api import sync_playwright

    from ecva_apps.explorer import PAGES

    url, home = explorer
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        titles = [title for _, title, _, _ in PAGES]
        for _, _, path, _ in PAGES:  # a link opened directly shows the titled navigation, not file names
            assert _sidebar_links(browser, url, path) == titles, path
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            _go(page, url, "", "Leaderboard")
            page.screenshot(path=str(SHOTS / "1-leaderboard.png"), full_page=True)

            demo_file = home / "demo" / "submissions" / "demo-strong.json"
            upload = home.parent / "browser-upload.json"
            upload.write_text(json.dumps(json.loads(demo_file.read_text())[:-3]))
            _go(page, url, "submit", "Submit a model")
            page.get_by_label("Model name").fill("Browser-VLM")
            page.get_by_label("Model name").press("Enter")
            _settle(page)
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(upload))
            page.get_by_text("Validation report").wait_for(timeout=60_000)
            _settle(page)
            page.get_by_text("will make about").wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "5-submit-report.png"), full_page=True)
            page.get_by_role("button", name="Score").click()
            page.get_by_text("Scored Browser-VLM").wait_for(timeout=300_000)
            _settle(page)
            page.screenshot(path=str(SHOTS / "5-submit-scored.png"), full_page=True)

            page.get_by_role("link", name="Open the leaderboard").click()
            _settle(page)
            page.get_by_role("heading", name="Leaderboard").first.wait_for(timeout=60_000)
            _settle(page)
            page.get_by_text("AnomEval pillars").wait_for(timeout=60_000)
            assert page.get_by_text("Pillar scores need the judge").count() == 0
            grid = page.locator("[data-testid='stDataFrame']").first
            grid.wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "1-leaderboard-after-upload.png"), full_page=True)
            assert grid.get_by_text("Browser-VLM").count() > 0 or page.get_by_text("Browser-VLM").count() > 0

            page.get_by_label("Model", exact=True).click()
            page.get_by_role("option", name="Browser-VLM").click()
            _settle(page)
            page.get_by_role("button", name="Open its questions").click()
            page.get_by_role("heading", name="Question explorer").first.wait_for(timeout=60_000)
            _settle(page)
            page.get_by_text("Model answers").wait_for(timeout=60_000)
            assert page.get_by_text("Browser-VLM").count() > 0
            page.screenshot(path=str(SHOTS / "3-questions.png"), full_page=True)

            for path, title, shot in (
                ("breakdown", "Breakdown", "2-breakdown.png"),
                ("compare", "Compare two models", "4-compare.png"),
                ("dataset", "Dataset", "6-dataset.png"),
            ):
                _go(page, url, path, title)
                page.screenshot(path=str(SHOTS / shot), full_page=True)
                assert page.locator("[data-testid='stException']").count() == 0

            _go(page, url, "breakdown", "Breakdown")
            cell = page.locator(".js-plotly-plot path.point").first
            cell.wait_for(timeout=60_000)
            box = cell.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.get_by_role("heading", name="Question explorer").first.wait_for(timeout=60_000)
            _settle(page)
            page.screenshot(path=str(SHOTS / "2-breakdown-cell-opened.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
