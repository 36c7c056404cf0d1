"""Every backend returns the frames a sequential decode returns, on generated and on real clips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ecva_core.video import BACKENDS, frame_indices, probe_video, sample_frames
from ecva_core.video.info import probe
from ecva_core.video.readers import read_frames
from tests.videogen import frame_code, make_clip


def _sequential(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


CLIPS = {
    "short_gop.mp4": {"gop": 10},
    "long_gop.mkv": {"gop": None},
    "bframes.mp4": {"preset": "medium", "bframes": 3, "gop": 25, "noise": True},
    "odd_fps.avi": {"fps": Fraction(149, 6), "gop": 24},
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reader-clips")
    return {name: make_clip(root / name, seconds=3, **options) for name, options in CLIPS.items()}


@pytest.mark.parametrize("name", sorted(CLIPS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_match_sequential_decode_on_generated_clips(clips: dict[str, Path], name: str, backend: str) -> None:
    path = clips[name]
    reference = _sequential(path)
    assert probe_video(path).frame_count == len(reference)
    for num_frames in (1, 5, 16, 40):
        frames = sample_frames(path, num_frames=num_frames, backend=backend)
        for index, image in zip(frames.indices, frames.images, strict=True):
            assert frame_code(image) == index
            np.testing.assert_array_equal(image, reference[index])


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsorted_repeated_and_edge_indices(clips: dict[str, Path], backend: str) -> None:
    path = clips["bframes.mp4"]
    _, table = probe(path)
    last = len(table.pts) - 1
    wanted = [last, 0, 13, 13, 12, 24, 25, 26, last - 1]
    frames = read_frames(path, wanted, table, backend)
    assert sorted(frames) == sorted(set(wanted))
    assert all(frame_code(image) == index for index, image in frames.items())


@pytest.fixture(scope="module")
def real_reference(shared_media: Path) -> dict[Path, dict[int, np.ndarray]]:
    """For each real clip, the frames that 8- and 16-frame sampling needs, from one sequential decode."""
    import av

    out: dict[Path, dict[int, np.ndarray]] = {}
    for path in sorted(shared_media.glob("*.avi")):
        info = probe_video(path)
        needed = set(frame_indices(info, num_frames=8)) | set(frame_indices(info, num_frames=16))
        frames: dict[int, np.ndarray] = {}
        with av.open(str(path)) as container:
            for position, frame in enumerate(container.decode(video=0)):
                if position in needed:
                    frames[position] = frame.to_ndarray(format="rgb24")
            assert position + 1 == info.frame_count
        out[path] = frames
    return out


@pytest.mark.realdata
@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree_on_real_avi_clips(real_reference: dict[Path, dict[int, np.ndarray]], backend: str) -> None:
    for path, reference in real_reference.items():
        info = probe_video(path)
        assert info.duration == pytest.approx(info.frame_count / info.fps)
        for num_frames in (8, 16):
            frames = sample_frames(path, num_frames=num_frames, backend=backend)
            assert frames.images.shape[1:] == (info.height, info.width, 3)
            for index, image in zip(frames.indices, frames.images, strict=True):
                np.testing.assert_array_equal(image, reference[index], err_msg=f"{path.name} frame {index}")


@pytest.mark.realdata
def test_odd_frame_rate_clip_is_probed_exactly(shared_media: Path) -> None:
    odd = [probe_video(p) for p in shared_media.glob("*.avi") if abs(probe_video(p).fps - 24.83) < 0.01]
    assert odd, "expected the 24.83 fps clip"
    info = odd[0]
    assert info.fps == pytest.approx(149 / 6)
    assert info.frame_count == 86
    frames = sample_frames(next(p for p in shared_media.glob("*3_8.avi")), num_frames=16)
    assert frames.timestamps[-1] < info.duration


def test_pyav_falls_back_to_a_sequential_decode(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from ecva_core.video import readers

    real = readers._seek_and_decode

    def half_then_mismatch(container: object, stream: object, wanted: list[int], table: object) -> None:
        real(container, stream, wanted[: len(wanted) // 2], table)
        raise readers._Mismatch

    monkeypatch.setattr(readers, "_seek_and_decode", half_then_mismatch)
    frames = sample_frames(clips["bframes.mp4"], num_frames=16, backend="pyav")
    assert [frame_code(image) for image in frames.images] == frames.indices


def test_decoder_threads_can_be_limited_per_process(monkeypatch) -> None:
    """ecva infer's decode workers decode single-threaded: the pool is the parallelism."""
    from ecva_core.video import readers

    monkeypatch.setattr(readers, "_thread_limit", None)
    monkeypatch.setattr(readers.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert readers.decoder_threads() == 4
    readers.limit_decoder_threads(1)
    assert readers.decoder_threads() == 1
