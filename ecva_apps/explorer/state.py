"""Cached loaders for the explorer: one dataset and one scores frame per database version.

Reads are cached in memory (``st.cache_data`` / ``st.cache_resource``) keyed on the database path
and ``ResultsDB.data_version()``, so a newly scored model shows up on the next rerun without
restarting the app and nothing is recomputed while the database is unchanged. The frames and
the parsed dataset are also kept on disk under ``cache_dir/explorer``, so a restarted app draws
its first page without re-reading every score out of SQLite. The leaderboard is kept there per
model (keyed on the model's change stamp), so after a write only the changed model is read again.
The Breakdown, Compare and question pages list models and measures from those parts (metric
names from SQLite for a changed model) and read only what they show: the lean scores of the chosen
models (:func:`lean_scores`), for the shown measure where the page shows one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import streamlit as st

from ecva_core.config import Settings, get_settings
from ecva_core.metrics.protocol import ABSTENTION

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset
    from ecva_core.results.db import ResultsDB
    from ecva_core.views.breakdown import BreakdownView
    from ecva_core.views.compare import CompareView
    from ecva_core.views.leaderboard import LeaderboardPart, LeaderboardView
    from ecva_core.views.questions import QuestionFilter

log = logging.getLogger("ecva.explorer")
T = TypeVar("T")


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False)
def _dataset(data: str | None, demo_dir: str) -> Dataset:
    from ecva_core.dataset.cache import load_cached_dataset

    return load_cached_dataset(Path(data) if data else None, Path(demo_dir), settings().cache_dir)


def dataset() -> Dataset:
    """The configured dataset (``ECVA_DATA``), else the demo dataset, generated on first use."""
    s = settings()
    return _dataset(str(s.data) if s.data else None, str(s.demo_dir))


def open_db() -> ResultsDB:
    """A connection to the results database (opened per use: SQLite connections stay in their thread)."""
    from ecva_core.results.db import ResultsDB

    path = settings().db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return ResultsDB(path)


def version() -> int:
    """The database's change counter: the cache key of every read below."""
    return int(open_db().data_version())


def _db_identity(db: ResultsDB) -> tuple[str, str]:
    """(path tag, version tag): the version tag changes on every write and when the file is recreated."""
    path = str(db.path.resolve())
    models = [(m["model"], m["created"]) for m in db.models()]
    tag = hashlib.sha256(json.dumps([path, db.data_version(), models]).encode()).hexdigest()[:24]
    return hashlib.sha256(path.encode()).hexdigest()[:10], tag


def persisted(name: str, params: object, compute: Callable[[], T]) -> T:
    """``compute()`` once per database version, kept on disk under ``cache_dir/explorer``.

    A freshly started app then draws its first page from files (milliseconds) instead of reading
    every score out of SQLite again; any write to the database gives new keys, and stale files of
    the same database are removed. Frames are stored as Arrow IPC, other results pickled.
    """
    import pandas as pd

    db = open_db()
    prefix, tag = _db_identity(db)
    arg = hashlib.sha256(repr(params).encode()).hexdigest()[:12]
    folder = settings().cache_dir / "explorer"
    stem = f"{prefix}-{name}-{tag}-{arg}"
    for path in (folder / f"{stem}.arrow", folder / f"{stem}.pkl"):
        if path.exists():
            try:
                return pd.read_feather(path) if path.suffix == ".arrow" else pickle.loads(path.read_bytes())
            except Exception:
                log.warning("ignoring unreadable cache file %s", path)
    value = compute()
    if _db_identity(db)[1] != tag:
        return value
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}-{name}-*"):
        if not stale.name.startswith(f"{prefix}-{name}-{tag}-"):
            stale.unlink(missing_ok=True)
    is_frame = isinstance(value, pd.DataFrame)
    target = folder / f"{stem}{'.arrow' if is_frame else '.pkl'}"
    tmp = target.with_name(f"{target.name}.{os.getpid()}-{threading.get_ident()}.part")
    if is_frame:
        value.to_feather(tmp)
    else:
        tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(target)
    return value


@st.cache_resource(show_spinner=False, max_entries=4)
def _model_scores(db_path: str, data_version: int, models: tuple[str, ...]) -> pd.DataFrame:
    return persisted("model-scores", models, lambda: open_db().scores_frame(models=list(models)))


