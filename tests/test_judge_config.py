"""When the judge is on, and what an unreachable judge costs: nothing but one connection attempt.

The judge counts as configured only through its own settings (ECVA_JUDGE_*) or an explicit
``--judge``; OPENAI_API_KEY alone (the key of the ``openai:`` chat backend) never turns it on.
An endpoint that cannot be reached is found before any call and reported once for the whole run.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ecva_core.config import OPENAI_BASE_URL, Settings, get_settings
from ecva_core.dataset import load_dataset
from ecva_core.metrics.judge import JudgeCache, JudgeRequest, run_judges
from ecva_core.results.db import ResultsDB
from ecva_core.schema import ScoreStatus, Task
from tests.openai_stub import OpenAIStub
from tests.submissions.tiny import answer_rows, write_tiny_annotations
from tests.test_cli_scoring import FAST, ecva


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _requests(n: int = 3) -> list[JudgeRequest]:
    return [
        JudgeRequest("consistency", str(i), Task.DESCRIPTION, "What happened?", "A car hits a cyclist.", f"answer {i}")
        for i in range(n)
    ]


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_openai_api_key_alone_does_not_turn_the_judge_on(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    settings = get_settings()
    assert not settings.judge_configured and not settings.judge_wanted()
    assert settings.judge_usable and settings.judge_wanted(True)  # an explicit --judge may use it
    assert settings.judge_endpoint == OPENAI_BASE_URL and settings.judge_key == "sk-local"
    assert "sk-local" not in repr(settings) and settings.public_dict()["openai_api_key_set"] is True

    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", "http://judge.lab:8000/v1")
    other = get_settings()
    assert other.judge_configured
    assert other.judge_key is None, "the OpenAI key must never be sent to another endpoint"
    monkeypatch.setenv("ECVA_JUDGE_API_KEY", "judge-key")
    assert get_settings().judge_key == "judge-key"


def test_judge_own_key_turns_it_on() -> None:
    assert Settings(home=Path("."), judge_api_key="k").judge_configured
    assert not Settings(home=Path("."), openai_api_key="k").judge_configured


def test_score_with_only_openai_key_scores_text_metrics_and_calls_nothing(tmp_path, monkeypatch) -> None:
    data = write_tiny_annotations(tmp_path / "tiny")
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answer_rows()), encoding="utf-8")
    proc = ecva(
        "score",
        str(path),
        "--model",
        "m",
        "--data",
        str(data),
        "--db",
        str(tmp_path / "r.db"),
        "--json",
        *FAST,
        env={"OPENAI_API_KEY": "sk-local"},
    )
    summary = json.loads(proc.stdout)
    assert summary["judge"]["status"] == "no judge configured"
    assert summary["overall"]["rougeL"] is not None


def test_refused_endpoint_is_one_unreachable_state_with_no_calls(tmp_path, no_proxy) -> None:
    settings = Settings(home=tmp_path, judge_base_url=_refused_url(), judge_api_key="k", judge_max_retries=6)
    seen: list[tuple[int, int]] = []
    run = run_judges(_requests(), settings, JudgeCache(tmp_path / "r.db"), progress=lambda d, t: seen.append((d, t)))
    assert run.calls_made == 0 and run.retries == 0
    assert run.unreachable is not None and run.unreachable.startswith("judge unreachable")
    assert "refused" in run.unreachable
    assert all(r.status is ScoreStatus.FAILED and r.reason == run.unreachable for r in run.results)
    assert seen[-1] == (3, 3)


def test_dns_failure_is_unreachable(tmp_path, no_proxy) -> None:
    settings = Settings(home=tmp_path, judge_base_url="http://judge.invalid/v1", judge_api_key="k")
    run = run_judges(_requests(2), settings, JudgeCache(tmp_path / "r.db"))
    assert run.calls_made == 0 and run.failed == 2
    assert "DNS lookup of judge.invalid failed" in (run.unreachable or "")


def test_reachable_endpoint_is_judged_as_before(tmp_path, no_proxy) -> None:
    with OpenAIStub() as stub:
        settings = Settings(home=tmp_path, judge_base_url=stub.base_url, judge_api_key="k")
        run = run_judges(_requests(2), settings, JudgeCache(tmp_path / "r.db"))
    assert run.unreachable is None and run.scored == 2 and stub.calls == 2


def test_score_cli_with_unreachable_judge_stores_text_scores_and_the_failure_state(tmp_path, no_proxy) -> None:
    data = write_tiny_annotations(tmp_path / "tiny")
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answer_rows()), encoding="utf-8")
    db = tmp_path / "r.db"
    env = {"ECVA_JUDGE_BASE_URL": _refused_url(), "ECVA_JUDGE_API_KEY": "k"}
    proc = ecva("score", str(path), "--model", "m", "--data", str(data), "--db", str(db), *FAST, env=env)
    assert "judge unreachable" in proc.stdout and "Traceback" not in proc.stderr
    frame = ResultsDB(db).scores_frame()
    judged = frame[frame["metric"].str.startswith("judge_")]
    assert len(judged) > 0 and set(judged["status"]) == {"failed"}
    assert judged["reason"].str.startswith("judge unreachable").all()
    assert frame[frame["metric"] == "rougeL"]["value"].notna().all()


@pytest.fixture(scope="module")
def demo(demo_dataset_dir: Path):
    return load_dataset(demo_dataset_dir)


def _scored_chat(demo) -> list[str]:
    from ecva_apps.chat_app import ChatApp

    app = ChatApp(demo, None)
    video_id = next(iter(demo.records))
    answer = demo.qa_item(video_id, Task.CAUSE).answer
    history = [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": answer}]
    return list(app.score(history, {"video_id": video_id}, Task.CAUSE.value))


def test_chat_app_score_it_with_only_openai_key_is_text_only(demo, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    (shown,) = _scored_chat(demo)
    assert "rougeL **1.000**" in shown and "no judge configured" in shown


def test_chat_app_score_it_shows_text_metrics_first_then_judge_unreachable(demo, monkeypatch, no_proxy) -> None:
    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", _refused_url())
    first, last = _scored_chat(demo)
    assert "rougeL **1.000**" in first and "asking the judge" in first
    assert "rougeL **1.000**" in last and "Judge: judge unreachable" in last
