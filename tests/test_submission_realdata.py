"""The seven real model-output files: they load, join by id to the real annotations, and score.

A join by list position (what the official scripts do) would pair almost every answer with
another video's reference; the join by (video_id, task) pairs each answer with the reference the
file itself carries in ``human_expert_answer``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ecva_core.results.db import ResultsDB
from ecva_core.results.scoring import score_submission
from ecva_core.results.submission import read_submission
from ecva_core.schema import PredictionStatus, Task, canonical_video_id

pytestmark = pytest.mark.realdata

# file -> (task, rows, ERROR rows in the file, expected, matched, missing, extra, failed among matched)
EXPECTED = {
    "video_llama_description.json": (Task.DESCRIPTION, 1000, 16, 983, 983, 0, 17, 3),
    "video_llama_reason.json": (Task.CAUSE, 1000, 16, 983, 983, 0, 17, 3),
    "video_llama_outcome.json": (Task.RESULT, 1000, 16, 983, 983, 0, 17, 3),
    "videollama2_new_description.json": (Task.DESCRIPTION, 1000, 14, 983, 983, 0, 17, 1),
    "videollama2_new_reason.json": (Task.CAUSE, 1000, 14, 983, 983, 0, 17, 1),
    "videollama2_new_outcome.json": (Task.RESULT, 1000, 14, 983, 983, 0, 17, 1),
    "videollama2_classification.json": (Task.CLASSIFICATION, 985, 0, 924, 922, 2, 63, 0),
}


@pytest.fixture(scope="module")
def real(shared_ecva: Path):
    from ecva_core.dataset import load_dataset

    return load_dataset(shared_ecva / "annotations.xlsx")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_loads_and_joins_with_exact_coverage(name: str, real, shared_ecva: Path) -> None:
    task, rows, errors, expected, matched, missing, extra, failed = EXPECTED[name]
    report = read_submission(shared_ecva / "model_outputs" / name, real)
    cov = report.coverage
    assert report.tasks == [task]
    assert (cov["rows"], cov["error_rows_in_file"]) == (rows, errors)
    assert (cov["expected"], cov["matched"], cov["missing"], cov["extra"], cov["failed"]) == (
        expected, matched, missing, extra, failed)
    assert cov["duplicate"] == 0 and cov["unattributed"] == 0
    # the extra rows are videos the annotators marked unusable (reason "/"), not unknown ids
    if task is not Task.CLASSIFICATION:
        assert cov["extra_unscorable"] == 17
    assert sum(p.status is PredictionStatus.ERROR for p in report.predictions) == failed
    assert all(p.output.strip() != "ERROR" for p in report.predictions if p.status is PredictionStatus.OK)


def test_error_rows_without_task_type_take_the_files_task(real, shared_ecva: Path) -> None:
    report = read_submission(shared_ecva / "model_outputs" / "videollama2_new_reason.json", real)
    assumed = [p for p in report.warnings if p.code == "task_assumed"]
    assert len(assumed) == 1 and assumed[0].problem.startswith("14 row(s) without task_type were taken as Cause")


@pytest.mark.parametrize(("name", "task"), [("videollama2_new_reason.json", Task.CAUSE),
                                            ("videollama2_new_outcome.json", Task.RESULT)])
def test_id_join_matches_the_files_own_references_and_a_position_join_does_not(
    name: str, task: Task, real, shared_ecva: Path
) -> None:
    rows = json.loads((shared_ecva / "model_outputs" / name).read_text(encoding="utf-8"))
    carried = {canonical_video_id(r["video_file"]): r["human_expert_answer"] for r in rows
               if "human_expert_answer" in r}
    report = read_submission(shared_ecva / "model_outputs" / name, real)
    ours = [p for p in report.predictions if p.video_id in carried]
    agree = sum(_norm(real.qa_item(p.video_id, task).answer) == _norm(carried[p.video_id]) for p in ours)
    assert len(ours) >= 980 and agree >= len(ours) - 1  # one reference differs only in its cell text
    misaligned_ours = sum(p.video_id != canonical_video_id(rows[p.row - 1]["video_file"]) for p in report.predictions)
    assert misaligned_ours == 0

    items = real.qa_items((task,))
    by_position = list(zip(rows, items, strict=False))
    misaligned = sum(canonical_video_id(r["video_file"]) != item.video_id for r, item in by_position)
    wrong_reference = sum(
        "human_expert_answer" in r and _norm(item.answer) != _norm(r["human_expert_answer"]) for r, item in by_position
    )
    assert misaligned >= 950 and wrong_reference >= 950
    # even sorted by id, a position join slips by one at every id the annotation leaves out
    ordered = sorted(rows, key=lambda r: int(canonical_video_id(r["video_file"])))
    slipped = sum(canonical_video_id(r["video_file"]) != item.video_id for r, item in zip(ordered, items, strict=False))
    assert slipped > 500


def test_probe_option_marks_the_hallucination_probe_answers(real, shared_ecva: Path) -> None:
    report = read_submission(shared_ecva / "model_outputs" / "videollama2_new_outcome.json", real, probe="no_keyframes")
    assert {p.probe for p in report.predictions} == {"no_keyframes"}
    assert report.coverage["probe"] == ["no_keyframes"]
    assert not [p for p in report.problems if p.code == "probe_prompt"]


def test_probe_wording_without_probe_option_is_pointed_out(real, shared_ecva: Path) -> None:
    probe_worded = read_submission(shared_ecva / "model_outputs" / "videollama2_new_outcome.json", real)
    hints = [p for p in probe_worded.problems if p.code == "probe_prompt"]
    assert len(hints) == 1 and "--probe" in hints[0].problem and hints[0].severity == "warning"
    plain = read_submission(shared_ecva / "model_outputs" / "video_llama_outcome.json", real)
    assert not [p for p in plain.problems if p.code == "probe_prompt"]


@pytest.mark.slow
def test_score_videollama_and_videollama2_with_text_metrics(real, shared_ecva: Path, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "real.db")
    metrics = ["bleu1", "bleu4", "rougeL"]
    v1 = score_submission(shared_ecva / "model_outputs" / "video_llama_reason.json", "VideoLLaMA", real, db,
                          metrics=metrics)
    v2 = score_submission(shared_ecva / "model_outputs" / "videollama2_new_reason.json", "VideoLLaMA2", real, db,
                          metrics=metrics)
    for summary, failed in ((v1, 3), (v2, 1)):
        cause = summary["tasks"]["Cause"]
        assert cause["n_questions"] == 983 and cause["n_videos"] == 983
        assert 0 < cause["rougeL"] < 1 and cause["rougeL_lo"] < cause["rougeL"] < cause["rougeL_hi"]
        assert summary["variants"]["valid"]["tasks"]["Cause"]["rougeL"] > cause["rougeL"]  # failures excluded
        assert summary["failures"]["failed_answer_scores"] == failed * len(metrics)
        assert summary["judge"]["status"] == "no judge configured"
    frame = db.scores_frame()
    assert len(frame) == 2 * 983 * len(metrics)
    failed = frame[frame["status"] == "failed"].groupby("model")["video_id"].agg(lambda s: sorted(set(s)))
    assert failed.to_dict() == {"VideoLLaMA": ["232", "67", "85"], "VideoLLaMA2": ["67"]}
