"""Submission parsing and validation: formats, the malformed corpus, joins by (video_id, task)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ecva_core.errors import SubmissionError
from ecva_core.results.db import ResultsDB
from ecva_core.results.scoring import score_submission
from ecva_core.results.submission import (
    SubmissionRejected,
    read_submission,
    task_from_file_name,
    validate_submission,
)
from ecva_core.schema import PredictionStatus, Task
from tests.submissions.generated import GENERATORS, generate
from tests.submissions.tiny import answer_rows, load_tiny

CORPUS = Path(__file__).parent / "submissions"
EXPECTATIONS = list(csv.DictReader((CORPUS / "expectations.csv").open(encoding="utf-8")))


@pytest.fixture
def dataset(tmp_path: Path):
    return load_tiny(tmp_path / "tiny")


def _write(path: Path, rows: object) -> Path:
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_corpus_is_large_enough() -> None:
    assert len(EXPECTATIONS) >= 25
    committed = {e["file"] for e in EXPECTATIONS if not e["generated"]}
    assert committed == {p.name for p in (CORPUS / "malformed").iterdir()}
    assert {e["generated"] for e in EXPECTATIONS if e["generated"]} == set(GENERATORS)


@pytest.fixture
def corpus_file(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Path]]:
    """A committed malformed file, or a big or deep one written for this test (removed afterwards: a
    200 MB file should not linger in pytest's kept temporary folders)."""
    made: list[Path] = []

    def get(case: dict[str, str]) -> Path:
        if not case["generated"]:
            return CORPUS / "malformed" / case["file"]
        made.append(generate(case["generated"], tmp_path / "generated", case["file"]))
        return made[-1]

    yield get
    for path in made:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("case", EXPECTATIONS, ids=[e["file"] for e in EXPECTATIONS])
def test_malformed_submission_is_rejected_and_stores_nothing(
    case: dict[str, str], dataset, tmp_path: Path, corpus_file
) -> None:
    path = corpus_file(case)
    db = ResultsDB(tmp_path / "results.db")
    before = (db.data_version(), db.models())
    with pytest.raises(SubmissionRejected) as info:
        score_submission(path, "m", dataset, db, task=case["task"] or None, judge=False, metrics=["bleu1"],
                         settings=_settings(case))
    first = info.value.first
    assert first.code == case["code"], str(info.value)
    assert first.row == (int(case["row"]) if case["row"] else None), str(info.value)
    if case["field"]:
        assert first.field == case["field"], str(info.value)
    assert str(path) in str(info.value)
    assert (db.data_version(), db.models()) == before
    assert db.scores_frame().empty and db.predictions_frame().empty


@pytest.mark.parametrize("case", EXPECTATIONS, ids=[e["file"] for e in EXPECTATIONS])
def test_ecva_score_on_a_malformed_file_prints_the_error_not_a_traceback(
    case: dict[str, str], dataset, tmp_path: Path, corpus_file
) -> None:
    from click.testing import CliRunner

    from ecva_core.cli.main import cli

    path = corpus_file(case)
    args = ["score", str(path), "--model", "m", "--no-judge", "--data", str(dataset.annotation_file)]
    args += ["--db", str(tmp_path / "r.db")] + (["--task", case["task"]] if case["task"] else [])
    env = {"ECVA_MAX_SUBMISSION_MB": case["max_mb"]} if case["max_mb"] else {}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and str(path) in result.output and "rejected" in result.output


def test_a_200_mb_submission_is_refused_before_it_is_read(dataset, tmp_path: Path) -> None:
    import tracemalloc

    path = generate("upload_200mb", tmp_path, "answers.json")
    assert path.stat().st_size > 200 * 1024 * 1024
    tracemalloc.start()
    try:
        report = validate_submission(path, dataset)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        path.unlink()
    assert [p.code for p in report.errors] == ["oversize"] and "ECVA_MAX_SUBMISSION_MB" in str(report.errors[0])
    assert peak < 10 * 1024 * 1024


def _settings(case: dict[str, str]):
    from ecva_core.config import get_settings

    settings = get_settings()
    if case["max_mb"]:
        from dataclasses import replace

        settings = replace(settings, max_submission_mb=float(case["max_mb"]))
    return settings


def test_rejection_is_a_submission_error_with_row_and_field(dataset) -> None:
    with pytest.raises(SubmissionError, match=r"row 2, field 'output': expected a string"):
        read_submission(CORPUS / "malformed" / "output_number.json", dataset)


def test_official_format_joins_by_id_not_position(dataset, tmp_path: Path) -> None:
    rows = answer_rows(tasks=("Cause",))
    rows.reverse()
    report = read_submission(_write(tmp_path / "sub.json", rows), dataset)
    assert report.ok and report.tasks == [Task.CAUSE]
    by_id = {p.video_id: p.output for p in report.predictions}
    assert by_id["1"] == dataset.qa_item("1", Task.CAUSE).answer
    assert report.coverage["expected"] == 6 and report.coverage["matched"] == 6
    assert report.coverage["missing"] == 0 and report.coverage["failed"] == 0


def test_coverage_counts_missing_extra_error_and_empty(dataset, tmp_path: Path) -> None:
    rows = answer_rows(tasks=("Result",), ids=(1, 2, 3, 4))
    rows[1]["output"] = "ERROR"
    rows[2]["output"] = "   "
    rows.append({"video_file": "00777.mp4", "output": "x", "task_type": "Result"})
    rows.append({"video_file": "ERROR", "prompt": "ERROR", "output": "ERROR"})
    report = read_submission(_write(tmp_path / "sub.json", rows), dataset)
    cov = report.coverage
    assert (cov["expected"], cov["matched"], cov["missing"], cov["extra"]) == (6, 4, 2, 1)
    assert (cov["failed"], cov["error_rows"], cov["empty_rows"], cov["unattributed"]) == (3, 2, 1, 1)
    statuses = {p.video_id: p.status for p in report.predictions}
    assert statuses["2"] is PredictionStatus.ERROR and statuses["3"] is PredictionStatus.EMPTY
    codes = {(p.code, p.row) for p in report.warnings}
    assert {("error_row", 2), ("empty_output", 3), ("unknown_video", 5), ("error_row_no_video", 6)} <= codes


def test_older_per_task_file_takes_task_from_name_or_option(dataset, tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "task_type"} for r in answer_rows(tasks=("Cause",))]
    named = read_submission(_write(tmp_path / "model_reason.json", rows), dataset)
    assert named.tasks == [Task.CAUSE]
    assert any(p.code == "task_assumed" for p in named.warnings)
    given = read_submission(_write(tmp_path / "answers.json", rows), dataset, task="why")
    assert given.tasks == [Task.CAUSE] and not any(p.code == "task_assumed" for p in given.warnings)


