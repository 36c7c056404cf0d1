"""Browser-playable previews (H.264 yuv420p MP4, moov first) and JPEG thumbnails, cached by content.

Chromium plays neither AVI nor mp4v/HEVC, so every clip shown in an app goes through
:func:`browser_preview`. An MP4/MOV that already holds H.264 yuv420p with even dimensions is
remuxed (no quality loss, fast); anything else is transcoded with libx264. Files are written to a
temporary name and renamed, so concurrent callers never see a half-written preview.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

from ecva_core.errors import VideoError
from ecva_core.video.info import check_file, open_input, probe

_REMUX_SUFFIXES = {".mp4", ".m4v", ".mov"}
_hash_memo: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    """sha256 of the file's bytes (memoised per path, size and mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_memo:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _hash_memo[key] = digest.hexdigest()
    return _hash_memo[key]


def _cache_root(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        from ecva_core.config import get_settings

        cache_dir = get_settings().cache_dir
    return Path(cache_dir)


def _atomic_target(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}-", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def browser_preview(path: Path | str, cache_dir: Path | None = None) -> Path:
    """A video-only H.264 yuv420p MP4 (faststart) of ``path`` in ``cache_dir/previews``, made once per content."""
    path = check_file(path)
    info, _ = probe(path)
    dest = _cache_root(cache_dir) / "previews" / f"{content_hash(path)}.mp4"
    if dest.exists():
        return dest
    tmp = _atomic_target(dest)
    try:
        container, stream = open_input(path)
        try:
            if _can_remux(path, stream):
                _remux(container, stream, tmp)
            else:
                _transcode(container, stream, tmp, info.fps)
        finally:
            container.close()
        os.replace(tmp, dest)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, VideoError):
            raise
        raise VideoError(f"cannot make a browser preview of {path}: {exc}") from exc
    return dest


def _can_remux(path: Path, stream: Any) -> bool:
    ctx = stream.codec_context
    return (
        path.suffix.lower() in _REMUX_SUFFIXES
        and ctx.name == "h264"
        and ctx.pix_fmt == "yuv420p"
        and ctx.width % 2 == 0
        and ctx.height % 2 == 0
    )


def _remux(container: Any, stream: Any, dest: Path) -> None:
    import av

    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        out_stream = out.add_stream_from_template(stream)
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)


def _transcode(container: Any, stream: Any, dest: Path, fps: float) -> None:
    import av

    ctx = stream.codec_context
    width, height = ctx.width - ctx.width % 2, ctx.height - ctx.height % 2
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(dest), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        out_stream = out.add_stream("libx264", rate=rate)
        out_stream.width, out_stream.height, out_stream.pix_fmt = width, height, "yuv420p"
        out_stream.options = {"preset": "veryfast", "crf": "23"}
        out_stream.codec_context.time_base = 1 / rate
        stream.codec_context.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            picture.pts = index
            picture.time_base = out_stream.codec_context.time_base
            out.mux(out_stream.encode(picture))
        out.mux(out_stream.encode(None))


def thumbnail(path: Path | str, cache_dir: Path | None = None, at: float | None = None, width: int = 320) -> Path:
    """A JPEG of the frame at ``at`` seconds (default: mid-clip), ``width`` pixels wide, cached."""
    from PIL import Image

    from ecva_core.video.readers import read_frames

    path = check_file(path)
    if width < 2:
        raise VideoError(f"thumbnail width must be at least 2 pixels, got {width}")
    info, table = probe(path)
    seconds = info.duration / 2 if at is None else at
    index = min(max(int(seconds * info.fps), 0), info.frame_count - 1)
    dest = _cache_root(cache_dir) / "thumbnails" / f"{content_hash(path)}-{index}-{width}.jpg"
    if dest.exists():
        return dest
    image = Image.fromarray(read_frames(path, [index], table, "pyav")[index])
    height = max(1, round(image.height * width / image.width))
    tmp = _atomic_target(dest)
    try:
        image.resize((width, height), Image.Resampling.BILINEAR).save(tmp, format="JPEG", quality=85)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
