"""The Breakdown and Compare pages read only the chosen models' scores, and draw what the full frame draws."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

MODES = ("all", "valid")


@pytest.fixture
def scored_env(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo dataset with its three submissions scored (two cheap metrics) into a private DB."""
    from ecva_core.dataset import load_dataset
    from ecva_core.dataset.demo import ensure_demo
    from ecva_core.results.db import ResultsDB, ScoreRow
    from ecva_core.results.scoring import score_submission

    demo = ensure_demo(isolated_home / "demo")
    db = ResultsDB(isolated_home / "results.db")
    monkeypatch.setenv("ECVA_DATA", str(demo))
    monkeypatch.setenv("ECVA_DB", str(db.path))
    ds = load_dataset(demo)
    for path in sorted((demo / "submissions").glob("*.json")):
        score_submission(path, path.stem, ds, db, metrics=["bleu1", "rougeL"])
    first = db.submissions()[0]["id"]
    judged = [p for p in db.stored_predictions(first) if not p.probe][:6]
    db.write_scores([ScoreRow(p.id, "judge_consistency", float(n % 2), "ok") for n, p in enumerate(judged)])
    return demo


def _forbid_full_read(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    from ecva_core.results.db import ResultsDB

    reads: list[tuple[str, ...]] = []
    original = ResultsDB.scores_frame

    def per_model_only(self, models=None, *args, **kwargs):
        if models is None:
            raise AssertionError("read every model's scores")
        reads.append(tuple(models))
        return original(self, models, *args, **kwargs)

    monkeypatch.setattr(ResultsDB, "scores_frame", per_model_only)
    return reads


def _assert_same_breakdown(got, want) -> None:
    for name in ("task_pillar", "by_category", "by_task", "by_metric"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name))
    assert got.metric_label == want.metric_label


def _assert_same_compare(got, want) -> None:
    for name in ("by_task", "by_category", "questions"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name))
    pd.testing.assert_series_equal(pd.Series(got.overall), pd.Series(want.overall))
    assert (got.metric_label, got.note) == (want.metric_label, want.note)


def _clear(state) -> None:
    for cached in (state._model_scores, state._catalog, state._breakdown, state._compare):
        cached.clear()


def test_pages_read_only_the_chosen_models_and_match_the_full_frame(
    scored_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecva_apps.explorer import state
    from ecva_core.results.queries import breakdown_metrics, breakdown_view, compare_view

    _clear(state)
    with pytest.MonkeyPatch.context() as patch:
        reads = _forbid_full_read(patch)
        models = state.scored_models()
        measures = state.score_measures()
        assert len(models) == 3 and "consistency" in measures and "bleu1" in measures
        got_breakdown = {
            (metric, mode): state.breakdown(tuple(models[:2]), metric, mode) for metric in measures for mode in MODES
        }
        got_compare = {
            (metric, mode): state.compare(models[0], models[2], metric, mode) for metric in measures for mode in MODES
        }
        assert set(reads) == {tuple(models[:2]), (models[0], models[2])}

    ds = state.dataset()
    full = state.open_db().scores_frame()
    assert models == sorted(full["model"].unique()) and measures == breakdown_metrics(full)
    for (metric, mode), view in got_breakdown.items():
        _assert_same_breakdown(view, breakdown_view(full, ds, models=tuple(models[:2]), metric=metric, mode=mode))
    for (metric, mode), view in got_compare.items():
        _assert_same_compare(view, compare_view(full, ds, models[0], models[2], metric=metric, mode=mode))


def test_a_full_frame_in_memory_is_filtered_not_read_again(
    scored_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecva_apps.explorer import state

    _clear(state)
    models = state.scored_models()
    from_db = state.model_scores(models[1:])
    state._model_scores.clear()
    full = state.scores()
    reads = _forbid_full_read(monkeypatch)
    filtered = state.model_scores(reversed(models[1:]))
    assert reads == []
    pd.testing.assert_frame_equal(filtered, from_db)
    assert set(filtered["model"]) == set(models[1:]) and len(filtered) < len(full)
    state._catalog.clear()
    assert state.scored_models() == models and reads == []
