"""The judge engine against a real loopback HTTP server: verdicts, retries, failures, bounds."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from ecva_core.config import Settings
from ecva_core.errors import JudgeError
from ecva_core.metrics.judge import (
    JudgeCache,
    JudgeRequest,
    RetryPolicy,
    plan_judges,
    requests_for,
    run_judges,
)
from ecva_core.metrics.judge.engine import request_key
from ecva_core.metrics.judge.prompts import prompt_for
from ecva_core.schema import Prediction, PredictionStatus, QAItem, ScoreStatus, Task
from tests.official_checkout import FAKE_PROMPTS
from tests.openai_stub import OpenAIStub, Reply, answer_contains

KEY = "sk-test-SECRET-4f2a9c"
FAST = RetryPolicy(base_s=0.001, max_s=0.005)


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def settings_for(stub: OpenAIStub, tmp_path: Path, **overrides) -> Settings:
    values = {
        "home": tmp_path,
        "judge_base_url": stub.base_url,
        "judge_api_key": KEY,
        "judge_model": "stub-judge",
        "judge_concurrency": 4,
        "judge_timeout_s": 2.0,
        "judge_max_retries": 2,
    }
    values.update(overrides)
    return Settings(**values)


def request(judge: str = "consistency", answer: str = "a red car hits a cyclist", **kw) -> JudgeRequest:
    fields = {
        "judge": judge,
        "video_id": kw.pop("video_id", "1"),
        "task": kw.pop("task", Task.DESCRIPTION),
        "question": "What happened in the video?",
        "reference": "A red car hits a cyclist at the crossing.",
        "answer": answer,
        "key_phrases": ("red car", "hits a cyclist", "at the crossing", "cyclist falls"),
        "probe": "no_keyframes" if judge == "hallucination" else None,
    }
    fields.update(kw)
    return JudgeRequest(**fields)


def test_four_judges_score_and_store_their_metric_names(stub, tmp_path) -> None:
    reqs = [
        request("consistency"),
        request("logic"),
        request("keyphrase", answer="a red car hits a cyclist"),
        request("hallucination", answer="None, I cannot tell from this clip."),
        request("hallucination", answer="A car crashes into a wall.", video_id="2"),
    ]
    run = run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    by = [(r.request.metric, r.status, r.value) for r in run.results]
    assert by[0] == ("judge_consistency", ScoreStatus.OK, 1.0)
    assert by[1][0] == "judge_logic" and by[1][2] is not None and 0 <= by[1][2] <= 5
    assert by[2] == ("judge_keyphrase", ScoreStatus.OK, 0.5)  # 2 of the 4 annotated phrases
    assert by[3] == ("judge_hallucination", ScoreStatus.OK, 1.0)
    assert by[4] == ("judge_hallucination", ScoreStatus.OK, 0.0)
    assert run.calls_made == 5 and run.failed == 0
    score = run.results[2].to_score()
    assert (score.metric, score.value, score.task, score.status) == ("judge_keyphrase", 0.5, Task.DESCRIPTION, "ok")


def test_every_request_is_temperature_zero_json_mode_and_key_only_in_authorization(stub, tmp_path) -> None:
    reqs = [request(j) for j in ("consistency", "logic", "keyphrase")]
    run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert len(stub.requests) == 3
    for rec in stub.requests:
        assert rec.path == "/v1/chat/completions"
        assert rec.body["temperature"] == 0
        assert rec.body["model"] == "stub-judge"
        assert rec.body["response_format"] == {"type": "json_object"}
        headers = {k.lower(): v for k, v in rec.headers.items()}
        assert headers["authorization"] == f"Bearer {KEY}"
        others = [v for k, v in headers.items() if k != "authorization"]
        assert not any(KEY in v for v in others)
        assert KEY.encode() not in rec.raw and KEY not in rec.path


def test_error_and_empty_predictions_are_never_sent(stub, tmp_path) -> None:
    items = [
        QAItem("1", Task.DESCRIPTION, "What?", "A car hits a cyclist.", ("car", "cyclist")),
        QAItem("1", Task.CAUSE, "Why?", "The car ran a red light.", ("red light",)),
        QAItem("2", Task.RESULT, "How?", "The cyclist is injured.", ()),
        QAItem("2", Task.CLASSIFICATION, "Which class?", "[5-1]", ()),
    ]
    preds = [
        Prediction("1", Task.DESCRIPTION, "A car hits someone on a bike."),
        Prediction("1", Task.CAUSE, "ERROR", status=PredictionStatus.ERROR),
        Prediction("2", Task.RESULT, "   ", status=PredictionStatus.EMPTY),
        Prediction("2", Task.RESULT, "I cannot tell.", probe="no_keyframes"),
        Prediction("2", Task.CLASSIFICATION, "[5-1]"),
        Prediction("9", Task.DESCRIPTION, "no such video"),
    ]
    reqs = requests_for(preds, items)
    assert [(r.video_id, r.task, r.judge) for r in reqs] == [
        ("1", Task.DESCRIPTION, "consistency"),
        ("1", Task.DESCRIPTION, "logic"),
        ("1", Task.DESCRIPTION, "keyphrase"),
        ("2", Task.RESULT, "hallucination"),
    ]
    # the engine double-checks what a caller might still pass
    reqs += [request("logic", answer="ERROR", video_id="3"), request("consistency", answer=" ", video_id="4")]
    reqs += [request("keyphrase", key_phrases=(), video_id="5")]
    run = run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert stub.calls == 4
    sent = " ".join(m["content"] for rec in stub.requests for m in rec.body["messages"])
    assert '"ERROR"' not in sent
    skipped = [r for r in run.results if r.status is ScoreStatus.SKIPPED]
    assert [r.request.video_id for r in skipped] == ["3", "4", "5"]
    assert all(r.value is None and r.reason for r in skipped)
    assert "no annotated key phrases" in skipped[2].reason


def test_latency_and_concurrency_bound(tmp_path) -> None:
    with OpenAIStub(default=Reply.verdict(latency_s=0.03)) as stub:
        reqs = [request("consistency", answer=f"answer {i}", video_id=str(i)) for i in range(24)]
        settings = settings_for(stub, tmp_path, judge_concurrency=3)
        seen: list[tuple[int, int]] = []
        run = run_judges(reqs, settings, JudgeCache(tmp_path / "r.db"), lambda d, t: seen.append((d, t)), retry=FAST)
    assert run.scored == 24 and stub.calls == 24
    assert 1 < stub.max_in_flight <= 3
    assert seen[-1] == (24, 24) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_429_with_retry_after_is_honoured_then_succeeds(stub, tmp_path) -> None:
    stub.enqueue(Reply.error(429, retry_after="1"))
    run = run_judges([request()], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.results[0].status is ScoreStatus.OK
    first, second = stub.requests
    assert second.received_at - first.received_at >= 0.9  # waited as asked, not the 1 ms backoff
    assert run.calls_made == 2 and run.retries == 1


def test_500_then_success(stub, tmp_path) -> None:
    stub.enqueue(Reply.error(500), Reply.error(503))
    run = run_judges([request()], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.results[0].status is ScoreStatus.OK and run.results[0].value == 1.0
    assert stub.calls == 3 and run.retries == 2


def test_timeout_retries_then_failure_is_a_state_not_a_score(tmp_path) -> None:
    with OpenAIStub(default=Reply.hang(1.0)) as stub:
        settings = settings_for(stub, tmp_path, judge_timeout_s=0.2, judge_max_retries=2)
        cache = JudgeCache(tmp_path / "r.db")
        run = run_judges([request()], settings, cache, retry=FAST)
        result = run.results[0]
        assert result.status is ScoreStatus.FAILED and result.value is None
        assert "timed out" in result.reason and "3 attempts" in result.reason
        assert stub.calls == 3
        assert cache.count() == 0  # failures are never cached


def test_persistent_5xx_gives_up_after_max_retries(tmp_path) -> None:
    with OpenAIStub(default=Reply.error(502)) as stub:
        run = run_judges(
            [request()], settings_for(stub, tmp_path, judge_max_retries=3), JudgeCache(tmp_path / "r.db"), retry=FAST
        )
    assert run.results[0].status is ScoreStatus.FAILED and "HTTP 502" in run.results[0].reason
    assert stub.calls == 4


def test_other_4xx_fail_at_once(stub, tmp_path) -> None:
    stub.enqueue(Reply.error(404, message="model stub-judge does not exist"))
    run = run_judges([request()], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.results[0].status is ScoreStatus.FAILED
    assert "HTTP 404" in run.results[0].reason and "does not exist" in run.results[0].reason
    assert stub.calls == 1


def test_rejected_key_stops_further_calls(tmp_path) -> None:
    with OpenAIStub(default=Reply.error(401, message="invalid api key")) as stub:
        reqs = [request(answer=f"answer {i}", video_id=str(i)) for i in range(6)]
        run = run_judges(
            reqs, settings_for(stub, tmp_path, judge_concurrency=1), JudgeCache(tmp_path / "r.db"), retry=FAST
        )
    assert stub.calls == 1
    assert all(r.status is ScoreStatus.FAILED and "HTTP 401" in r.reason for r in run.results)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply.malformed(), "malformed response"),
        (Reply.verdict(content='{"score": 7, "reason": "too high"}'), "out of range"),
        (Reply.verdict(content='{"verdict": "same event"}'), "no score"),
        (Reply.verdict(content="The answer looks right to me."), "no score"),
    ],
)
def test_malformed_and_schema_violating_replies_are_failures(stub, tmp_path, reply, problem) -> None:
    stub.add_rule(answer_contains("BROKEN"), reply)
    reqs = [request("logic", answer="BROKEN answer"), request("logic", answer="fine answer", video_id="2")]
    cache = JudgeCache(tmp_path / "r.db")
    run = run_judges(reqs, settings_for(stub, tmp_path), cache, retry=FAST)
    bad, good = run.results
    assert bad.status is ScoreStatus.FAILED and bad.value is None and problem in bad.reason
    assert good.status is ScoreStatus.OK
    assert run.failed == 1 and cache.count() == 1


def test_lenient_reply_is_accepted(stub, tmp_path) -> None:
    stub.set_default(Reply.verdict(content='```json\n{"score": 4, "reason": "mostly sound"}\n```'))
    run = run_judges([request("logic")], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert (run.results[0].value, run.results[0].reason) == (4.0, "mostly sound")


def test_server_without_json_mode_gets_plain_requests(tmp_path) -> None:
    with OpenAIStub(default=Reply.reject_json_mode()) as stub:
        reqs = [request(answer=f"answer {i}", video_id=str(i)) for i in range(3)]
        run = run_judges(
            reqs, settings_for(stub, tmp_path, judge_concurrency=1), JudgeCache(tmp_path / "r.db"), retry=FAST
        )
    assert run.scored == 3
    bodies = [rec.body for rec in stub.requests]
    assert "response_format" in bodies[0]
    assert all("response_format" not in b for b in bodies[1:]) and len(bodies) == 4


def test_identical_inputs_are_judged_once(stub, tmp_path) -> None:
    reqs = [request(video_id="1"), request(video_id="2")]
    run = run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert stub.calls == 1 and run.scored == 2
    assert [r.request.video_id for r in run.results] == ["1", "2"]


def test_tokens_cost_and_plan(stub, tmp_path) -> None:
    settings = settings_for(stub, tmp_path, judge_price_in_per_mtok=2.0, judge_price_out_per_mtok=8.0)
    cache = JudgeCache(tmp_path / "r.db")
    reqs = [request(j) for j in ("consistency", "logic", "keyphrase")] + [request(answer="ERROR")]
    plan = plan_judges(reqs, settings, cache)
    assert (plan.calls_needed, plan.cached, plan.skipped) == (3, 0, 1)
    assert plan.est_tokens > 0 and plan.est_cost == pytest.approx(
        (plan.est_tokens_in * 2.0 + plan.est_tokens_out * 8.0) / 1e6
    )
    run = run_judges(reqs, settings, cache, retry=FAST)
    assert run.tokens_in > 0 and run.tokens_out > 0
    assert run.cost == pytest.approx((run.tokens_in * 2.0 + run.tokens_out * 8.0) / 1e6)
    after = plan_judges(reqs, settings, cache)
    assert (after.calls_needed, after.cached, after.est_cost) == (0, 3, 0.0)


def test_no_judge_configured_is_a_user_error_only_when_calls_are_needed(stub, tmp_path) -> None:
    cache = JudgeCache(tmp_path / "r.db")
    run_judges([request()], settings_for(stub, tmp_path), cache, retry=FAST)
    bare = Settings(home=tmp_path, judge_model="stub-judge")
    assert run_judges([request()], bare, cache).cache_hits == 1
    with pytest.raises(JudgeError, match="no judge is configured"):
        run_judges([request(answer="another answer")], bare, cache)


def test_sync_entry_point_works_inside_a_running_loop_and_in_threads(stub, tmp_path) -> None:
    settings = settings_for(stub, tmp_path)
    cache = JudgeCache(tmp_path / "r.db")

    async def inside_loop():
        return run_judges([request(video_id="1", answer="x1")], settings, cache, retry=FAST)

    assert asyncio.run(inside_loop()).scored == 1
    out = {}
    worker = threading.Thread(target=lambda: out.update(run=run_judges([request(answer="x2")], settings, cache)))
    worker.start()
    worker.join(30)
    assert out["run"].scored == 1


def test_an_endpoint_that_never_answers_fails_the_rest_without_waiting(tmp_path) -> None:
    with OpenAIStub(default=Reply.hang(0.5)) as stub:
        reqs = [request(answer=f"answer {i}", video_id=str(i)) for i in range(5)]
        settings = settings_for(stub, tmp_path, judge_concurrency=1, judge_timeout_s=0.1, judge_max_retries=1)
        run = run_judges(reqs, settings, JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert stub.calls == 2
    assert run.failed == 5 and "timed out" in run.results[0].reason
    assert all("endpoint unusable" in r.reason for r in run.results[1:])


def test_refused_connections_are_failures_with_a_reason(tmp_path) -> None:
    stub = OpenAIStub()
    settings = settings_for(stub, tmp_path, judge_concurrency=1, judge_max_retries=1)
    stub.close()  # nothing listens on the port any more
    reqs = [request(answer=f"answer {i}", video_id=str(i)) for i in range(3)]
    run = run_judges(reqs, settings, JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.failed == 3 and run.calls_made == 0  # found before any call, one state for the whole run
    assert all(r.reason.startswith("judge unreachable") and "refused" in r.reason for r in run.results)


def test_calls_go_through_the_proxy_named_in_the_environment(stub, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{stub.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = settings_for(stub, tmp_path, judge_base_url="http://judge.invalid/v1")
    run = run_judges([request()], settings, JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.scored == 1
    (rec,) = stub.requests
    assert rec.path == "http://judge.invalid/v1/chat/completions"  # the absolute form a proxy receives
    assert {k.lower(): v for k, v in rec.headers.items()}["authorization"] == f"Bearer {KEY}"


def test_no_proxy_hosts_are_called_directly(stub, tmp_path, monkeypatch) -> None:
    dead = OpenAIStub()
    monkeypatch.setenv("HTTP_PROXY", dead.base_url.removesuffix("/v1"))
    dead.close()  # a proxy that would refuse every connection
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    run = run_judges([request()], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert run.scored == 1 and stub.requests[0].path == "/v1/chat/completions"


def test_many_more_requests_than_workers_all_complete_in_order(tmp_path) -> None:
    with OpenAIStub(default=Reply.verdict(latency_s=0.005)) as stub:
        reqs = [request("logic", answer=f"answer {i}", video_id=str(i)) for i in range(60)]
        run = run_judges(reqs, settings_for(stub, tmp_path, judge_concurrency=2), JudgeCache(tmp_path / "r.db"))
    assert run.scored == 60 and stub.calls == 60 and stub.max_in_flight <= 2
    assert [r.request.video_id for r in run.results] == [str(i) for i in range(60)]


def test_hallucination_judge_sees_the_probe_wording_the_model_was_asked(stub, tmp_path) -> None:
    probe_wording = "Describe the video. If you cannot answer, answer with one word None"
    items = [QAItem("1", Task.DESCRIPTION, "Describe the anomaly.", "A car hits a cyclist.", ("car",))]
    preds = [Prediction("1", Task.DESCRIPTION, "None", prompt=probe_wording, probe="no_keyframes")]
    (req,) = requests_for(preds, items)
    assert req.question == probe_wording
    run_judges([req], settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    user = stub.requests[0].body["messages"][1]["content"]
    assert probe_wording in user and "Describe the anomaly." not in user
    # a probe row without its prompt (older files) is judged with the benchmark's probe wording
    (bare,) = requests_for([Prediction("1", Task.DESCRIPTION, "None", probe="no_keyframes")], items)
    assert "answer with one word None" in bare.question


def test_pair_judge_compares_a_probe_answer_with_the_normal_answer(stub, tmp_path) -> None:
    items = [QAItem(v, Task.CAUSE, "Why?", "The car ran a red light.", ("red light",)) for v in ("1", "2", "3")]
    preds = [
        Prediction("1", Task.CAUSE, "The car ran a red light."),
        Prediction("1", Task.CAUSE, "The car ran a red light.", probe="no_keyframes"),
        Prediction("2", Task.CAUSE, "Speeding."),
        Prediction("2", Task.CAUSE, "None", probe="no_keyframes"),
        Prediction("3", Task.CAUSE, "Nothing is shown.", probe="no_keyframes"),  # no normal answer: no pair
    ]
    reqs = [r for r in requests_for(preds, items) if r.probe]
    assert [(r.video_id, r.judge) for r in reqs] == [
        ("1", "hallucination"), ("1", "hallucination_pair"), ("2", "hallucination"), ("2", "hallucination_pair"),
        ("3", "hallucination"),
    ]  # fmt: skip
    pair = reqs[1]
    expected = ("judge_hallucination_pair", preds[0].output, preds[1].output)
    assert (pair.metric, pair.normal_answer, pair.answer) == expected
    run = run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    values = {(r.request.video_id, r.request.judge): r.value for r in run.results}
    assert values[("1", "hallucination_pair")] == 0.0 and values[("2", "hallucination_pair")] == 1.0
    sent = [json.loads(rec.body["messages"][1]["content"]) for rec in stub.requests]
    assert sorted(set(s) for s in sent if "probe_answer" in s) == [{"question", "normal_answer", "probe_answer"}] * 2


def test_official_protocol_sends_the_official_prompts_without_json_mode(stub, tmp_path, official_repo) -> None:
    items = [QAItem("1", Task.DESCRIPTION, "What?", "A red car hits a cyclist.", ("red car", "cyclist falls"))]
    preds = [
        Prediction("1", Task.DESCRIPTION, "A red car hits a cyclist."),
        Prediction("1", Task.DESCRIPTION, "I can't infer anything.", probe="no_keyframes"),
    ]
    reqs = [r for r in requests_for(preds, items, protocol="official") if r.judge != "hallucination_pair"]
    run = run_judges(reqs, settings_for(stub, tmp_path), JudgeCache(tmp_path / "r.db"), retry=FAST)
    assert all("response_format" not in rec.body for rec in stub.requests)
    systems = {rec.body["messages"][0]["content"] for rec in stub.requests}
    assert systems == set(FAKE_PROMPTS.values())  # the checkout's texts, as read
    got = {r.request.judge: (r.status, r.value, prompt_for(r.request.judge, "official").version) for r in run.results}
    assert got["keyphrase"][:2] == (ScoreStatus.OK, 0.5)  # 1 of the judge's count of 2
    assert got["keyphrase"][2].startswith("official-v1-keyphrase-")
    assert got["consistency"][:2] == (ScoreStatus.OK, 1.0) and got["hallucination"][:2] == (ScoreStatus.OK, 1.0)
    # the same answers under the two protocols are different cache entries
    default = JudgeRequest(**{**reqs[0].__dict__, "protocol": "default"})
    assert request_key(reqs[0], "m") != request_key(default, "m")
