"""What one unit of batch inference is (a work item) and what answering it gave (an item result).

Both are plain, picklable records with ``to_dict``/``from_dict``, so a work item can travel to a
decode worker or a Ray actor and a result can be written to the result log as one JSON line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

NORMAL = "normal"
PROBE = "probe"


@dataclass(frozen=True)
class WorkItem:
    """One question about one video, with the exact frames it is asked about.

    ``frame_indices`` are the frames the model sees; for a ``ranked`` probe they are the 32
    candidate frames whose key chunks are removed at run time (after captioning and ranking).
    ``probe_method`` is ``annotated`` or ``ranked`` on probe items and empty on normal ones.
    """

    key: str
    video_id: str
    video_path: str
    task: str
    variant: str
    prompt: str
    frame_indices: tuple[int, ...]
    probe_method: str = ""

    @property
    def is_ranked_probe(self) -> bool:
        return self.variant == PROBE and self.probe_method == "ranked"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["frame_indices"] = list(self.frame_indices)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        return cls(**{**data, "frame_indices": tuple(int(i) for i in data["frame_indices"])})


@dataclass
class ItemResult:
    """The answer to a work item, or why there is none (``error``); ``frames`` are the seconds seen.

    ``extra`` holds what the row should show beside the answer (for a ranked probe: the chunk
    captions, the judge's ranking and the removed frame times).
    """

    key: str
    output: str | None = None
    error: str | None = None
    frames: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    video_id: str = ""
    task: str = ""
    variant: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None

    @classmethod
    def failure(cls, item: WorkItem, reason: str) -> ItemResult:
        return cls(item.key, None, reason, [], {}, item.video_id, item.task, item.variant)

    @classmethod
    def answer(
        cls, item: WorkItem, output: str, frames: list[float], extra: dict[str, Any] | None = None
    ) -> ItemResult:
        return cls(
            item.key,
            output,
            None,
            [round(float(t), 3) for t in frames],
            dict(extra or {}),
            item.video_id,
            item.task,
            item.variant,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemResult:
        return cls(
            key=str(data["key"]),
            output=data.get("output"),
            error=data.get("error"),
            frames=[float(t) for t in data.get("frames") or []],
            extra=dict(data.get("extra") or {}),
            video_id=str(data.get("video_id") or ""),
            task=str(data.get("task") or ""),
            variant=str(data.get("variant") or ""),
        )
