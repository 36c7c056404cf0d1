"""A parsed dataset kept on disk, so a restarted explorer does not parse the annotations again.

The pickle is keyed on the tool's version and the dataset's location and holds the annotation
file's signature (path, size, modification time): an edited file, or another version of the tool,
parses the annotations again. An unreadable cache file is replaced, never trusted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
from pathlib import Path

from ecva_core.dataset import Dataset, load_dataset

log = logging.getLogger(__name__)


def _file_signature(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def cache_file(data: Path | None, default_dir: Path, cache_dir: Path) -> Path:
    """Where the parsed dataset at ``data`` (else at ``default_dir``, the demo) is kept under ``cache_dir``."""
    from ecva_core import __version__

    where = str(Path(data or default_dir).resolve())
    tag = hashlib.sha256(f"{__version__}|{where}".encode()).hexdigest()[:12]
    return cache_dir / "explorer" / f"dataset-{tag}.pkl"


def load_cached_dataset(data: Path | None, default_dir: Path, cache_dir: Path) -> Dataset:
    """The dataset :func:`ecva_core.dataset.load_dataset` reads from ``data``, unpickled from
    ``cache_dir`` while its annotation file is unchanged, else parsed and kept there."""
    cached = cache_file(data, default_dir, cache_dir)
    if cached.exists():
        try:
            signature, ds = pickle.loads(cached.read_bytes())
            if signature == _file_signature(ds.annotation_file):
                return ds
        except Exception:
            log.warning("re-reading the dataset: its cached copy %s is stale or unreadable", cached)
    ds = load_dataset(data)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}-{threading.get_ident()}.part")
    tmp.write_bytes(pickle.dumps((_file_signature(ds.annotation_file), ds), protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(cached)
    return ds
