"""The read views (ecva_core.views) on the real tiny annotation file and hand-made score frames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecva_core.schema import KEYFRAMES_REMOVED_PROBE
from ecva_core.views import breakdown, common, compare, dataset, questions
from tests.submissions.tiny import load_tiny

TASKS = ("Description", "Cause", "Result")
COLUMNS = ["model", "video_id", "task", "probe", "metric", "value", "status", "reason"]


@pytest.fixture
def tiny(tmp_path: Path):
    return load_tiny(tmp_path / "tiny")


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _scores() -> pd.DataFrame:
    """Model a: semantic 0.9 everywhere, judged; model b: semantic 0.1 on video 1, 0.8 elsewhere,
    its Cause answer on video 2 failed."""
    rows = []
    for video in "123456":
        for task in TASKS:
            rows.append(("a", video, task, "", "semantic", 0.9, "ok", ""))
            rows.append(("a", video, task, "", "judge_consistency", 1.0, "ok", "consistent"))
            failed = video == "2" and task == "Cause"
            value = None if failed else 0.1 if video == "1" else 0.8
            rows.append(("b", video, task, "", "semantic", value, "failed" if failed else "ok", ""))
    rows.append(("a", "1", "Cause", KEYFRAMES_REMOVED_PROBE, "judge_hallucination", 1.0, "ok", "abstains"))
    return _frame(rows)


def _answers() -> pd.DataFrame:
    rows = [(m, v, t, "", f"{m} says the car hit a cyclist" if v == "1" else "nothing", "ok")
            for m in "ab" for v in "123456" for t in TASKS]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["model", "video_id", "task", "probe", "output", "status"])
    frame.loc[(frame["model"] == "b") & (frame["video_id"] == "2") & (frame["task"] == "Cause"), "status"] = "error"
    return frame


def test_measures_offered_put_anomeval_and_judged_pillars_first():
    metrics = common.available_metrics(_scores())
    assert metrics[:3] == ["anomeval", "consistency", "hallucination"]
    assert metrics[3:] == ["judge_consistency", "semantic", "judge_hallucination"]
    assert common.default_metric(_scores()[lambda f: f["model"] == "b"]) == "semantic"
    assert common.split_model_task(f"x · {common.task_label('Cause')}") == ("x", "Cause")


def test_question_matrix_has_one_column_per_model_and_counts_failures_as_zero():
    matrix = common.question_matrix(_scores(), "semantic")
    assert list(matrix.columns) == ["a", "b"] and len(matrix) == 18
    assert matrix.loc[("2", "Cause"), "b"] == 0.0 and matrix.loc[("1", "Result"), "b"] == pytest.approx(0.1)
    valid = common.question_matrix(_scores(), "semantic", "valid")
    assert pd.isna(valid.loc[("2", "Cause"), "b"])


def test_question_rows_filter_on_disagreement_failures_search_and_category(tiny):
    scores, answers = _scores(), _answers()
    rows = questions.question_rows(tiny, scores, answers, questions.QuestionFilter(metric="semantic"))
    assert len(rows) == 18 and {"a", "b", "spread", "mean", "failures", "facet"} <= set(rows.columns)
    disagree = questions.question_rows(tiny, scores, answers, questions.QuestionFilter("semantic", disagree_min=0.5))
    assert set(zip(disagree["video_id"], disagree["task"], strict=True)) == {("1", t) for t in TASKS} | {("2", "Cause")}
    failed = questions.question_rows(tiny, scores, answers, questions.QuestionFilter("semantic", failures_only=True))
    assert list(zip(failed["video_id"], failed["task"], strict=True)) == [("2", "Cause")]
    found = questions.question_rows(tiny, scores, answers, questions.QuestionFilter("semantic", search="CYCLIST"))
    assert set(found["video_id"]) == {"1"}
    only_a = questions.question_rows(tiny, scores, answers, questions.QuestionFilter("semantic", models=("a",)))
    assert "b" not in only_a.columns and (only_a["spread"] == 0).all()
    major = int(found["major"].iloc[0])
    by_major = questions.question_rows(tiny, scores, answers, questions.QuestionFilter("semantic", majors=(major,)))
    assert (by_major["major"] == major).all() and len(by_major) < 18


def test_question_answers_put_each_models_answer_beside_its_scores_and_probe_apart():
    answers = questions.question_answers(_scores(), _answers(), "1", "Cause")
    assert [(a["model"], a["probe"]) for a in answers] == [("a", ""), ("a", KEYFRAMES_REMOVED_PROBE), ("b", "")]
    first = answers[0]
    assert first["output"] == "a says the car hit a cyclist"
    assert {s["metric"]: s["value"] for s in first["scores"]} == {"judge_consistency": 1.0, "semantic": 0.9}
    assert answers[1]["scores"][0]["reason"] == "abstains"


def test_first_question_follows_dataset_order(tiny):
    scores = _scores()
    assert questions.first_question(tiny, scores, "b") == ("1", "Description")
    assert questions.first_question(tiny, scores[scores["video_id"] != "1"], "a") == ("2", "Description")
    assert questions.first_question(tiny, scores, "nobody") is None


def test_dataset_summaries_come_from_the_annotation(tiny):
    counts = dataset.category_counts(tiny)
    assert counts["videos"].sum() == 6
    moments = dataset.moments_frame(tiny, "5")
    assert list(moments["start"]) == [1.0, 4.0] and moments["description"].iloc[1] == "He runs away"
    assert dataset.first_moment_start(tiny, "3") == 3.0
    assert dataset.expert_answers(tiny, "2")["Cause"] == "A man slipped on the wet floor."
    assert list(dataset.moment_lengths(tiny)["length_s"].head(2)) == [4.0, 3.0]
    assert list(dataset.flags_frame(tiny).columns) == ["video_id", "row", "field", "problem"]


def test_breakdown_view_tables_are_models_by_groups(tiny):
    view = breakdown.breakdown_view(_scores(), tiny, models=("a", "b"), metric="semantic")
    assert list(view.by_task.columns) == ["a", "b"] and list(view.by_task.index) == [
        common.task_label(t) for t in ("Cause", "Description", "Result")
    ]
    assert view.by_task.loc[common.task_label("Description"), "a"] == pytest.approx(0.9)
    assert list(view.by_category.columns) == ["a", "b"] and len(view.by_category) == 6
    assert "a · Cause (Why)" in view.task_pillar.index and view.metric_label == "Semantic similarity"
    assert view.by_metric.loc["a", "semantic"] == pytest.approx(0.9)


def test_paired_question_diffs_put_the_largest_difference_first():
    diffs = compare.paired_question_diffs(_scores(), "a", "b", "semantic")
    assert len(diffs) == 18 and diffs["diff"].iloc[0] == pytest.approx(0.9)  # the failed Cause of video 2
    assert diffs["diff"].abs().is_monotonic_decreasing
    assert compare.paired_question_diffs(_scores(), "a", "nobody", "semantic").empty
