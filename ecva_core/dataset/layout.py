"""Where a dataset folder keeps its annotation file and its videos."""

from __future__ import annotations

from pathlib import Path

from ecva_core.errors import DataError

PREFERRED_NAMES = ("annotations.xlsx", "annotations.csv", "annotations.json")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
_SKIP_DIRS = {"videos", "submissions", ".cache", "__pycache__"}


def _candidates(folder: Path) -> list[Path]:
    from ecva_core.dataset.annotations import SUPPORTED_SUFFIXES

    preferred = [folder / name for name in PREFERRED_NAMES if (folder / name).is_file()]
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS):
        found += sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    return preferred + [p for p in found if p not in preferred]


def find_annotation_file(folder: Path) -> Path:
    """The folder's annotation file: ``annotations.xlsx|csv|json``, else the first file that parses."""
    from ecva_core.dataset.annotations import read_annotations

    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found. Pass a folder or an annotation file.")
    errors: list[str] = []
    for candidate in _candidates(folder):
        try:
            records, _ = read_annotations(candidate)
        except DataError as exc:
            errors.append(str(exc))
            continue
        if records:
            return candidate
    tried = f" Tried: {'; '.join(errors)}" if errors else ""
    raise DataError(
        f"{folder}: no annotation file found (annotations.xlsx, .csv or .json with a video id column)."
        f" Put the annotation file in the folder or pass its path.{tried}"
    )


def videos_dir(root: Path) -> Path:
    """``root/videos`` when it exists, else the folder itself."""
    sub = root / "videos"
    return sub if sub.is_dir() else root
