"""``--engine ray``: work items through a Ray Data actor pool on a local ``ray.init(num_cpus=2)``."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

from ecva_core.errors import ModelLoadError
from ecva_core.infer.items import ItemResult, WorkItem
from ecva_core.infer.ray_engine import pack_by_video, run_on_ray

UNANSWERABLE = "unanswerable"


def _items(videos: int, per_video: int) -> list[WorkItem]:
    return [WorkItem(key=f"v{v}-q{q}", video_id=f"v{v}", video_path=f"/data/v{v}.mp4", task="description",
                     variant="normal", prompt=f"question {q}", frame_indices=(0, 4, 8))
            for v in range(videos) for q in range(per_video)]


class EchoRunner:
    """Stands in for ItemRunner: answers with what it was asked and which call it was in.

    A packet holding the unanswerable prompt raises as a whole, as a model error would.
    """

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, items: list[WorkItem]) -> list[ItemResult]:
        self.calls += 1
        if any(item.prompt == UNANSWERABLE for item in items):
            raise ValueError("the model cannot answer this")
        call = f"{os.getpid()}-{self.calls}"
        return [ItemResult.answer(item, f"answer to {item.prompt} about {item.video_id}", [0.5, 1.5],
                                  {"call": call, "call_size": len(items)}) for item in items]


class TinyModelRunner:
    """A real tiny AnomShield in the actor: each video sampled once, its questions in one ``answer_batch``."""

    def __init__(self, checkpoint: str) -> None:
        from ecva_core.models import load_model

        self.model = load_model(f"anomshield:{checkpoint}", device="cpu", max_batch_size=4)

    def __call__(self, items: list[WorkItem]) -> list[ItemResult]:
        from ecva_core.models.base import BatchRequest

        clips = {item.video_path: self.model.clip(item.video_path).frames for item in items}
        answers = self.model.answer_batch([BatchRequest(clips[i.video_path], i.prompt) for i in items],
                                          max_new_tokens=8)
        return [ItemResult.answer(item, answer, clips[item.video_path].timestamps)
                for item, answer in zip(items, answers, strict=True)]


def _refusing_runner() -> EchoRunner:
    raise ModelLoadError("cannot load the tiny model: weights missing")


def test_packets_keep_a_video_together() -> None:
    items = _items(3, 3) + _items(1, 0)
    packets = pack_by_video(items, 4)
    assert [[i.key for i in p] for p in packets] == [["v0-q0", "v0-q1", "v0-q2"], ["v1-q0", "v1-q1", "v1-q2"],
                                                     ["v2-q0", "v2-q1", "v2-q2"]]
    long = pack_by_video(_items(1, 5) + _items(2, 1)[1:], 2)  # a video larger than a packet is split
    assert [len(p) for p in long] == [2, 2, 2] and long[2][1].video_id == "v1"
    assert pack_by_video([], 8) == []


def test_without_ray_installed_the_error_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from ecva_core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'ray\[data\]'"):
        list(run_on_ray(_items(1, 1), "test:echo", {}, {}, address=None, replicas=1, batch_size=1,
                        num_gpus_per_replica=0, runner_factory=EchoRunner))


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": os.getcwd()}})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_items_in_results_out_on_a_local_ray(local_ray) -> None:
    items = _items(5, 3)
    broken = WorkItem(key="v2-bad", video_id="v2", video_path="/data/v2.mp4", task="cause", variant="normal",
                      prompt=UNANSWERABLE, frame_indices=(1,))
    items.insert(7, broken)
    results = list(run_on_ray(items, "test:echo", {}, {"max_new_tokens": 8}, address=None, replicas=2,
                              batch_size=4, num_gpus_per_replica=0, runner_factory=EchoRunner))
    assert sorted(r.key for r in results) == sorted(i.key for i in items)  # one result per item
    by_key = {r.key: r for r in results}
    assert by_key["v2-bad"].error == "ValueError: the model cannot answer this" and by_key["v2-bad"].output is None
    good = [r for r in results if r.key != "v2-bad"]
    assert all(r.ok and r.output == f"answer to question {r.key[-1]} about {r.video_id}" for r in good)
    assert all(r.frames == [0.5, 1.5] and r.task == "description" for r in good)
    for video in ("v0", "v1", "v3", "v4"):  # each video answered in one call (its packet)
        calls = {r.extra["call"] for r in good if r.video_id == video}
        assert len(calls) == 1
    assert max(r.extra["call_size"] for r in good) > 1  # several items per call
    v2 = [r for r in good if r.video_id == "v2"]
    assert len(v2) == 3 and all(r.extra["call_size"] == 1 for r in v2)  # its packet failed: asked one by one

    with pytest.raises(ModelLoadError, match="weights missing"):
        list(run_on_ray(items[:2], "test:refuse", {}, {}, address=None, replicas=1, batch_size=2,
                        num_gpus_per_replica=0, runner_factory=_refusing_runner))


@pytest.mark.slow
def test_a_tiny_model_answers_on_ray_as_it_does_here(local_ray, tmp_path: Path) -> None:
    from tests.tiny_models import build_anomshield
    from tests.videogen import make_clip

    checkpoint = build_anomshield(tmp_path / "model").checkpoint
    items = []
    for index in range(2):
        path = tmp_path / f"0002{index}.mp4"
        make_clip(path, seconds=1.0, fps=16, width=48, height=32, noise=index == 1)
        items += [WorkItem(key=f"{index}-{q}", video_id=str(index), video_path=str(path), task="description",
                           variant="normal", prompt=question, frame_indices=())
                  for q, question in enumerate(["What happened?", "Why did the man fall in the street?"])]
    missing = WorkItem(key="gone", video_id="9", video_path=str(tmp_path / "gone.mp4"), task="cause",
                       variant="normal", prompt="What happened?", frame_indices=())
    factory = partial(TinyModelRunner, str(checkpoint))
    results = {r.key: r for r in run_on_ray([*items, missing], "anomshield:tiny", {}, {}, address=None, replicas=1,
                                            batch_size=4, num_gpus_per_replica=0, runner_factory=factory)}
    here = factory()(items)
    assert [results[r.key].output for r in here] == [r.output for r in here] and all(r.output for r in here)
    assert results["gone"].error and "not found" in results["gone"].error  # a missing video: an error row
