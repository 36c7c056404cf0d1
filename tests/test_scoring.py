"""The scoring pipeline: store -> text metrics -> judge -> summary; resume after kill -9; no repeated work."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ecva_core.config import get_settings
from ecva_core.errors import ConfigError
from ecva_core.results import scoring
from ecva_core.results.db import ResultsDB
from ecva_core.results.scoring import score_submission
from ecva_core.views.leaderboard import leaderboard_rows
from tests.official_checkout import FAKE_PROMPTS, write_official_checkout
from tests.openai_stub import OpenAIStub, Reply
from tests.submissions.tiny import answer_rows, load_tiny, write_tiny_annotations

FAST = ["bleu1", "bleu4", "rougeL"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def dataset(tmp_path: Path):
    return load_tiny(tmp_path / "tiny")


def _submission(tmp_path: Path, name: str = "sub.json", quality: str = "good", probe: bool = False) -> Path:
    rows = answer_rows(quality=quality)
    rows[0]["output"] = "ERROR"
    if probe:
        rows += [{**r, "output": "None, I cannot tell.", "probe": "no_keyframes"} for r in answer_rows(("Cause",))]
    path = tmp_path / name
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_text_metrics_scored_and_failures_stored_as_failures(dataset, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    stages: list[str] = []
    summary = score_submission(
        _submission(tmp_path),
        "good",
        dataset,
        db,
        metrics=FAST,
        progress=lambda stage, done, total: stages.append(stage),
    )
    assert {"validate", "text"} <= set(stages)
    assert summary["judge"] == {"status": "no judge configured"}
    assert summary["coverage"]["matched"] == 18 and summary["coverage"]["failed"] == 1
    assert summary["measures"][:2] == ["bleu1", "bleu4"]
    assert set(summary["tasks"]) == {"Description", "Cause", "Result"}
    assert summary["overall"]["rougeL"] > 0.8  # the good answers copy the reference
    assert summary["overall"]["rougeL_lo"] <= summary["overall"]["rougeL"] <= summary["overall"]["rougeL_hi"]
    assert summary["variants"]["valid"]["overall"]["rougeL"] == pytest.approx(1.0)
    assert summary["failures"]["failed_answer_scores"] == 3
    frame = db.scores_frame()
    failed = frame[frame["status"] == "failed"]
    assert set(failed["video_id"]) == {"1"} and failed["value"].isna().all()
    assert "ERROR" in failed["reason"].iloc[0]
    assert db.runs()[0]["status"] == "done"


def test_resubmitting_the_same_file_is_recognised_and_not_rescored(dataset, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path)
    first = score_submission(path, "m", dataset, db, metrics=FAST)
    version = db.data_version()
    again = score_submission(path, "m", dataset, db, metrics=FAST)
    assert again["resubmitted"] and again["submission_id"] == first["submission_id"]
    assert again["written"]["text_scores_written"] == 0
    assert len(db.submissions()) == 1 and len(db.scores_frame()) == 18 * 3
    assert db.data_version() > version  # only the run bookkeeping moved
    notes: list[str] = []
    other = score_submission(path, "other-model", dataset, db, metrics=FAST, notify=notes.append)
    assert not other["resubmitted"]
    assert len(notes) == 1 and "already scored as model m" in notes[0]  # the explorer's "already scored" rule


def test_judge_requested_without_configuration_is_a_config_error(dataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="none is configured"):
        score_submission(_submission(tmp_path), "m", dataset, ResultsDB(tmp_path / "r.db"), judge=True, metrics=FAST)


def test_judge_scores_normal_and_probe_answers_and_never_sees_error_rows(dataset, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path, probe=True)
    with OpenAIStub() as stub:
        settings = replace(get_settings(), judge_base_url=stub.base_url, judge_api_key="test-key", judge_max_retries=1)
        summary = score_submission(path, "judged", dataset, db, metrics=FAST, settings=settings)
        calls = stub.calls
        bodies = json.dumps([r.body for r in stub.requests])
        rerun = score_submission(path, "judged", dataset, db, metrics=FAST, settings=settings)
        assert stub.calls == calls  # nothing re-sent
    assert summary["judge"]["status"] == "ok"
    # 17 answered questions x 3 judges; the 6 identical probe answers to one question need one abstention
    # verdict, and one pair verdict each (each is compared with its own normal answer)
    assert calls == 17 * 3 + 1 + 6
    assert "ERROR" not in bodies and "test-key" not in str(db.path.read_bytes())
    frame = db.scores_frame()
    judge = frame[frame["metric"].str.startswith("judge_")]
    assert set(judge["metric"]) == {
        "judge_consistency",
        "judge_logic",
        "judge_keyphrase",
        "judge_hallucination",
        "judge_hallucination_pair",
    }
    assert set(judge.loc[judge["metric"].str.startswith("judge_hallucination"), "probe"]) == {"no_keyframes"}
    assert set(judge.loc[judge["metric"] == "judge_hallucination_pair", "value"]) == {1.0}  # they abstain
    error_rows = judge[judge["video_id"].eq("1") & judge["task"].eq("Description") & judge["probe"].eq("")]
    assert set(error_rows["status"]) == {"failed"}
    assert summary["overall"]["anomeval"] is not None and summary["overall"]["hallucination"] == 1.0
    assert rerun["resubmitted"] and rerun["judge"]["calls_made"] == 0


def test_interrupted_run_resumes_with_only_missing_scores(dataset, tmp_path: Path, monkeypatch) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path)
    monkeypatch.setattr(scoring, "TEXT_BATCH", 4)

    def stop_after_two(stage: str, done: int, total: int) -> None:
        if stage == "text" and done >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_submission(path, "m", dataset, db, metrics=FAST, progress=stop_after_two)
    assert len(db.scores_frame()) == 8 * 3 and db.runs()[-1]["status"] == "failed"
    summary = score_submission(path, "m", dataset, db, metrics=FAST)
    assert summary["written"]["text_scores_written"] == 10 * 3
    assert len(db.scores_frame()) == 18 * 3


_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from ecva_core.dataset import load_dataset
from ecva_core.results import scoring
from ecva_core.results.db import ResultsDB
scoring.TEXT_BATCH = 4
def progress(stage, done, total):
    if stage == "text" and done >= 8:
        os.kill(os.getpid(), signal.SIGKILL)
scoring.score_submission(sys.argv[1], "m", load_dataset(Path(sys.argv[2])), ResultsDB(sys.argv[3]),
                         metrics=["bleu1", "rougeL"], progress=progress)
"""


