"""The judge cache: re-runs cost nothing, interrupted runs resume, a new judge model re-scores,
the API key is never written, and a run killed with SIGKILL loses nothing it finished."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ecva_core.config import Settings
from ecva_core.errors import JudgeError
from ecva_core.metrics.judge import JudgeCache, JudgeRequest, RetryPolicy, run_judges
from ecva_core.metrics.judge.cache import cache_key
from ecva_core.schema import ScoreStatus, Task
from tests.openai_stub import OpenAIStub, Reply, answer_contains

REPO_ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-cache-test-KEY-77d1e0"
FAST = RetryPolicy(base_s=0.001, max_s=0.005)


def settings_for(stub: OpenAIStub, home: Path, **overrides) -> Settings:
    values = {
        "home": home,
        "judge_base_url": stub.base_url,
        "judge_api_key": KEY,
        "judge_model": "judge-a",
        "judge_concurrency": 4,
        "judge_timeout_s": 2.0,
        "judge_max_retries": 0,
    }
    values.update(overrides)
    return Settings(**values)


def make_requests(n: int) -> list[JudgeRequest]:
    judges = ("consistency", "logic", "keyphrase")
    return [
        JudgeRequest(
            judges[i % 3],
            str(i // 3),
            Task.CAUSE,
            "Why did it happen?",
            "The driver ran a red light.",
            f"The driver ignored the signal ({i}).",
            ("ran a red light", "driver"),
        )
        for i in range(n)
    ]


def test_rerun_makes_zero_calls(tmp_path) -> None:
    with OpenAIStub() as stub:
        settings = settings_for(stub, tmp_path)
        reqs = make_requests(12)
        first = run_judges(reqs, settings, JudgeCache(tmp_path / "results.db"), retry=FAST)
        assert first.calls_made == 12 and first.cache_hits == 0
        again = run_judges(reqs, settings, JudgeCache(tmp_path / "results.db"), retry=FAST)
    assert stub.calls == 12
    assert again.calls_made == 0 and again.cache_hits == 12 and again.tokens_in == 0
    assert [r.value for r in again.results] == [r.value for r in first.results]
    assert all(r.cached for r in again.results) and not any(r.cached for r in first.results)


def test_interrupted_run_resumes_with_only_the_missing_calls(tmp_path) -> None:
    with OpenAIStub() as stub:
        settings = settings_for(stub, tmp_path)
        reqs = make_requests(12)
        for i in (2, 5, 7):
            stub.add_rule(answer_contains(f"({i})"), Reply.error(503), times=1)
        first = run_judges(reqs, settings, JudgeCache(tmp_path / "results.db"), retry=FAST)
        assert first.failed == 3 and first.scored == 9
        stub.reset_counts()
        resumed = run_judges(reqs, settings, JudgeCache(tmp_path / "results.db"), retry=FAST)
        assert stub.calls == 3 and resumed.calls_made == 3
        assert resumed.cache_hits == 9 and resumed.scored == 12
        sent = sorted(rec.body["messages"][1]["content"].split("(")[-1].split(")")[0] for rec in stub.requests)
        assert sent == ["2", "5", "7"]


def test_changing_the_judge_model_or_prompt_version_rescores(tmp_path) -> None:
    with OpenAIStub() as stub:
        reqs = make_requests(6)
        cache = JudgeCache(tmp_path / "results.db")
        run_judges(reqs, settings_for(stub, tmp_path), cache, retry=FAST)
        stub.reset_counts()
        other = run_judges(reqs, settings_for(stub, tmp_path, judge_model="judge-b"), cache, retry=FAST)
        assert other.calls_made == 6 and stub.calls == 6
        assert {rec.body["model"] for rec in stub.requests} == {"judge-b"}
        assert cache.count() == 12
        stub.reset_counts()
        assert run_judges(reqs, settings_for(stub, tmp_path), cache, retry=FAST).calls_made == 0
    inputs = {"answer": "x"}
    assert cache_key("logic-v1", "m", "logic", inputs) != cache_key("logic-v2", "m", "logic", inputs)
    assert cache_key("logic-v1", "m", "logic", inputs) != cache_key("logic-v1", "m", "consistency", inputs)


def test_api_key_is_never_written_to_the_database_or_logs(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with OpenAIStub() as stub:
        stub.add_rule(answer_contains("(1)"), Reply.error(400, message=f"bad request for key {KEY}"))
        stub.add_rule(answer_contains("(2)"), Reply.error(500, message=f"upstream saw {KEY}"))
        settings = settings_for(stub, tmp_path, judge_max_retries=1)
        db = tmp_path / "results.db"
        cache = JudgeCache(db)
        run = run_judges(make_requests(6), settings, cache, retry=FAST)
        cache.close()
    reasons = " ".join(r.reason for r in run.results)
    assert run.failed == 2 and "[redacted]" in reasons and KEY not in reasons
    assert KEY not in caplog.text and KEY not in repr(settings)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_cache_is_shared_with_other_tables_and_connections(tmp_path) -> None:
    db = tmp_path / "results.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE models (name TEXT)")
    with OpenAIStub() as stub:
        run_judges(make_requests(3), settings_for(stub, tmp_path), JudgeCache(db), retry=FAST)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT judge, judge_model, prompt_version, score, value FROM judge_cache").fetchall()
    assert sorted(r[0] for r in rows) == ["consistency", "keyphrase", "logic"]
    assert {r[1] for r in rows} == {"judge-a"} and all(r[2].endswith("-v1") for r in rows)


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ecva_core.config import Settings
    from ecva_core.metrics.judge import JudgeCache, run_judges
    from tests.test_judge_cache import make_requests

    url, db = sys.argv[1], Path(sys.argv[2])
    settings = Settings(home=db.parent, judge_base_url=url, judge_api_key="k", judge_model="judge-a",
                        judge_concurrency=2, judge_timeout_s=10.0, judge_max_retries=0)
    run_judges(make_requests(int(sys.argv[3])), settings, JudgeCache(db))
    """
)


def test_kill_9_mid_run_loses_nothing_finished(tmp_path) -> None:
    total = 30
    db = tmp_path / "results.db"
    with OpenAIStub(default=Reply.verdict(latency_s=0.1)) as stub:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, stub.base_url, str(db), str(total)], cwd=REPO_ROOT)
        try:
            deadline = time.monotonic() + 120
            done = 0
            while done < 6 and time.monotonic() < deadline and child.poll() is None:
                time.sleep(0.02)
                if db.exists():
                    done = _rows(db)
            assert child.poll() is None, "the child finished before it could be killed"
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == -signal.SIGKILL
        finished = _rows(db)
        assert 6 <= finished < total
        stub.reset_counts()
        settings = settings_for(stub, tmp_path, judge_concurrency=8)
        resumed = run_judges(make_requests(total), settings, JudgeCache(db), retry=FAST)
    assert stub.calls == total - finished
    assert resumed.cache_hits == finished and resumed.scored == total
    assert all(r.status is ScoreStatus.OK for r in resumed.results)


def _rows(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_unusable_cache_file_is_a_user_error(tmp_path) -> None:
    bad = tmp_path / "results.db"
    bad.write_bytes(b"this is not a SQLite database" * 100)
    with pytest.raises(JudgeError, match="judge cache"):
        JudgeCache(bad)
