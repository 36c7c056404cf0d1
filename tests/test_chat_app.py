"""The Gradio chat app end to end: a launched app, driven through gradio_client and a real browser,
answering with the openai backend against a loopback OpenAI-compatible server."""

from __future__ import annotations

import re
import socket
import sqlite3
from pathlib import Path

import pytest

from ecva_core.dataset import browse, load_dataset
from ecva_core.models import session
from ecva_core.schema import Task
from tests.browser import launch_chromium
from tests.openai_stub import OpenAIStub, Reply

ANSWER = "A car ran the red light and hit another car, so both cars were damaged."


def _text(content: object) -> str:
    """Gradio's client hands message content back as a list of typed parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_dataset(demo_dataset_dir: Path):
    return load_dataset(demo_dataset_dir)


@pytest.fixture
def vlm_stub():
    with OpenAIStub(default=Reply.verdict(content=ANSWER)) as stub:
        yield stub


@pytest.fixture
def running_app(demo_dataset, vlm_stub):
    from ecva_apps.chat_app import build_app

    app = build_app(demo_dataset, f"openai:stub-vlm@{vlm_stub.base_url}")
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", demo_dataset
    finally:
        app.close()


def test_find_clips_filters_by_text_and_category(demo_dataset):
    everything = browse.find_clips(demo_dataset)
    assert len(everything) >= 12
    fire = browse.find_clips(demo_dataset, "fire")
    assert fire and len(fire) < len(everything)
    category = everything[0].category
    same = browse.find_clips(demo_dataset, category=category.split(" ")[0])
    assert all(entry.category == category for entry in same) or same


def test_score_answer_without_judge_says_so(demo_dataset):
    video_id = next(iter(demo_dataset.records))
    item = demo_dataset.qa_item(video_id, Task.CAUSE)
    good = session.score_answer(item.answer, demo_dataset, video_id, Task.CAUSE)
    bad = session.score_answer("Nothing unusual happens.", demo_dataset, video_id, Task.CAUSE)
    assert good.metrics["rougeL"] == pytest.approx(1.0)
    assert bad.metrics["rougeL"] < good.metrics["rougeL"]
    assert good.judge == {} and "no judge configured" in good.judge_status


def test_model_slot_without_spec_explains_what_to_configure():
    slot = session.ModelSlot(None)
    assert "openai:MODEL@" in (slot.error or "")


def test_serve_chat_fast_decode_reaches_the_model_loader(monkeypatch):
    from click.testing import CliRunner

    import ecva_apps.chat_app as chat_app
    from ecva_core.cli.main import cli

    launched: list[dict] = []
    monkeypatch.setattr(chat_app, "launch", lambda *args, **kwargs: launched.append(kwargs))
    loaded: list[dict] = []
    monkeypatch.setattr("ecva_core.models.load_model", lambda spec, **options: loaded.append(options) or spec)
    result = CliRunner().invoke(cli, ["serve", "chat", "--model", "hf:tiny", "--fast-decode", "--port", "0"])
    assert result.exit_code == 0, result.output
    options = launched[0]["model_options"]
    assert options == {"static_cache": True}
    assert session.ModelSlot("hf:tiny", options).get() == "hf:tiny" and loaded == [{"static_cache": True}]


def test_pick_ask_why_stream_and_score_through_gradio_client(running_app, vlm_stub):
    from gradio_client import Client

    url, dataset = running_app
    video_id = next(iter(dataset.records))
    client = Client(url, verbose=False)
    client.predict(video_id, False, api_name="/pick")
    history = client.predict([], api_name="/ask_why")  # the task goes to session state, not the client
    assert _text(history[-1]["content"]) == browse.benchmark_question(Task.CAUSE)

    job = client.submit(history, f"openai:stub-vlm@{vlm_stub.base_url}", api_name="/respond")
    updates = list(job)
    final_history = job.outputs()[-1][0]
    assert _text(final_history[-1]["content"]) == ANSWER
    assert len(updates) >= 2, "the answer should arrive as a stream of updates"

    sent = vlm_stub.requests[-1].body
    images = [
        p
        for m in sent["messages"]
        for p in (m["content"] if isinstance(m["content"], list) else [])
        if p.get("type") == "image_url"
    ]
    assert len(images) == 16, "the backend should send the 16 sampled frames"

    scored = client.predict(final_history, api_name="/score")
    assert "Why answer vs the expert answer" in scored
    assert "no judge configured" in scored


def test_app_opens_without_a_model_and_says_what_to_configure(demo_dataset):
    from gradio_client import Client

    from ecva_apps.chat_app import build_app

    app = build_app(demo_dataset, None)
    port = _free_port()
    app.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(next(iter(demo_dataset.records)), False, api_name="/pick")
        history = client.predict([], api_name="/ask_what")
        job = client.submit(history, "", api_name="/respond")
        final_history = job.result()[0]
        reply = _text(final_history[-1]["content"])
        assert "No chat model is configured" in reply
        assert "Traceback" not in reply
    finally:
        app.close()


@pytest.mark.browser
def test_browser_conversation_screenshot(running_app):
    from playwright.sync_api import sync_playwright

    url, _ = running_app
    out = Path(__file__).resolve().parents[1] / "test-output"
    out.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        picker = page.get_by_label("Clip", exact=True)
        picker.click()
        page.get_by_role("option").first.click()
        send = page.get_by_role("button", name="Send")
        send.wait_for(state="visible")
        page.wait_for_function("() => !document.querySelector('button.primary[disabled]')", timeout=60_000)
        page.get_by_role("button", name="Why?").click()
        page.get_by_text(ANSWER).wait_for(timeout=60_000)
        page.get_by_role("button", name="Score it").click()
        verdict = page.get_by_text("Why answer vs the expert answer")
        verdict.wait_for(timeout=60_000)
        page.screenshot(path=str(out / "chat_conversation.png"), full_page=True)
        shown = verdict.locator("xpath=..").inner_text()  # the heading's paragraph holds the metrics
        answers = page.get_by_text(ANSWER).count()
        browser.close()
    assert answers >= 1  # the streamed answer stays in the conversation after scoring
    assert re.search(r"\b\w+ \d\.\d{3}\b", shown), shown  # the text metrics as numbers, not n/a


def test_status_says_when_fast_decoding_fell_back(monkeypatch, demo_dataset):
    import ecva_apps.chat_app as chat_app

    class Loaded:
        decoder_error = "RuntimeError: no working C compiler"

    monkeypatch.setattr("ecva_core.models.load_model", lambda spec, **options: Loaded())
    app = chat_app.ChatApp(demo_dataset, "anomshield:/ckpt", {"static_cache": True})
    app.models.get()
    status = app.model_status()
    assert "(loaded)" in status and "fast decoding is off (RuntimeError: no working C compiler)" in status
    Loaded.decoder_error = None
    assert "fast decoding" not in app.model_status()


def test_score_answer_judges_through_the_scoring_engine_and_closes_its_cache(demo_dataset, tmp_path, monkeypatch):
    from dataclasses import replace

    from ecva_core.config import get_settings
    from ecva_core.metrics import judge

    opened = []

    class RecordedCache(judge.JudgeCache):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(judge, "JudgeCache", RecordedCache)
    video_id = next(iter(demo_dataset.records))
    item = demo_dataset.qa_item(video_id, Task.CAUSE)
    with OpenAIStub() as stub:
        settings = replace(
            get_settings(), judge_base_url=stub.base_url, judge_api_key="k", judge_max_retries=1,
            db_path=tmp_path / "r.db",
        )
        scored = session.score_answer(item.answer, demo_dataset, video_id, Task.CAUSE, settings)
        again = session.score_answer(item.answer, demo_dataset, video_id, Task.CAUSE, settings)
        calls = stub.calls
    assert set(scored.judge) == {"judge_consistency", "judge_logic", "judge_keyphrase"}
    assert scored.judge["judge_consistency"]["status"] == "ok" and again.judge == scored.judge
    assert calls == 3  # the second answer's verdicts came from the judge cache
    assert len(opened) == 2
    for cache in opened:
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            cache._conn.execute("SELECT 1")
