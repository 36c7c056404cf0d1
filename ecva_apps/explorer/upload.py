"""Turn uploaded bytes into a validated submission file, without trusting the upload's file name.

The bytes are written under the cache directory with a name derived from their hash (only the
extension of the uploaded name is used, and only if it is an accepted one), so nothing outside
the data and results directories is ever read because of what a user typed or uploaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from ecva_core.config import Settings
from ecva_core.errors import SubmissionError

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset
    from ecva_core.results.submission import SubmissionReport

ACCEPTED_TYPES = ("json", "jsonl", "csv")


@dataclass(frozen=True)
class StagedUpload:
    """An upload written to a private file and validated against the dataset."""

    path: Path
    file_hash: str
    original_name: str
    report: SubmissionReport


def upload_extension(filename: str) -> str:
    """The accepted extension of an uploaded name (``.json``/``.jsonl``/``.csv``), else SubmissionError."""
    suffix = PurePath(filename or "").suffix.lower().lstrip(".")
    if suffix not in ACCEPTED_TYPES:
        raise SubmissionError(f"{filename!r} is not an accepted submission type: upload a .json, .jsonl or .csv file")
    return suffix


def upload_digest(data: bytes) -> str:
    """The sha256 of an upload's bytes: its identity in the results and the upload log."""
    return hashlib.sha256(data).hexdigest()


def stage_upload(data: bytes, filename: str, settings: Settings, digest: str | None = None) -> tuple[Path, str]:
    """Check type and size, then write the bytes to ``cache_dir/uploads/<hash>.<ext>``; ``digest`` is
    their :func:`upload_digest` when the caller has it already."""
    ext = upload_extension(filename)
    limit = settings.max_submission_mb
    if len(data) > limit * 1024 * 1024:
        raise SubmissionError(
            f"{filename!r} is {len(data) / 1024 / 1024:.1f} MB, over the {limit:g} MB limit "
            "(set ECVA_MAX_SUBMISSION_MB to raise it, or score it with `ecva score`)"
        )
    if not data.strip():
        raise SubmissionError(f"{filename!r} is empty: upload the file with the model's answers")
    digest = digest or upload_digest(data)
    folder = settings.cache_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    # Keep a sanitised stem: older one-task-per-file submissions name their task in the file name.
    stem = re.sub(r"[^a-z0-9]+", "_", PurePath(filename).stem.lower()).strip("_")[:48]
    path = folder / f"{digest[:32]}-{stem or 'upload'}.{ext}"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path, digest


def validate_upload(
    data: bytes,
    filename: str,
    dataset: Dataset,
    settings: Settings,
    task: str | None = None,
    probe: str | None = None,
    digest: str | None = None,
) -> StagedUpload:
    """Stage the upload and run the library's validator on its bytes (every problem reported, nothing
    raised): the bytes are hashed once (or ``digest`` is used) and never read back from the staged file."""
    from ecva_core.results.submission import validate_submission

    path, digest = stage_upload(data, filename, settings, digest)
    report = validate_submission(
        path, dataset, task=task, probe=probe, max_mb=settings.max_submission_mb, data=data, file_hash=digest
    )
    return StagedUpload(path=path, file_hash=digest, original_name=PurePath(filename).name, report=report)
