"""``--engine ray``: work items through a Ray Data actor pool on a local ``ray.init(num_cpus=2)``."""

from __future__ import annotations

import os

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
