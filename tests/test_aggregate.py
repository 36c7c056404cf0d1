"""Aggregation: pillars and the AnomEval reconstruction, all/valid, video-clustered CIs, paired comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecva_core.metrics.aggregate import (
    ANOMEVAL_LABEL,
    combine_leaderboards,
    compare_models,
    leaderboard,
    model_summary,
    question_table,
)
from ecva_core.metrics.stats import bootstrap_weights, percentile_ci

TASKS = ("Description", "Cause", "Result")


def _row(model, video, task, metric, value, status="ok", probe=""):
    return {
        "model": model, "video_id": video, "task": task, "probe": probe, "metric": metric,
        "value": value, "status": status, "reason": "",
    }  # fmt: skip


def _judged(model: str, videos=("1", "2"), consistency=1.0, logic=5.0, keyphrase=0.5, hallucination=1.0):
    rows = []
    for video in videos:
        for task in TASKS:
            rows += [
                _row(model, video, task, "judge_consistency", consistency),
                _row(model, video, task, "judge_logic", logic),
                _row(model, video, task, "judge_keyphrase", keyphrase),
                _row(model, video, task, "bleu4", 0.2),
            ]
            if hallucination is not None:
                rows.append(_row(model, video, task, "judge_hallucination", hallucination, probe="no_keyframes"))
    return rows


def test_anomeval_is_the_weighted_pillars():
    frame = pd.DataFrame(_judged("m", consistency=1.0, logic=4.0, keyphrase=0.5, hallucination=0.0))
    row = leaderboard(frame, n_boot=50).iloc[0]
    basic = (0.5 + 4.0 / 5) / 2
    assert row["basic"] == pytest.approx(basic)
    assert row["anomeval"] == pytest.approx(0.2 * basic + 0.4 * 1.0 + 0.4 * 0.0)
    assert row["anomeval_covers"] == "basic+consistency+hallucination"
    assert row["n_videos"] == 2 and row["n_questions"] == 6
    assert "reconstruction" in ANOMEVAL_LABEL


def test_unmeasured_pillar_is_reported_and_weights_renormalised():
    frame = pd.DataFrame(_judged("m", consistency=1.0, logic=5.0, keyphrase=1.0, hallucination=None))
    row = leaderboard(frame, n_boot=50).iloc[0]
    assert np.isnan(row["hallucination"])
    assert row["anomeval_covers"] == "basic+consistency" and row["not_measured"] == "hallucination"
    assert np.isnan(row["anomeval"])  # "AnomEval" is the complete score only
    assert row["anomeval_partial"] == pytest.approx((0.2 * 1.0 + 0.4 * 1.0) / 0.6)
    text_only = pd.DataFrame([_row("t", "1", "Cause", "bleu4", 0.3)])
    only = leaderboard(text_only, n_boot=10).iloc[0]
    assert only["anomeval_covers"] == "not measured" and np.isnan(only["anomeval"])
    assert only["bleu4"] == pytest.approx(0.3)


def _forty_videos(model: str, hallucination: bool, seed: int) -> list[dict]:
    """40 videos of judged answers; with ``hallucination`` also probe answers (a weak abstainer)."""
    rng = np.random.default_rng(seed)
    rows = []
    for video in range(40):
        for task in TASKS:
            rows += [
                _row(model, str(video), task, "judge_consistency", float(rng.random() < 0.55)),
                _row(model, str(video), task, "judge_logic", float(rng.integers(1, 5))),
                _row(model, str(video), task, "judge_keyphrase", float(rng.integers(0, 5)) / 4),
                _row(model, str(video), task, "semantic", 0.9 if hallucination else 0.5),
            ]
            if hallucination:
                value = float(rng.random() < 0.25)
                rows.append(_row(model, str(video), task, "judge_hallucination", value, probe="no_keyframes"))
    return rows


def test_a_partial_anomeval_ranks_after_every_complete_one():
    frame = pd.DataFrame(_forty_videos("complete", True, 1) + _forty_videos("partial", False, 1))
    board = leaderboard(frame, n_boot=50)
    complete, partial = board.set_index("model").loc["complete"], board.set_index("model").loc["partial"]
    assert partial["anomeval_partial"] > complete["anomeval"]  # the partial figure is higher ...
    assert list(board["model"]) == ["complete", "partial"]  # ... and still ranks after the complete one
    assert np.isnan(partial["anomeval"]) and np.isnan(complete["anomeval_partial"])
    assert (complete["anomeval_covers"], partial["anomeval_covers"]) == (
        "basic+consistency+hallucination",
        "basic+consistency",
    )
    assert list(combine_leaderboards([leaderboard(frame[frame["model"] == m], n_boot=50) for m in
                                      ("partial", "complete")])["model"]) == ["complete", "partial"]  # fmt: skip


def test_compare_of_different_coverage_names_the_missing_pillars_instead_of_dropping_one():
    frame = pd.DataFrame(_forty_videos("complete", True, 1) + _forty_videos("partial", False, 2))
    result = compare_models(frame, "complete", "partial", measure="anomeval", n_boot=50)
    assert result["comparable"] is False and result["missing_pillars"] == {"partial": ["hallucination"]}
    assert np.isnan(result["diff"]) and not result["significant"]
    pillar = compare_models(frame, "complete", "partial", measure="consistency", n_boot=50)
    assert pillar["n_questions"] == 120 and not np.isnan(pillar["diff"])


def test_hallucination_reading_picks_the_metric_that_feeds_the_pillar():
    rows = _judged("m", hallucination=1.0)
    rows += [_row("m", v, t, "judge_hallucination_pair", 0.0, probe="no_keyframes") for v in ("1", "2") for t in TASKS]
    frame = pd.DataFrame(rows)
    official = leaderboard(frame, n_boot=10).iloc[0]
    pair = leaderboard(frame, n_boot=10, hallucination="pair").iloc[0]
    assert official["hallucination"] == 1.0 and pair["hallucination"] == 0.0
    assert (official["hallucination_reading"], pair["hallucination_reading"]) == ("abstention", "pair")
    assert official["anomeval"] - pair["anomeval"] == pytest.approx(0.4)
    assert pair["judge_hallucination_pair"] == 0.0 and pair["judge_hallucination"] == 1.0


def test_probe_rows_feed_only_hallucination():
    rows = _judged("m", hallucination=1.0)
    rows.append(_row("m", "1", "Cause", "judge_consistency", 0.0, probe="no_keyframes"))  # ignored
    rows.append(_row("m", "1", "Cause", "judge_hallucination", 0.0))  # not a probe answer: ignored
    row = leaderboard(pd.DataFrame(rows), n_boot=10).iloc[0]
    assert row["consistency"] == pytest.approx(1.0) and row["hallucination"] == pytest.approx(1.0)


def test_all_counts_failures_as_zero_and_valid_excludes_them():
    rows = [
        _row("m", "1", "Cause", "judge_consistency", 1.0),
        _row("m", "2", "Cause", "judge_consistency", None, status="failed"),
        _row("m", "3", "Cause", "judge_consistency", None, status="skipped"),
        _row("m", "3", "Cause", "bleu4", 0.4),
    ]
    frame = pd.DataFrame(rows)
    all_ = leaderboard(frame, variant="all", n_boot=10).iloc[0]
    valid = leaderboard(frame, variant="valid", n_boot=10).iloc[0]
    assert all_["consistency"] == pytest.approx(0.5)
    assert valid["consistency"] == pytest.approx(1.0)
    assert all_["n_failed"] == 1 and all_["n_skipped"] == 1
    assert all_["variant"] == "all" and valid["variant"] == "valid"
    with pytest.raises(ValueError, match="variant"):
        leaderboard(frame, variant="best")


def test_tiou_gives_recall_at_thresholds_and_miou():
    values = [0.1, 0.35, 0.55, 0.8]
    rows = [_row("m", str(i), "Timestamp", "tiou", v) for i, v in enumerate(values)]
    rows.append(_row("m", "9", "Timestamp", "tiou", None, status="failed"))
    row = leaderboard(pd.DataFrame(rows), n_boot=10).iloc[0]
    assert row["R@0.3"] == pytest.approx(3 / 5)
    assert row["R@0.5"] == pytest.approx(2 / 5)
    assert row["R@0.7"] == pytest.approx(1 / 5)
    assert row["mIoU"] == pytest.approx(sum(values) / 5)


def _random_frame(questions_per_video: int, seed: int = 3, n_videos: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_video = rng.random(n_videos)
    rows = [
        _row("m", str(v), TASKS[q], "semantic", per_video[v])
        for v in range(n_videos)
        for q in range(questions_per_video)
    ]
    return pd.DataFrame(rows)


def test_bootstrap_resamples_videos_not_questions():
    """Three identical questions per video carry one video's information: the CI must not shrink."""
    one = leaderboard(_random_frame(1), n_boot=400, seed=7).iloc[0]
    three = leaderboard(_random_frame(3), n_boot=400, seed=7).iloc[0]
    assert three["semantic"] == pytest.approx(one["semantic"])
    assert (three["semantic_lo"], three["semantic_hi"]) == pytest.approx((one["semantic_lo"], one["semantic_hi"]))
    assert one["semantic_lo"] < one["semantic"] < one["semantic_hi"]
    again = leaderboard(_random_frame(3), n_boot=400, seed=7).iloc[0]
    assert again["semantic_lo"] == three["semantic_lo"]  # seeded


