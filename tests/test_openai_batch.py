"""The openai backend's batch path (``answer_outcomes``) against the loopback server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecva_core.models import load_model
from ecva_core.models.base import BatchRequest
from ecva_core.video import sample_frames
from tests.openai_stub import OpenAIStub, Reply


@pytest.fixture(scope="module")
def frames(demo_dataset_dir: Path):
    return sample_frames(demo_dataset_dir / "videos" / "00001.mp4", num_frames=4)


def test_a_batch_is_sent_together_within_the_concurrency_bound(frames) -> None:
    with OpenAIStub(Reply.verdict(latency_s=0.1)) as stub:
        model = load_model(f"openai:m@{stub.base_url}", max_concurrency=3)
        outcomes = model.answer_outcomes([BatchRequest(frames, f"question {i}") for i in range(7)])
        assert all(isinstance(o, str) and o.startswith("4 frames over") for o in outcomes)
        assert sorted(r.prompt_text for r in stub.requests) == sorted(f"question {i}" for i in range(7))
        assert stub.max_in_flight == 3


def test_retryable_errors_are_retried_and_a_lasting_one_fails_alone(frames) -> None:
    with OpenAIStub() as stub:
        model = load_model(f"openai:m@{stub.base_url}", max_concurrency=1, max_retries=1)
        stub.enqueue(Reply.error(503, retry_after="0"))
        (first,) = model.answer_outcomes([BatchRequest(frames, "first")])
        assert isinstance(first, str) and stub.calls == 2  # a 503, then the answer
        stub.add_rule(lambda body: "doomed" in str(body), Reply.error(500, message="engine crashed"))
        good, bad = model.answer_outcomes([BatchRequest(frames, "fine"), BatchRequest(frames, "doomed")])
        assert isinstance(good, str) and isinstance(bad, Exception)
        assert "500" in str(bad) and "engine crashed" in str(bad) and "gave up after 2 attempts" in str(bad)
        with pytest.raises(Exception, match="engine crashed"):
            model.answer_batch([BatchRequest(frames, "doomed")])


def test_an_unreachable_server_is_a_per_request_failure(frames) -> None:
    model = load_model("openai:m@http://127.0.0.1:9/v1", max_retries=0)
    (outcome,) = model.answer_outcomes([BatchRequest(frames, "anyone there?")])
    assert isinstance(outcome, Exception) and "cannot reach the chat server" in str(outcome)