def test_kill_9_loses_nothing_already_scored(tmp_path: Path) -> None:
    annotations = write_tiny_annotations(tmp_path / "tiny")
    path, db_path = _submission(tmp_path), tmp_path / "r.db"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(path), str(annotations), str(db_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    db = ResultsDB(db_path)
    assert len(db.scores_frame()) == 8 * 2 and db.runs()[0]["status"] == "running"
    summary = score_submission(path, "m", load_tiny(tmp_path / "tiny"), db, metrics=["bleu1", "rougeL"])
    assert summary["resubmitted"] and summary["written"]["text_scores_written"] == 10 * 2
    assert len(db.scores_frame()) == 18 * 2


def _score_in_process(args: tuple[str, str, str, int]) -> int:
    from ecva_core.dataset import load_dataset

    path, annotations, db_path, worker = args
    summary = score_submission(
        path, f"model-{worker}", load_dataset(Path(annotations)), ResultsDB(db_path), metrics=["bleu1"]
    )
    return int(summary["submission_id"])


def test_four_processes_scoring_at_once_all_land(tmp_path: Path) -> None:
    import multiprocessing

    annotations = write_tiny_annotations(tmp_path / "tiny")
    db_path = str(tmp_path / "shared.db")
    path = str(_submission(tmp_path))
    with multiprocessing.get_context("fork").Pool(4) as pool:
        ids = pool.map(_score_in_process, [(path, str(annotations), db_path, w) for w in range(4)])
    db = ResultsDB(db_path)
    assert sorted(ids) == [1, 2, 3, 4]
    frame = db.scores_frame()
    assert frame.groupby("model").size().to_dict() == {f"model-{w}": 18 for w in range(4)}
    assert all(run["status"] == "done" for run in db.runs())


def _judge_logic_of(body: dict) -> bool:
    system = next(m["content"] for m in body["messages"] if m["role"] == "system")
    return body.get("model") == "judge-b" and "ECVA AnomEval judge: logic" in system


def _raw_rows(db: ResultsDB, sql: str) -> list[tuple]:
    with sqlite3.connect(db.path) as conn:
        return conn.execute(sql).fetchall()


def test_switching_the_judge_model_rejudges_only_the_judge_pillars(dataset, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path, probe=True)
    notes: list[str] = []
    with OpenAIStub() as stub:
        stub.add_rule(_judge_logic_of, Reply.verdict(content='{"score": 0, "reason": "judge b is strict"}'))
        base = replace(
            get_settings(), judge_base_url=stub.base_url, judge_api_key="secret-key-xyz", judge_max_retries=1
        )
        judge_a, judge_b = replace(base, judge_model="judge-a"), replace(base, judge_model="judge-b")

        first = score_submission(path, "m", dataset, db, metrics=FAST, settings=judge_a, notify=notes.append)
        calls_a = stub.calls
        predictions = _raw_rows(db, "SELECT * FROM predictions ORDER BY id")
        text_rows = _raw_rows(db, "SELECT * FROM scores WHERE metric NOT LIKE 'judge%' ORDER BY rowid")
        frame_a = db.scores_frame()
        assert calls_a == 17 * 3 + 1 + 6 and notes == []
        assert first["judge"]["model"] == "judge-a" and not first["judge"]["rejudged"]

        stub.reset_counts()
        second = score_submission(path, "m", dataset, db, metrics=FAST, settings=judge_b, notify=notes.append)
        assert stub.calls == calls_a  # every verdict again, from the new judge only
        assert {r.body["model"] for r in stub.requests} == {"judge-b"}
        assert second["resubmitted"] and second["written"]["text_scores_written"] == 0
        assert second["judge"]["model"] == "judge-b" and second["judge"]["rejudged"]
        assert second["judge"]["previous_models"] == ["judge-a"]
        assert notes == ["re-judging with judge-b, predictions unchanged (judged before by judge-a)"]
        frame_b = db.scores_frame()
        judged_b = frame_b[frame_b["metric"].str.startswith("judge_")]
        assert set(judged_b["judge_model"]) == {"judge-b"} and len(judged_b) == len(
            frame_a[frame_a["metric"].str.startswith("judge_")]
        )
        assert set(judged_b.loc[judged_b["status"].eq("ok") & judged_b["metric"].eq("judge_logic"), "value"]) == {0.0}
        assert second["overall"]["judge_logic"] < first["overall"]["judge_logic"]
        board = leaderboard_rows(db, by="model")
        assert board["rows"][0]["judge_logic"] == pytest.approx(second["overall"]["judge_logic"])
        only_a = db.scores_frame(judge_model="judge-a")
        assert only_a.equals(frame_a)  # judge A's verdicts are all still there

        stub.reset_counts()
        third = score_submission(path, "m", dataset, db, metrics=FAST, settings=judge_a, notify=notes.append)
        assert stub.calls == 0  # judge A's verdicts are stored (and cached): switching back is free
        assert third["judge"]["calls_made"] == 0 and third["judge"]["previous_models"] == ["judge-b"]
        assert third["judge"]["reactivated"] == len(frame_a[frame_a["metric"].str.startswith("judge_")])
        assert db.scores_frame().equals(frame_a)
        assert third["overall"]["judge_logic"] == pytest.approx(first["overall"]["judge_logic"])

        fourth = score_submission(path, "m", dataset, db, metrics=FAST, settings=judge_a, notify=notes.append)
        assert stub.calls == 0 and not fourth["judge"]["rejudged"] and fourth["judge"]["reactivated"] == 0
    assert len(notes) == 2
    assert _raw_rows(db, "SELECT * FROM predictions ORDER BY id") == predictions
    assert _raw_rows(db, "SELECT * FROM scores WHERE metric NOT LIKE 'judge%' ORDER BY rowid") == text_rows
    versions = _raw_rows(db, "SELECT DISTINCT judge_model, prompt_version FROM scores WHERE metric LIKE 'judge%'")
    assert {v[0] for v in versions} == {"judge-a", "judge-b"} and all(v[1].endswith(("-v1", "-v2")) for v in versions)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("r.db*"))
    assert b"secret-key-xyz" not in stored


