"""Per-model leaderboard parts kept on disk, so a leaderboard is only re-aggregated for changed models.

A part file holds, for one database (by path), one set of view filters and one version of the
aggregation code, each model's :class:`~ecva_core.views.leaderboard.LeaderboardPart` next to the
model's change stamp (``ResultsDB.model_stamps``). The explorer reads and extends it on every
render; the commands that write (``ecva score``, ``ecva results import``) warm it for the model
they just wrote (:func:`warm_after_write`; the write path itself knows no views), so an explorer
started after them draws its first leaderboard without re-reading that model.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ecva_core.metrics.protocol import ABSTENTION

if TYPE_CHECKING:
    from ecva_core.dataset import Dataset
    from ecva_core.results.db import ResultsDB
    from ecva_core.views.leaderboard import LeaderboardPart

log = logging.getLogger("ecva.views")

# The views the explorer's first render asks for: its Leaderboard page opens with "all" failures,
# every category and every task (mode, majors, tasks).
FIRST_RENDER_VIEWS: tuple[tuple[str, tuple[int, ...], tuple[str, ...]], ...] = (("all", (), ()),)
KEEP_VIEWS = 32

Parts = dict[str, tuple[str, "LeaderboardPart"]]


@functools.cache
def code_tag() -> str:
    """Hash of the code that decides a leaderboard part (not the other views): cached parts made by
    other code are not reused."""
    from ecva_core import __version__
    from ecva_core.metrics import aggregate, measures, protocol, stats
    from ecva_core.views import common, leaderboard

    digest = hashlib.sha256(__version__.encode())
    for module in (aggregate, measures, protocol, stats, common, leaderboard):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def cache_folder(cache_dir: Path) -> Path:
    """Where the explorer keeps its on-disk caches (parts included)."""
    return cache_dir / "explorer"


def parts_path(
    cache_dir: Path,
    db: ResultsDB,
    fingerprint: str,
    mode: str,
    majors: Sequence[int],
    tasks: Sequence[str],
    hallucination: str = ABSTENTION,
) -> Path:
    """The parts file of this database (by path), dataset fingerprint, view filters (the hallucination
    reading included) and code version."""
    prefix = hashlib.sha256(str(db.path.resolve()).encode()).hexdigest()[:10]
    key = (code_tag(), fingerprint, mode, tuple(majors), tuple(tasks), hallucination)
    arg = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    return cache_folder(cache_dir) / f"{prefix}-lbparts-{arg}.pkl"


def _read_parts(path: Path) -> Parts:
    if not path.exists():
        return {}
    try:
        return pickle.loads(path.read_bytes())
    except Exception:
        log.warning("ignoring unreadable cache file %s", path)
        return {}


def _compute(
    db: ResultsDB,
    dataset: Dataset,
    model: str,
    mode: str,
    majors: tuple[int, ...],
    tasks: tuple[str, ...],
    hallucination: str = ABSTENTION,
) -> LeaderboardPart:
    from ecva_core.views.leaderboard import leaderboard_part, model_protocols

    frame, answers = db.aggregate_frame([model]), db.answer_status_frame([model])
    return leaderboard_part(
        frame, dataset, mode, majors, tasks, answers, hallucination=hallucination, protocols=model_protocols(db, model)
    )


def leaderboard_parts(
    db: ResultsDB,
    dataset: Dataset,
    cache_dir: Path,
    mode: str,
    majors: tuple[int, ...],
    tasks: tuple[str, ...],
    hallucination: str = ABSTENTION,
    models: Sequence[str] | None = None,
) -> list[LeaderboardPart]:
    """Each model's part (of ``models`` only when given) in model-name order: cached ones whose
    stamp still matches, the rest read (lean columns) and aggregated again, then the file
    rewritten if anything changed (other models' fresh parts are kept in it)."""
    stamps = db.model_stamps()
    path = parts_path(cache_dir, db, dataset.fingerprint, mode, majors, tasks, hallucination)
    cached = _read_parts(path)
    parts = {model: cached[model] for model, stamp in stamps.items() if cached.get(model, ("",))[0] == stamp}
    wanted = set(stamps) if models is None else set(models) & set(stamps)
    changed = sorted(wanted - parts.keys())
    for model in changed:
        parts[model] = (stamps[model], _compute(db, dataset, model, mode, majors, tasks, hallucination))
    if changed or parts.keys() != cached.keys():
        write_parts(path, parts)
    return [parts[model][1] for model in sorted(wanted)]


def stored_metrics(db: ResultsDB, dataset: Dataset, cache_dir: Path) -> dict[str, tuple[str, ...]]:
    """Per model with scores, the metrics stored for it: from its cached first-render part while that
    is fresh, else read from the database (names only), so listing models and measures after a write
    aggregates nothing."""
    stamps = db.model_stamps()
    ((mode, majors, tasks),) = FIRST_RENDER_VIEWS
    cached = _read_parts(parts_path(cache_dir, db, dataset.fingerprint, mode, majors, tasks))
    out: dict[str, tuple[str, ...]] = {}
    for model, (stamp, part) in cached.items():
        if stamps.get(model) == stamp:
            out.update(part.metrics)
    stale = [m for m in stamps if m not in cached or cached[m][0] != stamps[m]]
    out.update(db.metrics_by_model(stale) if stale else {})
    return dict(sorted(out.items()))


def warm_model(
    db: ResultsDB,
    dataset: Dataset,
    model: str,
    cache_dir: Path,
    views: Sequence[tuple[str, tuple[int, ...], tuple[str, ...]]] = FIRST_RENDER_VIEWS,
) -> int:
    """Store ``model``'s current part for each view (other models' parts are left as they are,
    stale ones dropped); returns how many parts were written. Called right after a write, so the
    next explorer start finds the part instead of aggregating the model again."""
    stamps = db.model_stamps()
    if model not in stamps:
        return 0
    written = 0
    for mode, majors, tasks in views:
        path = parts_path(cache_dir, db, dataset.fingerprint, mode, majors, tasks)
        cached = _read_parts(path)
        parts = {m: cached[m] for m, stamp in stamps.items() if m != model and cached.get(m, ("",))[0] == stamp}
        part = _compute(db, dataset, model, mode, majors, tasks)
        if db.model_stamps().get(model) != stamps[model]:
            continue  # written to again meanwhile: this part is already stale
        parts[model] = (stamps[model], part)
        write_parts(path, parts)
        written += 1
    return written


def warm_after_write(
    db: ResultsDB, dataset: Dataset | Callable[[], Dataset], model: str, cache_dir: Path | None = None
) -> int:
    """:func:`warm_model` for the explorer's first render, right after ``model`` was written (scored or
    imported; ``cache_dir`` defaults to the settings'); returns how many parts were written. The
    write is already safe, so any failure here, loading ``dataset`` (a dataset or a loader)
    included, is logged and only costs the explorer that model's aggregation."""
    try:
        if cache_dir is None:
            from ecva_core.config import get_settings

            cache_dir = get_settings().cache_dir
        return warm_model(db, dataset() if callable(dataset) else dataset, model, cache_dir)
    except Exception:
        log.warning("could not cache the leaderboard part of %r under %s", model, cache_dir, exc_info=True)
        return 0


def write_parts(path: Path, parts: Parts) -> None:
    """Replace the parts file atomically; keep the most recently written filter combinations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    tmp.write_bytes(pickle.dumps(parts, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    prefix = path.name.split("-lbparts-")[0]
    siblings = sorted(path.parent.glob(f"{prefix}-lbparts-*.pkl"), key=_mtime, reverse=True)
    for stale in [*siblings[KEEP_VIEWS:], *path.parent.glob(f"{prefix}-leaderboard-*")]:  # and old whole views
        stale.unlink(missing_ok=True)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
