"""The dataset layer: load an annotation file or dataset folder into typed records and QA items.

``load_dataset()`` resolves ``path`` -> ``$ECVA_DATA`` -> the generated demo dataset. Sub-clip
records (``19-1``) are kept and can be asked for, but the scored QA items of a dataset are those
of its source videos (the official submissions answer ids 1..1000, never sub-clips); pass
``include_subclips=True`` to get theirs too.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ecva_core.dataset.annotations import read_annotations
from ecva_core.dataset.cells import problem_kind
from ecva_core.dataset.layout import VIDEO_SUFFIXES, find_annotation_file, videos_dir
from ecva_core.dataset.questions import qa_items_for
from ecva_core.errors import DataError
from ecva_core.schema import SCORED_TASKS, QAItem, QualityFlag, Task, VideoRecord, canonical_video_id

__all__ = ["Dataset", "is_subclip", "load_dataset", "source_video_id"]

_SUBCLIP = re.compile(r"(\d+)-\d+")


def is_subclip(video_id: str) -> bool:
    """True for sub-clip ids such as ``19-1`` (a time cut of source video 19)."""
    return bool(_SUBCLIP.fullmatch(video_id))


def source_video_id(video_id: str) -> str:
    """The source video of a record: ``"19-1"`` -> ``"19"``, ``"662"`` -> ``"662"``."""
    match = _SUBCLIP.fullmatch(video_id)
    return match.group(1) if match else video_id


@dataclass
class Dataset:
    """Annotated videos of one dataset, their quality flags and their QA items."""

    name: str
    annotation_file: Path
    records: dict[str, VideoRecord]
    flags: list[QualityFlag] = field(default_factory=list)
    root: Path | None = None
    is_demo: bool = False

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the annotation file, so caches keyed by it follow edits to the annotations."""
        digest = hashlib.sha256()
        with self.annotation_file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @property
    def source_videos(self) -> list[str]:
        """Distinct source video ids (sub-clips count towards their source video)."""
        return sorted({source_video_id(v) for v in self.records}, key=lambda v: (len(v), v))

    def record(self, video_id: str) -> VideoRecord | None:
        return self.records.get(canonical_video_id(video_id))

    def qa_items(self, tasks: tuple[Task, ...] = SCORED_TASKS, include_subclips: bool = False) -> list[QAItem]:
        """QA items of every usable record, in id order (sub-clips only when asked for)."""
        items: list[QAItem] = []
        for record in self.records.values():
            if include_subclips or not is_subclip(record.video_id):
                items.extend(qa_items_for(record, tasks))
        return items

    def qa_item(self, video_id: str, task: Task | str) -> QAItem | None:
        """The item for ``(video_id, task)``, or None when the video is unknown, unusable or unannotated."""
        record = self.record(video_id)
        if record is None:
            return None
        items = qa_items_for(record, (task if isinstance(task, Task) else Task.parse(task),))
        return items[0] if items else None

    def video_path(self, video_id: str) -> Path | None:
        """The record's video file on disk (source video for a sub-clip), or None when absent."""
        folders = [videos_dir(self.root)] if self.root else []
        folders.append(self.annotation_file.parent)
        record = self.record(video_id)
        names = [record.video_file] if record else []
        stem = Path(names[0]).stem if names else None
        for folder in dict.fromkeys(folders):
            for name in names:
                if (folder / name).is_file():
                    return folder / name
            if stem:
                for suffix in VIDEO_SUFFIXES:
                    candidate = folder / f"{stem}{suffix}"
                    if candidate.is_file():
                        return candidate
        return None

    def validation_report(self) -> dict[str, object]:
        """Counts and every flag, as ``ecva data validate --json`` prints them."""
        kinds = Counter(problem_kind(f.problem) for f in self.flags)
        records = list(self.records.values())
        subclips = [r for r in records if is_subclip(r.video_id)]
        return {
            "dataset": self.name,
            "annotation_file": str(self.annotation_file),
            "fingerprint": self.fingerprint,
            "is_demo": self.is_demo,
            "videos": len(self.source_videos),
            "records": len(records),
            "clips": len(subclips),
            "usable_videos": sum(1 for r in records if r.usable and not is_subclip(r.video_id)),
            "unusable_videos": sum(1 for r in records if not r.usable),
            "qa_items": len(self.qa_items()),
            "qa_items_with_clips": len(self.qa_items(include_subclips=True)),
            "aux_items": len(self.qa_items((Task.CLASSIFICATION, Task.TIMESTAMP))),
            "flagged_records": len({f.video_id for f in self.flags}),
            "problem_counts": dict(sorted(kinds.items())),
            "flags": [
                {
                    "video_id": f.video_id,
                    "field": f.field,
                    "problem": f.problem,
                    "row": f.row,
                    "kind": problem_kind(f.problem),
                }
                for f in self.flags
            ],
        }


def _resolve(path: Path | None) -> tuple[Path, bool]:
    from ecva_core.config import get_settings

    if path is not None:
        return Path(path).expanduser(), False
    settings = get_settings()
    if settings.data is not None:
        return settings.data, False
    from ecva_core.dataset.demo import ensure_demo

    return ensure_demo(settings.demo_dir or settings.home / "demo"), True


def load_dataset(path: Path | None = None) -> Dataset:
    """Load a dataset folder or annotation file; None -> ``$ECVA_DATA``, else the demo dataset."""
    target, is_demo = _resolve(path)
    if not target.exists():
        raise DataError(f"{target}: no such file or folder. Pass a dataset folder or an annotation file.")
    if target.is_dir():
        root: Path | None = target
        annotation_file = find_annotation_file(target)
    else:
        root = None
        annotation_file = target
    records, flags = read_annotations(annotation_file)
    if not records:
        raise DataError(f"{annotation_file}: no annotated video rows found under the header.")
    is_demo = is_demo or (root is not None and (root / "DEMO.txt").is_file())
    name = (root.name if root else annotation_file.stem)
    if is_demo:
        name = "generated demo" if name == "demo" else f"{name} (generated demo)"
    return Dataset(
        name=name,
        annotation_file=annotation_file,
        records={r.video_id: r for r in records},
        flags=flags,
        root=root,
        is_demo=is_demo,
    )
