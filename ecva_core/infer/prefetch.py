"""Frames decoded ahead of the model in worker processes, each video once for all its questions.

A backend that sends encoded frames (OpenAI-compatible servers: JPEGs) has them encoded there too.

``decode_video`` opens a video, indexes it once and decodes the union of the frames its items
need in one pass, so the normal and the probe frames come from one open of the file.
``Prefetcher`` runs it in a process pool a bounded number of videos ahead of the consumer.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import EcvaError
from ecva_core.infer.items import WorkItem

if TYPE_CHECKING:
    from ecva_core.video import Frames


@dataclass
class DecodedVideo:
    """The frames of one video, by the frame-index tuple that asked for them; or why there are none.

    With a codec, ``encoded`` holds each frame set as the backend sends it, and the pixels are
    left out of ``frames`` (zero-size images with the same timestamps), so only the encoded form
    crosses from the worker to the model's process.
    """

    video_id: str
    frames: dict[tuple[int, ...], Frames] = field(default_factory=dict)
    encoded: dict[tuple[int, ...], tuple[Any, ...]] = field(default_factory=dict)
    error: str | None = None


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers start from a clean server process, never a fork of a process holding a model or threads."""
    return multiprocessing.get_context("forkserver")


def decode_video(
    items: Sequence[WorkItem], backend: str | None = None, codec: Callable[[Any], Any] | None = None
) -> DecodedVideo:
    """Decode every frame set the items of one video ask for (and ``codec`` them); a bad file is ``error``."""
    import numpy as np

    from ecva_core.video import Frames
    from ecva_core.video.info import probe
    from ecva_core.video.readers import read_frames
    from ecva_core.video.sampling import resolve_backend

    first = items[0]
    path = Path(first.video_path)
    wanted = sorted({i for item in items for i in item.frame_indices})
    try:
        name = resolve_backend(backend)
        info, table = probe(path, decode_check=False)
        if wanted and wanted[-1] >= info.frame_count:
            raise EcvaError(f"video {path} has {info.frame_count} frames now, fewer than planned; it changed")
        images = read_frames(path, wanted, table, name)
    except (EcvaError, OSError) as exc:
        return DecodedVideo(first.video_id, error=str(exc))
    except Exception as exc:  # a decoder failure on a damaged file must not stop the run
        return DecodedVideo(first.video_id, error=f"cannot decode {path}: {type(exc).__name__}: {exc}")
    decoded = DecodedVideo(first.video_id)
    for indices in {item.frame_indices for item in items}:
        if codec is not None:
            decoded.encoded[indices] = tuple(codec(images[i]) for i in indices)
        pixels = np.stack([images[i] for i in indices])
        decoded.frames[indices] = Frames(
            images=pixels[:, :0, :0] if codec is not None else pixels,
            timestamps=[table.timestamp(i) for i in indices],
            indices=list(indices),
            info=info,
            backend=name,
        )
    return decoded


def group_by_video(items: Iterable[WorkItem]) -> list[list[WorkItem]]:
    """Items grouped per video file, groups in first-seen order."""
    groups: dict[str, list[WorkItem]] = {}
    for item in items:
        groups.setdefault(item.video_path, []).append(item)
    return list(groups.values())


class Prefetcher:
    """Decode groups in a process ``pool``, at most ``ahead`` groups beyond the consumer, in order.

    Without a pool the groups are decoded in the calling process.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[WorkItem]],
        pool: Executor | None,
        ahead: int,
        backend: str | None = None,
        codec: Callable[[Any], Any] | None = None,
    ) -> None:
        self.groups = list(groups)
        self.pool = pool
        self.ahead = max(1, ahead)
        self.backend = backend
        self.codec = codec

    def __iter__(self) -> Iterator[tuple[Sequence[WorkItem], DecodedVideo]]:
        if self.pool is None:
            for group in self.groups:
                yield group, decode_video(group, self.backend, self.codec)
            return
        window: deque[tuple[Sequence[WorkItem], Future[DecodedVideo]]] = deque()
        pending = iter(self.groups)
        for group in pending:
            window.append((group, self.pool.submit(decode_video, group, self.backend, self.codec)))
            if len(window) >= self.ahead:
                break
        try:
            while window:
                group, future = window.popleft()
                next_group = next(pending, None)
                if next_group is not None:
                    window.append((next_group, self.pool.submit(decode_video, next_group, self.backend, self.codec)))
                yield group, future.result()
        finally:
            for _, future in window:
                future.cancel()


def decode_pool(workers: int) -> ProcessPoolExecutor | None:
    """The worker processes that index and decode videos (None for ``workers=0``: decode in-process).

    Each worker decodes single-threaded: the workers are the parallelism.
    """
    if workers <= 0:
        return None
    from ecva_core.video.readers import limit_decoder_threads

    return ProcessPoolExecutor(
        max_workers=workers, mp_context=worker_context(), initializer=limit_decoder_threads, initargs=(1,)
    )
