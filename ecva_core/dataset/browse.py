"""Browsing a dataset the way a person does: find clips, list categories, read one clip's expert
annotation, map the What / Why / How buttons to the benchmark's tasks and questions.

Shared by the chat app and anything else that shows clips; it knows nothing of models or scoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.errors import EcvaError
from ecva_core.schema import SCORED_TASKS, Segment, Task

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset


@dataclass(frozen=True)
class ClipEntry:
    """One clip as the picker lists it."""

    video_id: str
    label: str
    category: str
    has_video: bool


def _category_label(record: Any) -> str:
    from ecva_core.taxonomy import category_name

    category = record.annotation.category
    return category_name(category) if category is not None else "unknown category"


def find_clips(dataset: Dataset, query: str = "", category: str | None = None, limit: int = 500) -> list[ClipEntry]:
    """Clips whose id, category or expert text contains ``query``, optionally in one major category."""
    needle = query.strip().lower()
    entries: list[ClipEntry] = []
    for video_id, record in dataset.records.items():
        if not record.usable:
            continue
        label = _category_label(record)
        if category and not label.lower().startswith(category.lower()):
            continue
        annotation = record.annotation
        haystack = " ".join([video_id, label, annotation.description, annotation.reason, annotation.result]).lower()
        if needle and needle not in haystack:
            continue
        entries.append(ClipEntry(video_id, f"{video_id} · {label}", label, dataset.video_path(video_id) is not None))
        if len(entries) >= limit:
            break
    return entries


def clip_categories(dataset: Dataset) -> list[str]:
    """Major category names present in the dataset, for the picker's filter."""
    from ecva_core.taxonomy import major_name

    majors = {r.annotation.category.major for r in dataset.records.values() if r.annotation.category}
    return [f"{major}. {major_name(major)}" for major in sorted(majors)]


def format_moment(segment: Segment) -> str:
    def clock(seconds: float) -> str:
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

    return f"{clock(segment.start)}–{clock(segment.end)}"


@dataclass(frozen=True)
class AnnotationView:
    """The expert annotation of one clip, ready to show."""

    video_id: str
    category: str
    moments: list[str]
    what: str
    why: str
    how: str
    key_phrases: list[str]
    flags: list[str]
    first_moment_s: float | None


def annotation_view(dataset: Dataset, video_id: str) -> AnnotationView:
    record = dataset.records.get(video_id)
    if record is None:
        raise EcvaError(f"video {video_id!r} is not in the dataset {dataset.name}")
    annotation = record.annotation
    return AnnotationView(
        video_id=video_id,
        category=_category_label(record),
        moments=[format_moment(m) for m in annotation.moments],
        what=annotation.description,
        why=annotation.reason,
        how=annotation.result,
        key_phrases=list(annotation.key_phrases),
        flags=[f"{f.field}: {f.problem}" for f in record.flags],
        first_moment_s=annotation.moments[0].start if annotation.moments else None,
    )


def benchmark_question(task: Task) -> str:
    """The benchmark's own question text for a What / Why / How button."""
    from ecva_core.dataset.questions import question_for

    return question_for(task)


def task_for_facet(facet: str) -> Task:
    """``"What"`` -> Description, ``"Why"`` -> Cause, ``"How"`` -> Result."""
    for task in SCORED_TASKS:
        if task.facet.lower() == facet.strip().lower():
            return task
    return Task.parse(facet)


def resolve_video(dataset: Dataset, video_id: str) -> Path:
    """The clip file for a dataset id, with a message that says what to do when it is absent."""
    path = dataset.video_path(video_id)
    if path is None:
        raise EcvaError(
            f"the video file for {video_id} is not on disk; download it with "
            "`ecva data download --include videos` or upload the clip instead"
        )
    return path
