"""Typed records shared by every layer: videos, annotations, QA items, predictions, scores.

Video ids are canonical strings: ``"662"`` for ``00662.mp4`` and ``"19-1"`` for a sub-clip row,
so predictions join to ground truth by ``(video_id, task)`` and never by position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath


class Task(StrEnum):
    """A question type. The first three are scored by AnomEval; the others are auxiliary What tasks."""

    DESCRIPTION = "Description"
    CAUSE = "Cause"
    RESULT = "Result"
    CLASSIFICATION = "Classification"
    TIMESTAMP = "Timestamp"

    @property
    def facet(self) -> str:
        """What / Why / How, the benchmark's name for the facet a task asks about."""
        return {"Cause": "Why", "Result": "How"}.get(self.value, "What")

    @property
    def scored(self) -> bool:
        return self in SCORED_TASKS

    @classmethod
    def parse(cls, text: str) -> Task:
        """Accept the official names and the common aliases (what/why/how, reason, outcome...)."""
        key = re.sub(r"[^a-z]", "", str(text).lower())
        for task, aliases in _TASK_ALIASES.items():
            if key in aliases:
                return task
        raise ValueError(f"unknown task type {text!r} (expected one of {', '.join(t.value for t in cls)})")


SCORED_TASKS: tuple[Task, ...] = (Task.DESCRIPTION, Task.CAUSE, Task.RESULT)

_TASK_ALIASES: dict[Task, set[str]] = {
    Task.DESCRIPTION: {"description", "describe", "what", "desc"},
    Task.CAUSE: {"cause", "reason", "why"},
    Task.RESULT: {"result", "outcome", "how", "effect"},
    Task.CLASSIFICATION: {"classification", "category", "class"},
    Task.TIMESTAMP: {"timestamp", "moment", "time", "timestamps", "temporal", "when"},
}


def canonical_video_id(value: object) -> str:
    """Normalise ``00662.mp4``, ``662``, ``662.0`` or ``videos/00019-1.mp4`` to ``"662"`` / ``"19-1"``."""
    text = PurePath(str(value).strip()).name
    text = re.sub(r"\.(mp4|avi|mkv|mov|webm)$", "", text, flags=re.IGNORECASE)
    if re.fullmatch(r"\d+\.0", text):
        text = text[:-2]
    match = re.fullmatch(r"0*(\d+)((?:-\d+)?)", text)
    if match:
        return f"{int(match.group(1))}{match.group(2)}"
    return text


def video_file_name(video_id: str, ext: str = ".mp4") -> str:
    """The benchmark's file name for an id: ``"662"`` -> ``00662.mp4``, ``"19-1"`` -> ``00019-1.mp4``."""
    match = re.fullmatch(r"(\d+)((?:-\d+)?)", video_id)
    if match:
        return f"{int(match.group(1)):05d}{match.group(2)}{ext}"
    return f"{video_id}{ext}"


@dataclass(frozen=True)
class Segment:
    """A time window in seconds within a clip."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def iou(self, other: Segment) -> float:
        inter = max(0.0, min(self.end, other.end) - max(self.start, other.start))
        union = max(self.end, other.end) - min(self.start, other.start)
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Category:
    """An anomaly category ``[major-sub,confidence]``; ``sub`` and ``confidence`` may be unknown."""

    major: int
    sub: int | None = None
    confidence: int | None = None

    @property
    def code(self) -> str:
        return f"{self.major}-{self.sub}" if self.sub is not None else str(self.major)


@dataclass(frozen=True)
class QualityFlag:
    """A problem found in one cell of the annotation file; the record is kept, flagged."""

    video_id: str
    field: str
    problem: str
    row: int | None = None


@dataclass
class Annotation:
    """One video's anomaly annotation: What (category, moments, descriptions), Why, How, key phrases."""

    categories: list[Category] = field(default_factory=list)
    moments: list[Segment] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    reason: str = ""
    result: str = ""
    key_phrases: list[str] = field(default_factory=list)

    @property
    def category(self) -> Category | None:
        """The primary (first) category, or None when it did not parse."""
        return self.categories[0] if self.categories else None

    @property
    def description(self) -> str:
        """All per-moment descriptions as one expert What answer."""
        return " ".join(d for d in self.descriptions if d)


@dataclass
class VideoRecord:
    """One benchmark video (or sub-clip row) with its annotation and quality flags."""

    video_id: str
    video_file: str
    annotation: Annotation
    flags: list[QualityFlag] = field(default_factory=list)
    clip_window: Segment | None = None
    source_row: int | None = None
    duration: float | None = None

    @property
    def usable(self) -> bool:
        """False for videos the annotators marked unusable (reason ``/``)."""
        return not any(f.field == "video" for f in self.flags)


@dataclass(frozen=True)
class QAItem:
    """A question with its expert answer; scored items are keyed by ``(video_id, task)``."""

    video_id: str
    task: Task
    question: str
    answer: str
    key_phrases: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, Task]:
        return (self.video_id, self.task)


class PredictionStatus(StrEnum):
    OK = "ok"
    ERROR = "error"  # the model's inference failed ("output": "ERROR")
    EMPTY = "empty"  # the model returned nothing


KEYFRAMES_REMOVED_PROBE = "no_keyframes"
"""The ``probe`` value of an answer given with the key frames removed (the hallucination probe)."""

RUN_FIELDS: tuple[str, ...] = ("frames", "model", "error", "keyframes")
"""Per-row fields ``ecva infer`` adds to a submission (the frame times seen, the model spec, a failed
item's reason, a ranked probe's captions and ranking): known to the parser, not scored."""


@dataclass(frozen=True)
class Prediction:
    """One answer from a submission; ``probe`` marks answers given with key frames removed."""

    video_id: str
    task: Task
    output: str
    prompt: str = ""
    probe: str | None = None
    status: PredictionStatus = PredictionStatus.OK
    row: int | None = None

    @property
    def key(self) -> tuple[str, Task]:
        return (self.video_id, self.task)


class ScoreStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the metric or judge could not produce a value; ``reason`` says why
    SKIPPED = "skipped"  # not applicable (ERROR prediction, no key phrases, not configured)


@dataclass(frozen=True)
class Score:
    """One metric value for one prediction, or a failure state with its reason (never a fake value)."""

    video_id: str
    task: Task
    metric: str
    value: float | None
    status: ScoreStatus = ScoreStatus.OK
    reason: str = ""
    probe: str | None = None
