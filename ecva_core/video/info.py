"""Probe a video file: its frame table (presentation order, key frames) and summary numbers.

Every backend indexes frames the same way: frame ``i`` is the ``i``-th picture a full sequential
decode returns. The table comes from one demux pass (no decoding), as decord builds its own.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ecva_core.errors import VideoError


@dataclass(frozen=True)
class VideoInfo:
    """What a reader and a person need to know about a clip."""

    fps: float
    frame_count: int
    duration: float
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class FrameTable:
    """Presentation timestamps of every coded frame, sorted, and which of them are key frames."""

    pts: list[int]
    keyframe_pts: list[int]
    time_base: Fraction

    def keyframe_before(self, pts: int) -> int | None:
        """The last key frame at or before ``pts`` (where a seek must start to decode it)."""
        pos = bisect.bisect_right(self.keyframe_pts, pts)
        return self.keyframe_pts[pos - 1] if pos else None

    def timestamp(self, index: int) -> float:
        """Seconds from the first frame to frame ``index``."""
        return float((self.pts[index] - self.pts[0]) * self.time_base)


def check_file(path: Path | str) -> Path:
    """Fail early, naming the file, when it is missing, not a file, or empty."""
    path = Path(path)
    try:
        if not path.exists():
            raise VideoError(f"video file not found: {path}")
        if not path.is_file():
            raise VideoError(f"not a video file (it is a directory or a device): {path}")
        size = path.stat().st_size
    except (ValueError, OSError) as exc:  # a NUL in the name, a name too long for the file system
        raise VideoError(f"cannot use {str(path)!r} as a video file: {exc}") from None
    if size == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}; re-download or re-export it")
    return path


def open_input(path: Path) -> tuple[Any, Any]:
    """Open ``path`` with PyAV and return (container, first video stream), or raise VideoError."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(
            f"cannot read video {path}: the file is corrupt, truncated or not a video format FFmpeg knows ({exc})"
        ) from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"unsupported file {path}: it has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise VideoError(f"unsupported video codec in {path}; convert it to H.264 MP4")
    return container, stream


def scan_frames(container: Any, stream: Any, path: Path) -> FrameTable:
    """Demux every packet once (no decoding) to list frame timestamps and key frames."""
    import av

    pts: list[int] = []
    keys: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                stamp = (pts[-1] + 1) if pts else 0
            pts.append(stamp)
            if packet.is_keyframe:
                keys.append(stamp)
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot read video {path}: the file is corrupt ({exc})") from exc
    if not pts:
        raise VideoError(f"video {path} contains no frames; the file is corrupt or truncated")
    declared = int(stream.frames or 0)
    if declared > len(pts) and _indexed_container(container):
        raise VideoError(
            f"video {path} is truncated: its index lists {declared} frames but the file holds only {len(pts)}; "
            "re-download or re-export it"
        )
    pts.sort()
    keys.sort()
    if not keys or keys[0] > pts[0]:
        keys.insert(0, pts[0])
    time_base = stream.time_base or Fraction(1, 1)
    return FrameTable(pts=pts, keyframe_pts=keys, time_base=Fraction(time_base))


def _indexed_container(container: Any) -> bool:
    """MP4/MOV files carry a sample table listing every frame, so fewer frames than listed means truncation."""
    names = set(str(container.format.name or "").split(","))
    return bool(names & {"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})


def stream_fps(stream: Any, table: FrameTable) -> float:
    """The nominal frame rate (average rate, as decord reports it), else frames over duration."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    span = table.timestamp(len(table.pts) - 1)
    return (len(table.pts) - 1) / span if span > 0 else 25.0


def info_from(stream: Any, table: FrameTable) -> VideoInfo:
    fps = stream_fps(stream, table)
    ctx = stream.codec_context
    return VideoInfo(
        fps=fps,
        frame_count=len(table.pts),
        duration=len(table.pts) / fps,
        width=int(ctx.width),
        height=int(ctx.height),
        codec=str(ctx.name),
    )


def decode_first(container: Any, stream: Any, path: Path) -> None:
    """Decode one picture so that a file that demuxes but cannot decode is reported now."""
    import av

    container.seek(0, stream=stream, backward=True)
    try:
        for _frame in container.decode(stream):
            return
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot decode video {path}: the file is corrupt ({exc})") from exc
    raise VideoError(f"cannot decode any frame of {path}; the file is corrupt or truncated")


def probe(path: Path | str, decode_check: bool = True) -> tuple[VideoInfo, FrameTable]:
    """Info and frame table of a readable (and, with ``decode_check``, decodable) video."""
    path = check_file(path)
    container, stream = open_input(path)
    try:
        table = scan_frames(container, stream, path)
        if not stream.codec_context.width or not stream.codec_context.height:
            raise VideoError(f"video {path} has no picture size; the file is corrupt")
        if decode_check:
            decode_first(container, stream, path)
        return info_from(stream, table), table
    finally:
        container.close()


def probe_video(path: Path | str) -> VideoInfo:
    """fps, frame count, duration, size and codec of a video (VideoError if it cannot be read)."""
    return probe(path)[0]
