"""Frame readers: fetch frames by index (``i`` = the i-th picture of a sequential decode) as RGB.

Three backends give the same pixels on the same file:

* ``pyav`` (default): seeks to the key frame before a target and decodes forward, staying in the
  current GOP while targets are dense; frames between targets that nothing references are
  skipped (``skip_frame=NONREF``). Falls back to a sequential decode when timestamps do not
  match the frame table, so the result always equals a sequential decode.
* ``decord``: ``VideoReader.get_batch``; on AVI, where decord's seeking lands on wrong frames
  (its timestamps are unset), it reads contiguous batches from the start instead.
* ``opencv``: ``cv2.VideoCapture`` with frame-position seeks and ``grab`` forward.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecva_core.errors import VideoError
from ecva_core.video.info import FrameTable, check_file, open_input

BACKENDS: tuple[str, ...] = ("pyav", "decord", "opencv")
# codecs whose decoders honour skip_frame=NONREF without touching referenced pictures
_SKIP_NONREF_CODECS = {"h264", "hevc"}


_thread_limit: int | None = None


def limit_decoder_threads(threads: int) -> None:
    """Decode with at most ``threads`` threads in this process.

    A pool that already runs one decoding process per core (``ecva infer``'s decode workers) loses
    CPU to each decoder's threads competing with its siblings' for the same cores.
    """
    global _thread_limit
    _thread_limit = max(1, int(threads))


def decoder_threads() -> int:
    """Threads per decoder: the cores this process may use, capped (more only adds latency)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, _thread_limit or cores))