@st.cache_resource(show_spinner=False, max_entries=8)
def _lean_scores(
    db_path: str, data_version: int, models: tuple[str, ...], metrics: tuple[str, ...] | None, keep_failed: bool
) -> pd.DataFrame:
    return persisted(
        "lean-scores", (models, metrics, keep_failed), lambda: open_db().aggregate_frame(models, metrics, keep_failed)
    )


def lean_scores(models: Sequence[str], metrics: Sequence[str] | None = None, keep_failed: bool = False) -> pd.DataFrame:
    """What a view of ``models`` aggregates (``ResultsDB.aggregate_frame``: no text columns), only
    ``metrics`` when given (and every failed score with ``keep_failed``); kept on disk per request
    until the database changes. Shared, never modified in place."""
    chosen = tuple(sorted(set(models)))
    return _lean_scores(str(settings().db_path), version(), chosen, tuple(metrics) if metrics else None, keep_failed)


def model_scores(models: Sequence[str]) -> pd.DataFrame:
    """The stored scores (every column) of ``models`` only, kept on disk per model set until the
    database changes: the leaderboard page's "open its questions" reads one model, not all.
    Shared, never modified in place."""
    return _model_scores(str(settings().db_path), version(), tuple(sorted(set(models))))


@st.cache_data(show_spinner=False, max_entries=8)
def _catalog(key: tuple[str, int, str]) -> tuple[list[str], list[str]]:
    import pandas as pd

    from ecva_core.views.common import breakdown_metrics
    from ecva_core.views.leaderboard_cache import stored_metrics

    per_model = {m: set(names) for m, names in stored_metrics(open_db(), dataset(), settings().cache_dir).items()}
    present = sorted(set().union(*per_model.values()))
    return sorted(per_model), breakdown_metrics(pd.DataFrame({"metric": present}, dtype=object))


def scored_models() -> list[str]:
    """Models with at least one stored score, by name (from the per-model leaderboard parts when
    the full frame is not in memory, and metric names from the database for models whose part is
    stale, so listing them reads and aggregates no scores)."""
    return list(_catalog(_key())[0])


def score_measures() -> list[str]:
    """The measures the Breakdown and Compare pages offer: ``views.common.breakdown_metrics`` of every score."""
    return list(_catalog(_key())[1])


@st.cache_resource(show_spinner=False)
def _bootstrap(data: str | None, db_path: str) -> list[str]:
    from ecva_core.results.demo_scores import score_demo_submissions

    return score_demo_submissions(dataset(), open_db())


def bootstrap() -> list[str]:
    """Demo by default: with no dataset configured and an empty database, score the demo submissions."""
    s = settings()
    return _bootstrap(str(s.data) if s.data else None, str(s.db_path))


def _key() -> tuple[str, int, str]:
    return str(settings().db_path), version(), dataset().fingerprint


def leaderboard_parts(
    fingerprint: str,
    mode: str,
    majors: tuple[int, ...],
    tasks: tuple[str, ...],
    hallucination: str = ABSTENTION,
    models: Sequence[str] | None = None,
) -> list[LeaderboardPart]:
    """Each model's leaderboard part, kept on disk per model until that model changes.

    A write (a newly scored model, a new judge run) changes only the stamps of the models it
    touched, so only those are read from SQLite (lean columns, no text) and aggregated again; the
    other models' parts come from ``cache_dir/explorer`` (``ecva score`` warms the part of the
    model it scored there). Parts are in model-name order; ``fingerprint`` is the explorer's
    dataset's (it keys the in-memory cache of the caller and the file); ``models`` restricts the
    parts read or computed to those models.
    """
    from ecva_core.views.leaderboard_cache import leaderboard_parts as cached_parts

    return cached_parts(open_db(), dataset(), settings().cache_dir, mode, majors, tasks, hallucination, models)


@st.cache_data(show_spinner=False, max_entries=32)
def _leaderboard(
    key: tuple[str, int, str], mode: str, majors: tuple[int, ...], tasks: tuple[str, ...], hallucination: str
):
    from ecva_core.views.leaderboard import leaderboard_from_parts

    parts = leaderboard_parts(key[2], mode, majors, tasks, hallucination)
    return leaderboard_from_parts(parts, dataset(), mode, majors, tasks)


def leaderboard(
    mode: str, majors: tuple[int, ...], tasks: tuple[str, ...], hallucination: str = ABSTENTION
) -> LeaderboardView:
    """The leaderboard view for these filters and hallucination reading (cached until the database changes)."""
    return _leaderboard(_key(), mode, majors, tasks, hallucination)