def test_judge_scores_stored_without_their_judge_are_rejudged_from_the_cache(dataset, tmp_path: Path) -> None:
    """Scores stored before judges were recorded (empty judge model) are re-judged, from the cache when it has them."""
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path)
    with OpenAIStub() as stub:
        settings = replace(get_settings(), judge_base_url=stub.base_url, judge_api_key="k", judge_model="judge-a")
        score_submission(path, "m", dataset, db, metrics=FAST, settings=settings)
        calls = stub.calls
        frame = db.scores_frame()
        with sqlite3.connect(db.path) as conn:  # what a database migrated from version 2 holds
            conn.execute("UPDATE scores SET judge_model = '', prompt_version = '' WHERE metric LIKE 'judge%'")
        legacy = db.scores_frame()
        assert set(legacy.loc[legacy["metric"].str.startswith("judge_"), "judge_model"]) == {""}
        again = score_submission(path, "m", dataset, db, metrics=FAST, settings=settings)
        assert stub.calls == calls  # same judge model: every verdict comes from the judge cache
        assert again["judge"]["rejudged"] and again["judge"]["previous_models"] == ["an unrecorded judge"]
        assert again["judge"]["cache_hits"] == calls
    assert db.scores_frame().equals(frame)


def test_scoring_writes_no_view_cache_and_ecva_score_warms_the_models_leaderboard_part(
    dataset, tmp_path: Path
) -> None:
    """The write path knows no views; the command that writes warms the explorer's part after it."""
    from click.testing import CliRunner

    from ecva_core.cli.main import cli
    from ecva_core.views.leaderboard import leaderboard_part
    from ecva_core.views.leaderboard_cache import FIRST_RENDER_VIEWS, leaderboard_parts, parts_path

    db = ResultsDB(tmp_path / "r.db")
    score_submission(_submission(tmp_path), "quiet", dataset, db, metrics=FAST)
    cache_dir = get_settings().cache_dir
    ((mode, majors, tasks),) = FIRST_RENDER_VIEWS
    path = parts_path(cache_dir, db, dataset.fingerprint, mode, majors, tasks)
    assert not path.exists()
    args = ["score", str(_submission(tmp_path)), "--model", "good", "--data", str(dataset.annotation_file),
            "--db", str(db.path), "--json", *(f"--metric={m}" for m in FAST)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    stored = {m: stamp for m, (stamp, _) in pickle.loads(path.read_bytes()).items()}
    assert stored == {"good": db.model_stamps()["good"]}  # only the model just written is warmed
    expected = leaderboard_part(db.aggregate_frame(["good"]), dataset, mode, majors, tasks,
                                db.answer_status_frame(["good"]))  # fmt: skip
    parts = leaderboard_parts(db, dataset, cache_dir, mode, majors, tasks)
    good = next(p for p in parts if "good" in p.answered)
    assert good.overall.equals(expected.overall) and good.by_task.equals(expected.by_task)


def test_a_cache_that_cannot_be_written_costs_only_the_warm(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from ecva_core.views import warm_after_write

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("ECVA_CACHE_DIR", str(blocker))
    db = ResultsDB(tmp_path / "r.db")
    summary = score_submission(_submission(tmp_path), "good", dataset, db, metrics=FAST)
    assert summary["overall"]["rougeL"] > 0.8 and db.model_stamps().keys() == {"good"}
    assert warm_after_write(db, dataset, "good") == 0
    assert "could not cache the leaderboard part of 'good'" in caplog.text


def test_official_protocol_is_a_stored_fact_of_each_score(dataset, tmp_path: Path, official_repo: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path, probe=True)
    notes: list[str] = []
    with OpenAIStub() as stub:
        settings = replace(get_settings(), judge_base_url=stub.base_url, judge_api_key="k", judge_max_retries=1)
        ours = score_submission(path, "m", dataset, db, metrics=FAST, settings=settings)
        stub.reset_counts()
        official = score_submission(
            path,
            "m",
            dataset,
            db,
            settings=settings,
            protocol="official",
            metrics=[*FAST, "bleu_official", "rougeL_official"],
            notify=notes.append,
        )
        sent = [r.body for r in stub.requests]
    assert (ours["protocol"], official["protocol"]) == ("default", "official")
    assert {b["model"] for b in sent} == {"gpt-4o"}
    official_sent = [b for b in sent if "normal_answer" not in b["messages"][1]["content"]]  # pair: ours only
    assert official_sent and all("response_format" not in b for b in official_sent)
    assert not any("ECVA AnomEval judge" in b["messages"][0]["content"] for b in official_sent)
    assert notes and "default protocol" in notes[0]
    frame = db.scores_frame()
    judged = frame[frame["metric"].str.startswith("judge_") & (frame["metric"] != "judge_hallucination_pair")]
    assert {v.rsplit("-", 1)[0] for v in judged["prompt_version"]} == {
        "official-v1-consistency",
        "official-v1-logic",
        "official-v1-keyphrase",
        "official-v1-hallucination",
    }  # each followed by the hash of the prompt text read from the checkout
    assert {b["messages"][0]["content"] for b in official_sent} == set(FAKE_PROMPTS.values())
    assert {"bleu_official", "rougeL_official"} <= set(frame["metric"])
    assert official["overall"]["bleu_official"] is not None and official["overall"]["anomeval"] is not None
    board = leaderboard_rows(db)
    assert board["protocols"] == {"m": "default+official"}  # the pair judge has no official counterpart
    old = db.scores_frame(judge_model=get_settings().judge_model)
    assert set(old.loc[old["metric"] == "judge_logic", "prompt_version"]) == {"logic-v1"}  # ours kept


def test_official_judging_without_a_checkout_fails_before_anything_is_stored_or_sent(dataset, tmp_path: Path) -> None:
    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path, probe=True)
    with OpenAIStub() as stub:
        settings = replace(get_settings(), judge_base_url=stub.base_url, judge_api_key="k", judge_max_retries=1)
        with pytest.raises(ConfigError, match=r"ECVA_OFFICIAL_REPO is not set: clone https://github\.com/Dulpy/ECVA"):
            score_submission(path, "m", dataset, db, settings=settings, protocol="official", metrics=FAST)
        assert stub.requests == [] and db.submissions() == []
        metrics = [*FAST, "bleu_official", "rougeL_official"]
        summary = score_submission(
            path, "m", dataset, db, settings=settings, protocol="official", judge=False, metrics=metrics
        )
        assert stub.requests == []
    assert summary["overall"]["bleu_official"] is not None and summary["judge"]["status"] == "disabled (--no-judge)"


def test_the_checkouts_model_type_is_the_official_judge_model(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = write_official_checkout(tmp_path / "official-ecva", model_type="gpt-4o-2024-08-06")
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(checkout))
    db = ResultsDB(tmp_path / "r.db")
    notes: list[str] = []
    with OpenAIStub() as stub:
        settings = replace(get_settings(), judge_base_url=stub.base_url, judge_api_key="k", judge_max_retries=1)
        score_submission(
            _submission(tmp_path), "m", dataset, db, settings=settings, protocol="official", metrics=FAST,
            notify=notes.append,
        )  # fmt: skip
        sent = {r.body["model"] for r in stub.requests}
    assert sent == {"gpt-4o-2024-08-06"}
    assert any("MODEL_TYPE = 'gpt-4o-2024-08-06', not the published 'gpt-4o'" in note for note in notes)


def test_already_scored_is_the_same_bytes_read_the_same_way_on_the_same_data(dataset, tmp_path: Path) -> None:
    from ecva_core.results.submission import validate_submission

    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path)
    report = validate_submission(path, dataset)
    assert scoring.already_scored(db, report) is None
    summary = scoring.score_submission(path, "m", dataset, db, metrics=FAST)  # what `ecva score` runs
    assert scoring.already_scored(db, report)["id"] == summary["submission_id"]
    copy = tmp_path / "copy.json"
    copy.write_bytes(path.read_bytes())
    assert scoring.already_scored(db, validate_submission(copy, dataset))["model"] == "m"  # by bytes, not name
    as_probe = validate_submission(path, dataset, probe="no_keyframes")
    assert as_probe.ok and scoring.already_scored(db, as_probe) is None  # read as probe answers: not the same


