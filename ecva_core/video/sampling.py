"""Which frames a model sees: AnomShield/VideoLLaMA2's sampling rules, windows and key-frame removal.

The rules are VideoLLaMA2's ``mm_utils.frame_sample`` / ``process_video`` (AnomShield's base):

* ``num_frames=N``: split the candidate frames into N equal segments and take each midpoint,
  ``round((count - 1) / N * (i + 0.5) + 1e-6)``.
* ``fps=F``: one frame every ``video_fps // F`` frames, starting half a step in.
* a window ``[s, e]`` seconds keeps frames ``max(int(s*fps) - 1, 0) .. min(int(e*fps) - 1, last)``.

Key-frame removal (the hallucination probe) applies the same rule to the frames left after the
annotated anomaly windows (computed with the window rule) are cut out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecva_core.errors import VideoError
from ecva_core.schema import Segment
from ecva_core.video.info import VideoInfo, probe
from ecva_core.video.readers import BACKENDS, read_frames


@dataclass(frozen=True)
class Frames:
    """Sampled frames: ``images`` is (N, H, W, 3) uint8 RGB; ``timestamps`` in seconds."""

    images: np.ndarray
    timestamps: list[float]
    indices: list[int]
    info: VideoInfo
    backend: str


def uniform_positions(count: int, num_frames: int) -> list[int]:
    """Midpoints of ``num_frames`` equal segments over ``count`` items (VideoLLaMA2 'uniform')."""
    seg_size = float(count - 1) / num_frames
    mids = np.array([seg_size * (i + 0.5) for i in range(num_frames)])
    return [int(v) for v in np.round(mids + 1e-6).astype(int)]


def fps_positions(count: int, video_fps: float, fps: float) -> list[int]:
    """One item every ``video_fps // fps`` (at least 1), starting half a step in (VideoLLaMA2 'fps')."""
    step = max(1, min(int(video_fps // fps), count))
    return list(range(step // 2, count, step))


def window_range(segment: Segment, video_fps: float, frame_count: int) -> range:
    """Frame indices inside ``segment`` by VideoLLaMA2's rule (``s``/``e`` clamped and ordered)."""
    start, end = max(segment.start, 0.0), max(segment.end, 0.0)
    if start > end:
        start, end = end, start
    elif start == end:
        end = start + 1
    first = max(int(start * video_fps) - 1, 0)
    last = min(int(end * video_fps) - 1, frame_count - 1)
    return range(first, last + 1)


def frame_indices(
    info: VideoInfo,
    num_frames: int | None = 16,
    fps: float | None = None,
    window: Segment | None = None,
    exclude: Sequence[Segment] = (),
) -> list[int]:
    """The frame indices :func:`sample_frames` reads, computed from the clip's info alone."""
    if fps is not None and fps <= 0:
        raise VideoError(f"sampling rate must be positive, got fps={fps}")
    if fps is None and (num_frames is None or num_frames < 1):
        raise VideoError(f"give num_frames >= 1 or an fps to sample at (got num_frames={num_frames})")
    candidates = list(window_range(window, info.fps, info.frame_count) if window else range(info.frame_count))
    if exclude:
        cut: set[int] = set()
        for segment in exclude:
            cut.update(window_range(segment, info.fps, info.frame_count))
        candidates = [i for i in candidates if i not in cut]
    if not candidates:
        raise VideoError("no frames left to sample: the window is empty or the removed moments cover it")
    if fps is not None:
        positions = fps_positions(len(candidates), info.fps, fps)
    else:
        positions = uniform_positions(len(candidates), int(num_frames or 16))
    return [candidates[p] for p in positions]


def resolve_backend(backend: str | None) -> str:
    """``backend`` or the configured default (``ECVA_FRAME_BACKEND``, else pyav), validated."""
    if backend is None:
        from ecva_core.config import get_settings

        backend = get_settings().frame_backend
    name = backend.strip().lower()
    if name not in BACKENDS:
        raise VideoError(f"unknown frame backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return name


def sample_frames(
    path: Path | str,
    num_frames: int | None = 16,
    fps: float | None = None,
    window: Segment | None = None,
    exclude: Sequence[Segment] = (),
    backend: str | None = None,
) -> Frames:
    """Sample frames by the AnomShield rule (``num_frames``) or at ``fps`` (which wins if given)."""
    name = resolve_backend(backend)
    path = Path(path)
    info, table = probe(path, decode_check=False)
    indices = frame_indices(info, num_frames=num_frames, fps=fps, window=window, exclude=exclude)
    images = read_frames(path, indices, table, name)
    return Frames(
        images=np.stack([images[i] for i in indices]),
        timestamps=[table.timestamp(i) for i in indices],
        indices=indices,
        info=info,
        backend=name,
    )


def keyframe_removed_frames(
    path: Path | str, moments: Sequence[Segment], num_frames: int = 16, backend: str | None = None
) -> Frames:
    """The hallucination probe's input: ``num_frames`` sampled with the anomaly ``moments`` cut out."""
    return sample_frames(path, num_frames=num_frames, exclude=moments, backend=backend)