def test_bootstrap_weights_and_interval():
    weights = bootstrap_weights(5, 200, seed=1)
    assert weights.shape == (200, 5) and (weights.sum(axis=1) == 5).all()
    lo, hi = percentile_ci(np.arange(1001, dtype=float).reshape(-1, 1))
    assert (lo[0], hi[0]) == pytest.approx((25.0, 975.0))


def test_by_task_and_by_category():
    frame = pd.DataFrame(_judged("a") + _judged("b", consistency=0.0))
    by_task = leaderboard(frame, by="task", n_boot=20)
    assert set(by_task["task"]) == set(TASKS)
    assert dict(zip(by_task["task"], by_task["facet"], strict=True)) == {
        "Description": "What", "Cause": "Why", "Result": "How"
    }  # fmt: skip
    assert by_task.iloc[0]["model"] == "a"  # sorted best first
    videos = pd.DataFrame(
        {"video_id": ["1", "2"], "category_major": [5, 9], "category_name": ["Traffic Accidents", "Fire"]}
    )
    by_cat = leaderboard(frame, videos, by="category", n_boot=20)
    assert set(zip(by_cat["model"], by_cat["category_name"], strict=True)) == {
        ("a", "Traffic Accidents"), ("a", "Fire"), ("b", "Traffic Accidents"), ("b", "Fire")
    }  # fmt: skip
    assert (by_cat["n_videos"] == 1).all()
    with pytest.raises(ValueError, match="videos frame"):
        leaderboard(frame, by="category")