def test_a_validated_report_is_scored_without_reading_the_file_again(dataset, tmp_path: Path) -> None:
    from ecva_core.errors import SubmissionError
    from ecva_core.results.submission import validate_submission

    db = ResultsDB(tmp_path / "r.db")
    path = _submission(tmp_path)
    data = path.read_bytes()
    report = validate_submission(path, dataset, data=data, file_hash="f" * 64)
    path.unlink()  # the report carries everything: the file is neither read nor hashed again
    summary = scoring.score_report(report, "m", dataset, db, metrics=FAST, file_name="my answers.json")
    assert summary["coverage"]["matched"] == 18 and len(db.scores_frame()) == 18 * 3
    assert db.submission(summary["submission_id"])["file_name"] == "my answers.json"
    assert db.submission(summary["submission_id"])["file_hash"] == "f" * 64
    bad = validate_submission(tmp_path / "gone.json", dataset)
    with pytest.raises(SubmissionError, match="file not found"):
        scoring.score_report(bad, "m", dataset, db, metrics=FAST)


def test_judge_plan_closes_the_judge_cache_it_opens(dataset, tmp_path: Path, monkeypatch) -> None:
    from ecva_core.results.submission import validate_submission

    db = ResultsDB(tmp_path / "r.db")
    opened = []
    open_cache = db.judge_cache
    monkeypatch.setattr(db, "judge_cache", lambda: opened.append(open_cache()) or opened[-1])
    settings = replace(get_settings(), judge_model="m")  # planning makes no call
    plan = scoring.judge_plan(validate_submission(_submission(tmp_path), dataset), dataset, settings, db)
    assert plan.calls_needed > 0 and len(opened) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0]._conn.execute("SELECT 1")