def read_frames(path: Path, indices: Sequence[int], table: FrameTable, backend: str) -> dict[int, np.ndarray]:
    """Frames ``indices`` of ``path`` as ``{index: (H, W, 3) uint8 RGB}`` using ``backend``."""
    readers: dict[str, Callable[[Path, list[int], FrameTable], dict[int, np.ndarray]]] = {
        "pyav": read_pyav,
        "decord": read_decord,
        "opencv": read_opencv,
    }
    if backend not in readers:
        raise VideoError(f"unknown frame backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    wanted = sorted(set(indices))
    if not wanted:
        return {}
    out = readers[backend](check_file(path), wanted, table)
    missing = [i for i in wanted if i not in out]
    if missing:
        raise VideoError(f"could not decode frames {missing[:5]} of {path}; the file may be truncated")
    return out


def _rgb(frame: Any) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


def read_pyav(path: Path, wanted: list[int], table: FrameTable) -> dict[int, np.ndarray]:
    """Key-frame-aware seeking; see the module docstring."""
    import av

    container, stream = open_input(path)
    try:
        ctx = stream.codec_context
        ctx.thread_type = "AUTO"
        ctx.thread_count = decoder_threads()
        try:
            try:
                return _seek_and_decode(container, stream, wanted, table)
            except _Mismatch:
                container.seek(0, stream=stream, backward=True)
                ctx.skip_frame = "DEFAULT"
                return _decode_sequential(container, stream, wanted)
        except av.error.FFmpegError as exc:
            raise VideoError(f"cannot decode video {path}: the file is corrupt or truncated ({exc})") from exc
    finally:
        container.close()


class _Mismatch(Exception):
    """Decoded timestamps disagree with the frame table: use a sequential decode instead."""


def _seek_and_decode(container: Any, stream: Any, wanted: list[int], table: FrameTable) -> dict[int, np.ndarray]:
    ctx = stream.codec_context
    by_pts = {table.pts[i]: i for i in wanted}
    skip_nonref = ctx.name in _SKIP_NONREF_CODECS
    out: dict[int, np.ndarray] = {}
    packets = None
    gop_key: int | None = None  # the key frame the decoder last started from or passed
    for target in sorted(by_pts):
        if by_pts[target] in out:
            continue
        key = table.keyframe_before(target)
        if key is None:
            raise _Mismatch
        if packets is None or gop_key is None or key > gop_key:
            container.seek(key, stream=stream, backward=True, any_frame=False)
            packets = container.demux(stream)
            gop_key = None
        while by_pts[target] not in out:
            packet = next(packets, None)
            if packet is not None and packet.size == 0 and packet.pts is not None:
                continue  # an AVI "dropped frame" chunk: no picture, not in the frame table
            if packet is None or packet.size == 0:
                frames = ctx.decode(None)
                packets = None
            else:
                if packet.is_keyframe and packet.pts is not None:
                    gop_key = packet.pts if gop_key is None else max(gop_key, packet.pts)
                if gop_key is None:
                    raise _Mismatch
                if skip_nonref:
                    ctx.skip_frame = "DEFAULT" if packet.pts in by_pts else "NONREF"
                frames = ctx.decode(packet)
            for frame in frames:
                if frame.pts is None:
                    raise _Mismatch
                if frame.pts in by_pts and by_pts[frame.pts] not in out:
                    out[by_pts[frame.pts]] = _rgb(frame)
                elif frame.pts > target and by_pts[target] not in out:
                    raise _Mismatch
            if packets is None and by_pts[target] not in out:
                raise _Mismatch
    return out


def _decode_sequential(container: Any, stream: Any, wanted: list[int]) -> dict[int, np.ndarray]:
    targets = set(wanted)
    last = wanted[-1]
    out: dict[int, np.ndarray] = {}
    for position, frame in enumerate(container.decode(stream)):
        if position in targets:
            out[position] = _rgb(frame)
        if position >= last:
            break
    return out


def read_decord(path: Path, wanted: list[int], table: FrameTable) -> dict[int, np.ndarray]:
    """decord2's ``get_batch``; contiguous batches from frame 0 where its seeking is unreliable."""
    import decord

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=decoder_threads())
    except decord.DECORDError as exc:
        raise VideoError(f"decord cannot read {path}: {exc}") from exc
    if len(reader) < wanted[-1] + 1:
        raise VideoError(
            f"decord sees {len(reader)} frames in {path} but the frame table has {len(table.pts)}; use --backend pyav"
        )
    try:
        if _decord_can_seek(reader, path):
            return dict(zip(wanted, reader.get_batch(wanted).asnumpy(), strict=True))
        out: dict[int, np.ndarray] = {}
        targets = set(wanted)
        chunk = 32
        for start in range(0, wanted[-1] + 1, chunk):
            block = list(range(start, min(start + chunk, wanted[-1] + 1)))
            if not targets.intersection(block):
                reader.get_batch(block)
                continue
            batch = reader.get_batch(block).asnumpy()
            out.update({i: batch[k] for k, i in enumerate(block) if i in targets})
        return out
    except decord.DECORDError as exc:
        raise VideoError(f"decord cannot decode {path}: {exc}") from exc


def _decord_can_seek(reader: Any, path: Path) -> bool:
    """decord seeks by timestamp; on AVI its timestamps are unset and seeks land on wrong frames."""
    if path.suffix.lower() == ".avi":
        return False
    stamps = reader.get_frame_timestamp([0, len(reader) - 1])
    return bool(stamps[0][0] >= 0 and stamps[1][0] >= stamps[0][0])


def read_opencv(path: Path, wanted: list[int], table: FrameTable) -> dict[int, np.ndarray]:
    """OpenCV (FFmpeg backend): seek to a target in a later GOP, else ``grab`` forward."""
    import cv2

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise VideoError(f"OpenCV cannot open {path}; the file is corrupt or unsupported")
    try:
        keys = table.keyframe_pts
        out: dict[int, np.ndarray] = {}
        position = 0  # index of the next frame grab() returns
        for index in wanted:
            same_gop = table.keyframe_before(table.pts[index]) == table.keyframe_before(
                table.pts[min(position, len(table.pts) - 1)]
            )
            if index < position or (index > position and not same_gop and keys):
                capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                position = index
            while position < index:
                if not capture.grab():
                    return out
                position += 1
            ok, image = capture.read()
            position += 1
            if not ok:
                return out
            out[index] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return out
    finally:
        capture.release()