def test_paired_comparison_uses_common_questions_only():
    a = _judged("a", videos=("1", "2", "3"), consistency=1.0)
    b = _judged("b", videos=("1", "2"), consistency=0.0)
    frame = pd.DataFrame(a + b)
    result = compare_models(frame, "a", "b", measure="consistency", n_boot=200)
    assert result["n_questions"] == 6 and result["n_videos"] == 2
    assert result["diff"] == pytest.approx(1.0)
    assert result["ci_low"] == pytest.approx(1.0) and result["significant"]
    overall = compare_models(frame, "a", "b", n_boot=200)
    assert overall["diff"] == pytest.approx(0.4 * 1.0)  # only consistency differs, weight 0.4
    assert overall["covers"] == "basic+consistency+hallucination"
    same = compare_models(frame, "a", "a", measure="bleu4", n_boot=50)
    assert same["diff"] == 0.0 and not same["significant"]


def test_paired_comparison_ci_reflects_noise():
    rng = np.random.default_rng(0)
    rows = []
    for v in range(80):
        for task in TASKS:
            base = rng.random()
            rows.append(_row("a", str(v), task, "semantic", base + 0.02))
            rows.append(_row("b", str(v), task, "semantic", base + rng.normal(0, 0.3)))
    result = compare_models(pd.DataFrame(rows), "a", "b", measure="semantic", n_boot=500)
    assert result["ci_low"] < result["diff"] < result["ci_high"]
    assert result["n_questions"] == 240


