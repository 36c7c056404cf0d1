"""The shared ChatModel machinery: messages, options, the clip cache and the per-GPU slots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ecva_core.models import ChatMessage, ChatModel, ClipCache, GenerationOptions, ModelOptions
from ecva_core.models.base import CachedClip, gpu_slot, normalise_messages
from ecva_core.video import Frames


class EchoModel(ChatModel):
    """A backend that answers with the question, to exercise the base class alone."""

    def _stream(self, clip: CachedClip, messages: list[ChatMessage], options: GenerationOptions) -> Iterator[str]:
        clip.encoded["turns"] = clip.encoded.get("turns", 0) + 1
        yield from messages[-1].content.split(" ")


def _frames(n: int = 4) -> Frames:
    from ecva_core.video import VideoInfo

    info = VideoInfo(fps=10.0, frame_count=40, duration=4.0, width=8, height=6, codec="h264")
    return Frames(images=np.zeros((n, 6, 8, 3), dtype=np.uint8), timestamps=[0.5 * i for i in range(n)],
                  indices=list(range(n)), info=info, backend="test")


def test_messages_accept_dicts_and_must_end_with_a_user_turn() -> None:
    out = normalise_messages([{"role": "user", "content": "a"}, ChatMessage("assistant", "b"),
                              {"role": "user", "content": "c"}])
    assert [m.role for m in out] == ["user", "assistant", "user"]
    with pytest.raises(ValueError, match="last chat message"):
        normalise_messages([ChatMessage("user", "a"), ChatMessage("assistant", "b")])
    with pytest.raises(ValueError, match="role"):
        normalise_messages([{"role": "robot", "content": "x"}])


def test_generation_and_model_options() -> None:
    assert GenerationOptions.from_kwargs({"max_new_tokens": 5}).max_new_tokens == 5
    with pytest.raises(ValueError, match="unknown generation options"):
        GenerationOptions.from_kwargs({"beams": 3})
    opts = ModelOptions.from_kwargs({"dtype": "bf16", "device": "cpu", "api_key": "k", "num_frames": None})
    assert opts.dtype == "bf16" and opts.extra == {"api_key": "k"} and opts.num_frames is None
    import torch

    assert opts.resolved_dtype("cpu") is torch.bfloat16
    assert ModelOptions().resolved_dtype("cpu") is torch.float32


def test_presampled_frames_are_used_and_cached() -> None:
    model = EchoModel("echo:test", num_frames=4)
    frames = _frames()
    assert "".join(model.chat(frames, [ChatMessage("user", "why did it crash")])) == "whydiditcrash"
    model.answer(frames, "again")
    clip = model.clip(frames)
    assert clip.frames is frames and clip.encoded["turns"] == 2 and len(model.clip_cache) == 1


def test_clip_cache_is_lru_and_keyed_by_file_identity(tmp_path: Path) -> None:
    cache = ClipCache(max_items=2)
    path = tmp_path / "a.mp4"
    path.write_bytes(b"one")
    first = ClipCache.key_for(path, 16)
    assert ClipCache.key_for(path, 8) != first
    time.sleep(0.01)
    path.write_bytes(b"changed")
    assert ClipCache.key_for(path, 16) != first
    for key in ("k1", "k2", "k3"):
        cache.put((key,), CachedClip(frames=_frames()))
    assert cache.get(("k1",)) is None and cache.get(("k3",)) is not None


def test_missing_video_file_is_a_video_error(tmp_path: Path) -> None:
    from ecva_core.errors import VideoError

    with pytest.raises(VideoError, match="not found"):
        EchoModel("echo:test").answer(tmp_path / "missing.mp4", "x")


def test_gpu_slot_bounds_concurrent_generations() -> None:
    slot = gpu_slot("test-device-0", 2)
    assert gpu_slot("test-device-0", 5) is slot  # the first limit for a device wins
    active, peak = [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with slot:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.05)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 2