@pytest.mark.parametrize(
    ("name", "task"),
    [("video_llama_reason.json", Task.CAUSE), ("videollama2_new_outcome.json", Task.RESULT),
     ("x_description.json", Task.DESCRIPTION), ("videollama2_classification.json", Task.CLASSIFICATION),
     ("answers.json", None)],
)
def test_task_from_file_name(name: str, task: Task | None) -> None:
    assert task_from_file_name(Path(name)) == task


def test_jsonl_and_csv_with_bom_and_probe(dataset, tmp_path: Path) -> None:
    rows = answer_rows(tasks=("Description",), ids=(1, 2))
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    report = read_submission(jsonl, dataset, probe="no_keyframes")
    assert report.format == "jsonl" and {p.probe for p in report.predictions} == {"no_keyframes"}
    csv_path = tmp_path / "a.csv"
    with csv_path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "probe"])
        writer.writeheader()
        writer.writerow({**rows[0], "probe": ""})
        writer.writerow({**rows[1], "probe": "no_keyframes"})
    report = read_submission(csv_path, dataset)
    assert report.format == "csv"
    assert [p.probe for p in report.predictions] == [None, "no_keyframes"]
    assert any(p.code == "bom" for p in report.warnings)
    assert report.coverage["probe_rows"] == 1


def test_same_video_and_task_as_probe_and_normal_is_not_a_duplicate(dataset, tmp_path: Path) -> None:
    rows = answer_rows(tasks=("Cause",), ids=(1,))
    rows.append({**rows[0], "probe": "no_keyframes", "output": "None"})
    report = read_submission(_write(tmp_path / "s.json", rows), dataset)
    assert len(report.predictions) == 2


def test_validate_reports_every_error_without_raising(dataset, tmp_path: Path) -> None:
    rows = answer_rows(tasks=("Cause",), ids=(1, 2, 3))
    rows[0]["output"] = 1
    rows[2]["task_type"] = "Poem"
    report = validate_submission(_write(tmp_path / "s.json", rows), dataset)
    assert not report.ok
    assert [(p.row, p.field, p.code) for p in report.errors] == [(1, "output", "wrong_type"),
                                                                  (3, "task_type", "unknown_task")]
    assert report.to_dict()["ok"] is False


def test_oversize_is_checked_before_reading(dataset, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b" " * 2_000_000 + b"]")
    report = validate_submission(big, dataset, max_mb=1)
    assert [p.code for p in report.errors] == ["oversize"] and report.file_hash == ""


def test_missing_file(dataset, tmp_path: Path) -> None:
    with pytest.raises(SubmissionRejected, match="file not found"):
        read_submission(tmp_path / "nope.json", dataset)
