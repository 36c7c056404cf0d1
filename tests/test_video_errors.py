"""Missing, empty, corrupt and unsupported files raise VideoError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecva_core.errors import EcvaError, VideoError
from ecva_core.video import BACKENDS, browser_preview, probe_video, sample_frames, thumbnail


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _bad_files(root: Path) -> dict[str, Path]:
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    text = root / "notes.avi"
    text.write_text("this is not a video\n" * 50)
    return {
        "missing": root / "missing.mp4",
        "empty": empty,
        "corrupt": corrupt,
        "text": text,
        "audio": _audio_only(root / "audio.wav"),
        "directory": root,
    }


EXPECTED = {
    "missing": "not found",
    "empty": "empty",
    "corrupt": "corrupt",
    "text": "corrupt",
    "audio": "no video stream",
    "directory": "not a video file",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_probe_and_sample_name_the_bad_file(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]
    for call in (probe_video, sample_frames, browser_preview, thumbnail):
        with pytest.raises(VideoError, match=EXPECTED[kind]) as caught:
            call(path)
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, EcvaError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_reports_corrupt_files(tmp_path: Path, backend: str) -> None:
    path = _bad_files(tmp_path)["corrupt"]
    with pytest.raises(VideoError, match=r"corrupt\.mp4"):
        sample_frames(path, backend=backend)
