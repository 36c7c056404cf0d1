"""The one rule for a video clip a person uploads to an app: its type, its size, and that it holds video.

The chat app's upload widget and server take their limit from :func:`max_video_upload_mb`
(``ECVA_MAX_VIDEO_MB``), and every uploaded clip passes :func:`check_video_upload` before a
preview or a frame is made of it. The file's name never chooses where anything is written: previews
and thumbnails are named by content hash inside the cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecva_core.errors import ConfigError, VideoError
from ecva_core.video.info import check_file, probe

VIDEO_UPLOAD_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
MAX_VIDEO_MB_VAR = "ECVA_MAX_VIDEO_MB"
DEFAULT_MAX_VIDEO_MB = 500.0


def max_video_upload_mb() -> float:
    """The size limit of an uploaded clip in MB (``ECVA_MAX_VIDEO_MB``, default 500)."""
    raw = os.environ.get(MAX_VIDEO_MB_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_VIDEO_MB
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{MAX_VIDEO_MB_VAR}={raw!r} is not a valid size: give a number of MB above 0")
    return value


def check_video_upload(path: Path | str, max_mb: float | None = None) -> Path:
    """Accept an uploaded clip or raise VideoError naming it: a known video type, within the size limit
    (checked from the file's size, before anything reads it), and a file FFmpeg can decode video from."""
    path = check_file(path)
    if path.suffix.lower() not in VIDEO_UPLOAD_SUFFIXES:
        raise VideoError(
            f"{path.name!r} is not an accepted video type: upload one of {', '.join(VIDEO_UPLOAD_SUFFIXES)}"
        )
    limit = max_video_upload_mb() if max_mb is None else max_mb
    size = path.stat().st_size
    if size > limit * 1024 * 1024:
        raise VideoError(
            f"{path.name!r} is {size / 1024 / 1024:.1f} MB, over the {limit:g} MB limit for an uploaded clip "
            f"(whoever runs the app can raise {MAX_VIDEO_MB_VAR})"
        )
    probe(path)
    return path