@st.cache_data(show_spinner=False, max_entries=32)
def _breakdown(key: tuple[str, int, str], models: tuple[str, ...], metric: str, mode: str):
    from ecva_core.metrics.aggregate import combine_leaderboards
    from ecva_core.metrics.measures import stored_inputs
    from ecva_core.views.breakdown import breakdown_view

    if mode != "all" or not metric:  # no cached parts for this mode: aggregate the models' lean scores
        return breakdown_view(lean_scores(models), dataset(), models=models, metric=metric, mode=mode)
    parts = leaderboard_parts(key[2], mode, (), (), models=models)
    totals = combine_leaderboards([p.overall for p in parts]), combine_leaderboards([p.by_task for p in parts], "task")
    scores = lean_scores(models, stored_inputs(metric))
    return breakdown_view(scores, dataset(), models=models, metric=metric, mode=mode, totals=totals)


def breakdown(models: tuple[str, ...], metric: str, mode: str) -> BreakdownView:
    """The breakdown tables for these models (cached until the database changes)."""
    return _breakdown(_key(), models, metric, mode)


@st.cache_data(show_spinner=False, max_entries=32)
def _compare(key: tuple[str, int, str], a: str, b: str, metric: str, mode: str, hallucination: str):
    from ecva_core.metrics.measures import stored_inputs
    from ecva_core.views.compare import compare_view

    scores = lean_scores((a, b), stored_inputs(metric) if metric else None)
    return compare_view(scores, dataset(), a, b, metric=metric, mode=mode, hallucination=hallucination)


def compare(a: str, b: str, metric: str, mode: str, hallucination: str = ABSTENTION) -> CompareView:
    """The paired comparison of two models (cached until the database changes)."""
    return _compare(_key(), a, b, metric, mode, hallucination)


@st.cache_data(show_spinner=False, max_entries=4)
def _durations(fingerprint: str, data: str | None):
    from ecva_core.views.dataset import durations_frame

    return durations_frame(dataset())


def durations() -> pd.DataFrame:
    """Clip durations and moment lengths (probing video files is slow, so this is cached per dataset)."""
    s = settings()
    return _durations(dataset().fingerprint, str(s.data) if s.data else None)


@st.cache_resource(show_spinner=False, max_entries=4)
def _answer_status(db_path: str, data_version: int, models: tuple[str, ...]) -> pd.DataFrame:
    return persisted("answer-status", models, lambda: open_db().answer_status_frame(models))


@st.cache_resource(show_spinner=False, max_entries=2)
def _model_predictions(db_path: str, data_version: int, models: tuple[str, ...]) -> pd.DataFrame:
    return persisted("model-predictions", models, lambda: open_db().predictions_frame(models))


@st.cache_data(show_spinner=False, max_entries=16)
def _question_rows(key: tuple[str, int, str], flt_repr: str, _flt: QuestionFilter) -> pd.DataFrame:
    import dataclasses

    from ecva_core.metrics.measures import stored_inputs
    from ecva_core.views.questions import question_rows

    models = _flt.models or tuple(scored_models())
    metric = _flt.metric or next(iter(score_measures()), None)
    where = (key[0], key[1])
    chosen = tuple(sorted(models))
    lean = _lean_scores(*where, chosen, stored_inputs(metric) if metric else (), True)
    answers = (_model_predictions if _flt.search.strip() else _answer_status)(*where, chosen)
    return question_rows(dataset(), lean, answers, dataclasses.replace(_flt, models=models, metric=metric))


def question_rows(flt: QuestionFilter) -> pd.DataFrame:
    """The question explorer's filtered table (cached per filter until the database changes).

    Reads only what the table shows: the lean scores of the chosen models (all by default) for the
    chosen measure's stored inputs and their failed scores, and the answers' status (their text
    only when searching in answers)."""
    return _question_rows(_key(), repr(flt), flt)


@st.cache_data(show_spinner=False, max_entries=32)
def _question_answers(key: tuple[str, int, str], video_id: str, task: str) -> list[dict]:
    from ecva_core.views.questions import question_answers

    db = open_db()
    question = (video_id, task)
    scores = db.scores_frame(question=question)
    return question_answers(scores, db.predictions_frame(question=question), video_id, task)


def question_answers(video_id: str, task: str) -> list[dict]:
    """Every model's answer to one question with its scores (read for that question alone)."""
    return _question_answers(_key(), video_id, task)