def test_question_table_and_summary_shape():
    frame = pd.DataFrame([*_judged("m"), _row("m", "1", "Classification", "cls_major", 1.0)])
    table = question_table(frame)
    assert len(table) == 7 and {"basic", "consistency", "hallucination", "cls_major"} <= set(table.columns)
    summary = model_summary(frame, "m", n_boot=20)
    assert set(summary["variants"]) == {"all", "valid"}
    overall = summary["variants"]["all"]["overall"]
    assert overall["cls_major"] == 1.0 and overall["n_questions"] == 7
    assert set(summary["variants"]["all"]["tasks"]) == {*TASKS, "Classification"}


def test_leaderboard_scales_to_many_models():
    """20 models x 3,000 questions x 8 metrics runs through the vectorised path (timing is benchmarked)."""
    rng = np.random.default_rng(0)
    n_models, n_videos, metrics = 20, 1000, ["bleu4", "rougeL", "semantic", "judge_consistency"]
    n = n_videos * 3 * len(metrics)
    frames = [
        pd.DataFrame(
            {
                "model": f"m{m:02d}",
                "video_id": np.repeat(np.arange(n_videos).astype(str), 3 * len(metrics)),
                "task": np.tile(np.repeat(TASKS, len(metrics)), n_videos),
                "probe": "",
                "metric": np.tile(metrics, 3 * n_videos),
                "value": rng.random(n) * (m + 1) / n_models,
                "status": "ok",
                "reason": "",
            }
        )
        for m in range(n_models)
    ]
    board = leaderboard(pd.concat(frames, ignore_index=True))
    assert len(board) == n_models and board.iloc[0]["model"] == "m19"
    assert (board["n_questions"] == 3000).all()


def test_empty_and_all_skipped_frames_give_empty_results():
    empty = pd.DataFrame(columns=["model", "video_id", "task", "probe", "metric", "value", "status", "reason"])
    assert leaderboard(empty).empty
    skipped = pd.DataFrame([_row("a", "1", "Cause", "bleu4", None, status="skipped")])
    assert leaderboard(skipped, by="task").empty
    result = compare_models(empty, "a", "b")
    assert result["n_questions"] == 0 and np.isnan(result["diff"]) and not result["significant"]
    assert model_summary(empty, "a", n_boot=10)["variants"]["all"] == {"overall": {}, "tasks": {}}


@pytest.mark.parametrize("variant", ["all", "valid"])
@pytest.mark.parametrize("by", [None, "task", "category"])
def test_per_model_leaderboards_combine_into_the_one_over_all_scores(by, variant):
    """The explorer caches each model's rows; combined, they equal one call over every model's scores,
    even when models have different metrics, video counts, failures, or only skipped scores."""
    rng = np.random.default_rng(7)
    rows = _judged("judged-b", videos=[str(v) for v in range(12)], hallucination=None)
    rows += _judged("judged-a", videos=[str(v) for v in range(9)], logic=3.0)
    rows += [
        _row("text-c", str(v), task, metric, float(rng.random()), "failed" if rng.random() < 0.2 else "ok")
        for v in range(12)
        for task in TASKS
        for metric in ("rougeL", "zz_custom")
    ]
    rows += [_row("text-c", str(v), "Timestamp", "tiou", float(rng.random())) for v in range(5)]
    rows += [_row("skipped-d", "1", "Cause", "bleu4", None, status="skipped")]
    frame = pd.DataFrame(rows)
    videos = pd.DataFrame(
        {
            "video_id": [str(v) for v in range(12)],
            "category_major": [v % 3 for v in range(12)],
            "category_name": [f"cat {v % 3}" for v in range(12)],
        }
    )
    whole = leaderboard(frame, videos=videos, by=by, variant=variant, n_boot=200)
    per_model = [
        leaderboard(group, videos=videos, by=by, variant=variant, n_boot=200)
        for _, group in frame.groupby("model", sort=False)
    ]
    combined = combine_leaderboards(per_model, by=by)
    # Same reduction per model on both paths; the tolerance only guards against a BLAS that is not
    # deterministic for one shape, far below the three decimals any table shows.
    pd.testing.assert_frame_equal(combined, whole, check_exact=False, rtol=1e-9, atol=1e-12)
    assert set(combined["model"]) == {"judged-a", "judged-b", "text-c"}
    assert combine_leaderboards(per_model[-1:], by=by).empty
