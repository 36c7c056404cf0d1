"""The Breakdown, Compare and question pages read only what they show, and draw what the full frames draw."""

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
        if kwargs.get("question") is not None:
            return original(self, models, *args, **kwargs)
        if models is None:
            raise AssertionError("read every model's scores")
        reads.append(tuple(models))
        return original(self, models, *args, **kwargs)

    def lean_per_model_only(self, models=None, *args, **kwargs):
        if models is None:
            raise AssertionError("read every model's scores")
        reads.append(tuple(models))
        return original_lean(self, models, *args, **kwargs)

    original_lean = ResultsDB.aggregate_frame
    monkeypatch.setattr(ResultsDB, "scores_frame", per_model_only)
    monkeypatch.setattr(ResultsDB, "aggregate_frame", lean_per_model_only)
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
    for cached in (state._model_scores, state._lean_scores, state._catalog, state._breakdown, state._compare):
        cached.clear()


def test_pages_read_only_the_chosen_models_and_match_the_full_frame(
    scored_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecva_apps.explorer import state
    from ecva_core.views.breakdown import breakdown_view
    from ecva_core.views.common import breakdown_metrics
    from ecva_core.views.compare import compare_view

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
        per_model_parts = {(m,) for m in models}  # the catalog's leaderboard parts read one model at a time
        assert set(reads) - per_model_parts == {tuple(models[:2]), (models[0], models[2])}

    ds = state.dataset()
    full = state.open_db().scores_frame()
    assert models == sorted(full["model"].unique()) and measures == breakdown_metrics(full)
    for (metric, mode), view in got_breakdown.items():
        _assert_same_breakdown(view, breakdown_view(full, ds, models=tuple(models[:2]), metric=metric, mode=mode))
    for (metric, mode), view in got_compare.items():
        _assert_same_compare(view, compare_view(full, ds, models[0], models[2], metric=metric, mode=mode))


def test_question_explorer_reads_only_the_measure_it_shows_and_matches_the_full_frames(
    scored_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecva_apps.explorer import state
    from ecva_core.results.db import ResultsDB
    from ecva_core.views.questions import QuestionFilter, question_answers, question_rows

    _clear(state)
    for cached in (state._answer_status, state._model_predictions, state._question_rows,
                   state._question_answers):  # fmt: skip
        cached.clear()
    db = state.open_db()
    models = state.scored_models()
    filters = [
        QuestionFilter(metric="bleu1"),
        QuestionFilter(metric="consistency", models=tuple(models[:2]), failures_only=True),
        QuestionFilter(metric="anomeval", disagree_min=0.1),
        QuestionFilter(metric="rougeL", search="the", models=(models[-1],)),
    ]
    lean_reads: list[tuple] = []
    original = ResultsDB.aggregate_frame

    def recorded(self, chosen=None, metrics=None, keep_failed=False):
        lean_reads.append((tuple(chosen or ()), tuple(metrics or ())))
        return original(self, chosen, metrics, keep_failed)

    with pytest.MonkeyPatch.context() as patch:
        _forbid_full_read(patch)
        patch.setattr(ResultsDB, "predictions_frame", _only_for_models_or_one_question(ResultsDB.predictions_frame))
        patch.setattr(ResultsDB, "aggregate_frame", recorded)
        got = [state.question_rows(flt) for flt in filters]
        vid, task = got[0]["video_id"].iloc[0], got[0]["task"].iloc[0]
        answers = state.question_answers(vid, task)
    assert ((tuple(models), ("bleu1",)) in lean_reads) and all(metrics for _, metrics in lean_reads)
    ds, full, preds = state.dataset(), db.scores_frame(), db.predictions_frame()
    for flt, rows in zip(filters, got, strict=True):
        pd.testing.assert_frame_equal(rows, question_rows(ds, full, preds, flt))
    assert answers == question_answers(full, preds, vid, task) and answers


def _only_for_models_or_one_question(original):
    def guarded(self, models=None, *args, question=None, **kwargs):
        if models is None and question is None:
            raise AssertionError("read every model's answers")
        return original(self, models, *args, question=question, **kwargs)

    return guarded
