"""The explorer served on every interface (``--address 0.0.0.0``) without a submit token.

A real headless Chromium sees the Submit page read-only, saying why; the running server refuses an
upload over the size limit from its headers, before the body is read.
"""

from __future__ import annotations

import http.client
import os
import select
import shutil
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser import launch_chromium
from tests.test_explorer_browser import _go, _wait_http

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "test-output" / "explorer"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


TOKEN = "browser-lab-token"


@contextmanager
def _serve_shared(home: Path, demo: Path, token: str | None) -> Iterator[tuple[str, int]]:
    """``ecva serve explorer --address 0.0.0.0`` on a plain copy of the demo data, with or without a token."""
    data = home.parent / "plain-dataset"
    data.mkdir(exist_ok=True)
    shutil.copy(demo / "annotations.csv", data / "annotations.csv")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ECVA_SUBMIT_TOKEN"}
    env.update(ECVA_HOME=str(home), ECVA_MAX_SUBMISSION_MB="2", **({"ECVA_SUBMIT_TOKEN": token} if token else {}))
    log = (home.parent / "explorer.log").open("w")
    command = [sys.executable, "-m", "ecva_core.cli.main", "serve", "explorer", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--address", "0.0.0.0", "--data", str(data)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, proc)
        yield url, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def shared_explorer(isolated_home: Path, demo_dataset_dir: Path) -> Iterator[tuple[str, int]]:
    with _serve_shared(isolated_home, demo_dataset_dir, None) as served:
        yield served


@pytest.fixture
def shared_explorer_with_token(isolated_home: Path, demo_dataset_dir: Path) -> Iterator[tuple[str, int]]:
    with _serve_shared(isolated_home, demo_dataset_dir, TOKEN) as served:
        yield served


def test_shared_without_a_token_the_submit_page_is_read_only(shared_explorer) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = shared_explorer
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            _go(page, url, "submit", "Submit a model")
            page.get_by_text("the Submit page is read-only").wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / "7-submit-read-only.png"), full_page=True)
            assert page.get_by_text("ECVA_SUBMIT_TOKEN").count() > 0
            assert page.locator("[data-testid='stFileUploaderDropzoneInput']").count() == 0
            assert page.get_by_label("Submit token").count() == 0
            assert page.locator("[data-testid='stException']").count() == 0
        finally:
            browser.close()
    assert not errors, errors


def _stream_upload(url: str, total: int, xsrf: str) -> tuple[int, int]:
    """PUT ``total`` bytes to ``url`` in 1 MB chunks, stopping once the server answers; (bytes sent, status)."""
    parts = urllib.parse.urlsplit(url)
    chunk = b" " * (1 << 20)
    sent = 0
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("PUT", parts.path)
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(total))
    conn.putheader("X-Xsrftoken", xsrf)
    conn.putheader("Cookie", f"_streamlit_xsrf={xsrf}")
    conn.endheaders()
    try:
        while sent < total and not select.select([conn.sock], [], [], 0.05)[0]:
            conn.send(chunk)
            sent += len(chunk)
    except OSError:
        pass  # the server closed the connection: it will not read the rest
    status = conn.getresponse().status
    conn.close()
    return sent, status


def test_with_the_token_uploads_work_and_a_200_mb_one_is_refused_unread(
    shared_explorer_with_token, tmp_path: Path
) -> None:
    """The browser's own upload names its live session; a 200 MB body sent there is refused from its header."""
    from playwright.sync_api import sync_playwright

    url, _ = shared_explorer_with_token
    small = tmp_path / "answers.json"
    small.write_text("[]")
    uploads: list[str] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.on("request", lambda r: uploads.append(r.url) if "/_stcore/upload_file/" in r.url else None)
        try:
            _go(page, url, "submit", "Submit a model")
            assert page.locator("[data-testid='stFileUploaderDropzoneInput']").count() == 0
            page.get_by_label("Submit token").fill(TOKEN)
            page.get_by_label("Submit token").press("Enter")
            page.locator("[data-testid='stFileUploaderDropzoneInput']").wait_for(state="attached", timeout=60_000)
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(small))
            page.get_by_text("Validation report").wait_for(timeout=60_000)
            xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_streamlit_xsrf")
            assert uploads, "the browser never uploaded"
            total = 200 * 1024 * 1024
            sent, status = _stream_upload(uploads[0], total, xsrf)
            assert status == 413 and sent < total // 2, (sent, status)
        finally:
            browser.close()
