"""``ItemRunner``: one loaded model answering work items; the unit every engine (local, Ray) calls.

It turns items into ``BatchRequest``s (the requests of one clip share one ``Frames`` object, so a
backend encodes it once), asks the model in batches of ``batch_size`` and turns every per-item
failure (unreadable video, server error, model error, unusable ranking) into an
``ItemResult(error=...)``. It never writes the log: only the driver process does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ecva_core.infer.items import ItemResult, WorkItem
from ecva_core.infer.prefetch import DecodedVideo, decode_video, group_by_video
from ecva_core.infer.probe import CAPTION_PROMPT, chunk_positions, kept_positions, rank_all

if TYPE_CHECKING:
    from ecva_core.config import Settings
    from ecva_core.models import ChatModel
    from ecva_core.video import Frames

Decoded = Sequence[tuple[Sequence[WorkItem], DecodedVideo]]


@dataclass(frozen=True)
class Clip:
    """Frames a question is asked about, with their encoded form when the decode worker made it."""

    frames: Frames
    encoded: tuple[Any, ...] | None = None

    def subset(self, positions: Sequence[int]) -> Clip:
        encoded = tuple(self.encoded[p] for p in positions) if self.encoded is not None else None
        return Clip(subset(self.frames, positions), encoded)


def subset(frames: Frames, positions: Sequence[int]) -> Frames:
    """The frames at ``positions`` of a sampled clip, as a clip of their own."""
    return replace(
        frames,
        images=frames.images[list(positions)],
        timestamps=[frames.timestamps[p] for p in positions],
        indices=[frames.indices[p] for p in positions],
    )


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


class ItemRunner:
    """Load the model once; ``runner(items)`` decodes what the items need and answers them.

    ``model`` skips loading (a model already in memory); ``judge_settings`` is where the ranked
    probe's judge is configured (default: the environment).
    """

    def __init__(
        self,
        spec: str,
        model_options: dict[str, Any],
        generation: dict[str, Any],
        *,
        batch_size: int = 8,
        frame_backend: str | None = None,
        judge_settings: Settings | None = None,
        model: ChatModel | None = None,
    ) -> None:
        if model is None:
            from ecva_core.models import load_model

            model = load_model(spec, **model_options)
        self.model = model
        self.spec = spec
        self.generation = dict(generation)
        self.batch_size = max(1, batch_size)
        self.frame_backend = frame_backend
        self.judge_settings = judge_settings
        self.model_calls = 0
        self._count_lock = threading.Lock()
        self.codec = model.frame_codec()

    def __call__(self, items: list[WorkItem]) -> list[ItemResult]:
        """Decode (each video once) and answer ``items``; one result per item, in order."""
        decoded = [(group, decode_video(group, self.frame_backend, self.codec)) for group in group_by_video(items)]
        by_key = {r.key: r for r in self.answer(decoded)}
        return [by_key[item.key] for item in items]

    def answer(self, decoded: Decoded) -> list[ItemResult]:
        """Answer items whose frames are decoded; results in the order of the items given."""
        results: dict[str, ItemResult] = {}
        jobs: list[tuple[WorkItem, Clip, dict[str, Any]]] = []
        ranked: dict[str, tuple[list[WorkItem], Clip]] = {}
        for items, video in decoded:
            clips = {indices: Clip(frames, video.encoded.get(indices)) for indices, frames in video.frames.items()}
            for item in items:
                if video.error is not None:
                    results[item.key] = ItemResult.failure(item, video.error)
                elif item.is_ranked_probe:
                    ranked.setdefault(item.video_path, ([], clips[item.frame_indices]))[0].append(item)
                else:
                    jobs.append((item, clips[item.frame_indices], {}))
        jobs.extend(self._ranked_jobs(ranked, results))
        outcomes = self.ask([(clip, item.prompt) for item, clip, _ in jobs])
        for (item, clip, extra), outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[item.key] = ItemResult.failure(item, describe_error(outcome))
            else:
                results[item.key] = ItemResult.answer(item, outcome, clip.frames.timestamps, extra)
        return [results[item.key] for items, _ in decoded for item in items]

    def ask(self, questions: Sequence[tuple[Clip, str]]) -> list[str | BaseException]:
        """Each question's answer or the exception that stopped it, asked ``batch_size`` at a time."""
        from ecva_core.models.base import BatchRequest

        requests = [BatchRequest(clip.frames, question, clip.encoded) for clip, question in questions]
        out: list[str | BaseException] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            with self._count_lock:
                self.model_calls += len(chunk)
            out.extend(self.model.answer_outcomes(chunk, **self.generation))
        return out

    def _ranked_jobs(
        self, ranked: dict[str, tuple[list[WorkItem], Clip]], results: dict[str, ItemResult]
    ) -> list[tuple[WorkItem, Clip, dict[str, Any]]]:
        """Caption each video's chunks, rank them with the judge, and ask the probe without the top chunks."""
        if not ranked:
            return []
        from ecva_core.config import get_settings

        chunks = chunk_positions()
        questions = [(clip.subset(positions), CAPTION_PROMPT) for _, clip in ranked.values() for positions in chunks]
        outcomes = self.ask(questions)
        captions: dict[str, list[str]] = {}
        for index, (path, (items, _)) in enumerate(ranked.items()):
            texts = outcomes[index * len(chunks) : (index + 1) * len(chunks)]
            failed = next(((n, t) for n, t in enumerate(texts, start=1) if isinstance(t, BaseException)), None)
            if failed is not None:
                for item in items:
                    results[item.key] = ItemResult.failure(
                        item, f"captioning chunk {failed[0]} for the ranked probe failed: {describe_error(failed[1])}"
                    )
                continue
            captions[path] = [str(t) for t in texts]
        rankings = rank_all(captions, self.judge_settings or get_settings())
        jobs: list[tuple[WorkItem, Clip, dict[str, Any]]] = []
        for path, ranking in rankings.items():
            items, clip = ranked[path]
            if isinstance(ranking, str):
                for item in items:
                    results[item.key] = ItemResult.failure(item, ranking)
                continue
            kept, removed = kept_positions(ranking)
            probe_clip = clip.subset(kept)
            extra = {
                "method": "ranked",
                "captions": captions[path],
                "ranking": ranking,
                "removed_frames": [round(clip.frames.timestamps[p], 3) for p in removed],
            }
            jobs.extend((item, probe_clip, extra) for item in items)
        return jobs
