"""Sampling rules (VideoLLaMA2/AnomShield), windows and key-frame removal, checked on coded frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecva_core.errors import VideoError
from ecva_core.schema import Segment
from ecva_core.video import VideoInfo, frame_indices, keyframe_removed_frames, probe_video, sample_frames
from ecva_core.video.sampling import fps_positions, uniform_positions, window_range
from tests.videogen import frame_code, make_clip


def _info(count: int, fps: float = 25.0) -> VideoInfo:
    return VideoInfo(fps=fps, frame_count=count, duration=count / fps, width=64, height=48, codec="h264")


def test_uniform_rule_matches_videollama2_formula() -> None:
    # VideoLLaMA2 mm_utils.frame_sample(duration=100, mode="uniform", num_frames=8)
    assert uniform_positions(100, 8) == [6, 19, 31, 43, 56, 68, 80, 93]
    assert uniform_positions(7200, 16)[0] == 225
    assert uniform_positions(1, 4) == [0, 0, 0, 0]
    assert uniform_positions(3, 8) == [0, 0, 1, 1, 1, 1, 2, 2]


def test_fps_rule_takes_one_frame_per_step() -> None:
    assert fps_positions(100, 25.0, 1.0) == [12, 37, 62, 87]
    assert fps_positions(10, 30.0, 60.0) == list(range(10))
    assert fps_positions(5, 25.0, 0.1) == [2]


def test_window_rule_follows_process_video() -> None:
    assert window_range(Segment(1.0, 2.0), 25.0, 100) == range(24, 50)
    assert window_range(Segment(0.0, 10.0), 25.0, 100) == range(0, 100)
    assert window_range(Segment(2.0, 1.0), 25.0, 100) == range(24, 50)
    assert window_range(Segment(1.0, 1.0), 25.0, 100) == range(24, 50)


def test_keyframe_removal_samples_only_outside_the_moments() -> None:
    info = _info(250)
    moments = [Segment(2.0, 4.0), Segment(6.0, 7.0)]
    cut = set(window_range(moments[0], 25.0, 250)) | set(window_range(moments[1], 25.0, 250))
    picked = frame_indices(info, num_frames=16, exclude=moments)
    assert len(picked) == 16
    assert not cut.intersection(picked)
    assert picked == sorted(picked)
    remaining = [i for i in range(250) if i not in cut]
    assert picked == [remaining[p] for p in uniform_positions(len(remaining), 16)]


def test_window_and_errors_on_empty_selection() -> None:
    info = _info(100)
    inside = frame_indices(info, num_frames=4, window=Segment(1.0, 2.0))
    assert all(24 <= i < 50 for i in inside)
    with pytest.raises(VideoError, match="no frames left"):
        frame_indices(info, num_frames=4, exclude=[Segment(0.0, 100.0)])
    with pytest.raises(VideoError, match="num_frames"):
        frame_indices(info, num_frames=0)
    with pytest.raises(VideoError, match="positive"):
        frame_indices(info, fps=0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=3, fps=25, gop=10)


def test_sample_frames_returns_the_indexed_frames(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.frame_count, info.fps, info.width, info.height, info.codec) == (75, 25.0, 64, 48, "h264")
    assert info.duration == pytest.approx(3.0)
    frames = sample_frames(clip, num_frames=16)
    assert frames.backend == "pyav"
    assert frames.images.shape == (16, 48, 64, 3) and frames.images.dtype == np.uint8
    assert frames.indices == uniform_positions(75, 16)
    assert [frame_code(img) for img in frames.images] == frames.indices
    assert frames.timestamps == pytest.approx([i / 25 for i in frames.indices])


def test_fps_sampling_and_window(clip: Path) -> None:
    frames = sample_frames(clip, fps=2)
    assert frames.indices == list(range(6, 75, 12))
    assert [frame_code(img) for img in frames.images] == frames.indices
    windowed = sample_frames(clip, num_frames=4, window=Segment(1.0, 2.0))
    assert all(1.0 - 0.05 <= t < 2.0 for t in windowed.timestamps)


def test_keyframe_removed_frames_avoid_the_anomaly(clip: Path) -> None:
    frames = keyframe_removed_frames(clip, [Segment(0.5, 2.5)], num_frames=8)
    assert len(frames.indices) == 8
    assert all(t < 0.5 or t >= 2.5 - 0.05 for t in frames.timestamps)
    assert [frame_code(img) for img in frames.images] == frames.indices


def test_default_backend_comes_from_settings(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECVA_FRAME_BACKEND", "opencv")
    assert sample_frames(clip, num_frames=2).backend == "opencv"
    monkeypatch.setenv("ECVA_FRAME_BACKEND", "bogus")
    with pytest.raises(VideoError, match="unknown frame backend"):
        sample_frames(clip, num_frames=2)
