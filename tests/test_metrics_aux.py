"""Auxiliary tasks: category answers and timestamp answers in the shapes models emit, and their scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecva_core.metrics.auxiliary import (
    parse_categories,
    parse_category_answer,
    parse_segments,
    score_auxiliary,
    score_classification,
    score_timestamp,
)
from ecva_core.schema import Annotation, Category, Prediction, PredictionStatus, ScoreStatus, Segment, Task


@pytest.mark.parametrize(
    ("answer", "major", "sub"),
    [
        ("[5]", 5, None),
        ("[5] ", 5, None),
        ("[5-1]", 5, 1),
        ("[5-1,4]", 5, 1),
        ("[10]\n    The video shows a car running a red light", 10, None),
        ("5. Traffic Accidents", 5, None),
        ("5-1 Motor", 5, 1),
        ("Traffic accident", 5, None),
        ("The category is 9", 9, None),
        ("Answer: 11", 11, None),
        ("I think this is a Robbery at a shop", 6, None),
        ("forbidden to burn", 11, None),
        ("Pedestrian incident on the roadside", 8, None),
    ],
)
def test_category_answers_parse(answer: str, major: int, sub: int | None):
    parsed = parse_category_answer(answer)
    assert parsed is not None
    assert (parsed.major, parsed.sub) == (major, sub)


def test_unparsable_category_answer_is_a_failure_not_a_zero():
    assert parse_category_answer("I cannot tell from the video") is None
    scores = score_classification("I cannot tell from the video", [Category(5, 1, 5)])
    assert scores["cls_major"].status is ScoreStatus.FAILED and scores["cls_major"].value is None


def test_major_and_sub_scoring_any_annotated_category_counts():
    truth = parse_categories("[5-1,5][10-3,4]")
    assert truth == [Category(5, 1, 5), Category(10, 3, 4)]
    assert score_classification("[10]", truth)["cls_major"].value == 1.0
    assert score_classification("[9]", truth)["cls_major"].value == 0.0
    assert score_classification("[10-3]", truth)["cls_sub"].value == 1.0
    assert score_classification("[10-2]", truth)["cls_sub"].value == 0.0
    only_major = score_classification("[5]", truth)["cls_sub"]
    assert only_major.status is ScoreStatus.SKIPPED and "no sub-category" in only_major.reason
    no_truth = score_classification("[5]", [])
    assert all(v.status is ScoreStatus.SKIPPED for v in no_truth.values())


def test_real_videollama2_classification_file(shared_ecva: Path):
    """Answers like ``[1]`` against truth like ``[2-2,5]``: majors are compared, subs are not claimed."""
    rows = json.loads((shared_ecva / "model_outputs" / "videollama2_classification.json").read_text())
    first = next(r for r in rows if r["video_file"] == "00348.mp4")
    assert (first["output"].strip(), first["human_expert_answer"]) == ("[1]", "[2-2,5]")
    result = score_classification(first["output"], parse_categories(first["human_expert_answer"]))
    assert result["cls_major"].value == 0.0
    assert result["cls_sub"].status is ScoreStatus.SKIPPED
    majors = [score_classification(r["output"], parse_categories(r["human_expert_answer"]))["cls_major"] for r in rows]
    scored = [m.value for m in majors if m.status is ScoreStatus.OK]
    skipped = [m for m in majors if m.status is ScoreStatus.SKIPPED]
    assert len(rows) == 985
    assert not [m for m in majors if m.status is ScoreStatus.FAILED]  # every answer names a category
    assert len(skipped) == 64  # truth cells that are notes, not codes
    assert sum(scored) == 423 and len(scored) == 921


@pytest.mark.parametrize(
    ("answer", "segments"),
    [
        ("[12, 30]", [(12, 30)]),
        ("[0:12, 0:30]", [(12, 30)]),
        ("[00:00:12, 00:00:30]", [(12, 30)]),
        ("The anomaly happens from 12s to 30s.", [(12, 30)]),
        ("12-30 seconds", [(12, 30)]),
        ("between 12.5 and 20.25 seconds", [(12.5, 20.25)]),
        ("[0012,0030]", [(12, 30)]),
        ("[0052,0114][0118,0144]", [(52, 114), (118, 144)]),  # seconds, as the prompt asks (duration unknown)
        ("between 2 and 5 minutes", [(120, 300)]),
        ("from 2 minutes to 5 minutes", [(120, 300)]),
        ("2-3 min", [(120, 180)]),
        ("[1:30, 2:00]", [(90, 120)]),
        ("from 1m12s to 1m30s", [(72, 90)]),
        ("It lasts 3 seconds, from 0:05 to 0:08", [(5, 8)]),
        ("[1:02 - 1:10], [2:00 - 2:15]", [(62, 70), (120, 135)]),
        ("no anomaly visible", []),
        ("[30, 12]", [(12, 30)]),  # reversed: swapped
    ],
)
def test_timestamp_shapes(answer: str, segments: list[tuple[float, float]]):
    assert [(s.start, s.end) for s in parse_segments(answer)] == [
        (pytest.approx(a), pytest.approx(b)) for a, b in segments
    ]


@pytest.mark.parametrize(
    ("duration", "segments"),
    [
        (150.0, [(52, 114), (118, 144)]),  # both readings fit: seconds
        (110.0, [(52, 74), (78, 104)]),  # seconds overrun the clip, MMSS fits: MMSS
        (60.0, [(52, 114), (118, 144)]),  # neither fits: seconds
        (None, [(52, 114), (118, 144)]),  # unknown duration: seconds
    ],
)
def test_four_digit_pairs_are_read_the_way_that_fits_the_clip(duration, segments):
    assert [(s.start, s.end) for s in parse_segments("[0052,0114][0118,0144]", duration)] == segments


def test_four_digit_pair_in_seconds_beyond_mmss_range_stays_seconds():
    assert [(s.start, s.end) for s in parse_segments("[0100,0175]", 100.0)] == [(100, 175)]  # 0175 is no MMSS


def test_tiou_is_the_best_matching_interval_against_the_moments():
    moments = [Segment(0, 10), Segment(20, 40)]
    assert score_timestamp("[20, 40]", moments)["tiou"].value == pytest.approx(1.0)
    assert score_timestamp("[25, 45]", moments)["tiou"].value == pytest.approx(15 / 25)
    # several intervals: the best-matching one is scored, not the first
    best = score_timestamp("[40,50],[12,30]", moments)["tiou"]
    assert best.value == pytest.approx(10 / 28) and "12-30" in best.reason
    failed = score_timestamp("somewhere in the middle", moments)["tiou"]
    assert failed.status is ScoreStatus.FAILED and failed.value is None
    assert score_timestamp("[1, 2]", [])["tiou"].status is ScoreStatus.SKIPPED


def test_score_auxiliary_builds_scores_and_fails_error_predictions():
    annotation = Annotation(categories=[Category(9, 1, 5)], moments=[Segment(5, 15)])
    cls = score_auxiliary(Prediction("7", Task.CLASSIFICATION, "[9-1]"), annotation)
    assert {(s.metric, s.value) for s in cls} == {("cls_major", 1.0), ("cls_sub", 1.0)}
    assert all(s.video_id == "7" and s.task is Task.CLASSIFICATION for s in cls)
    ts = score_auxiliary(Prediction("7", Task.TIMESTAMP, "from 5 to 10 seconds", probe=None), annotation)
    assert [(s.metric, s.value) for s in ts] == [("tiou", pytest.approx(0.5))]
    error = score_auxiliary(Prediction("7", Task.TIMESTAMP, "ERROR", status=PredictionStatus.ERROR), annotation)
    assert error[0].status is ScoreStatus.FAILED and error[0].value is None
    with pytest.raises(ValueError, match="not an auxiliary task"):
        score_auxiliary(Prediction("7", Task.CAUSE, "x"), annotation)
