"""``ecva infer`` against the loopback OpenAI-compatible server on the generated demo dataset.

The server records every request (frames carried, their timestamps, the question), so the tests
check what the model was shown, that nothing answered is asked twice (also across a ``kill -9``),
that shards merge into the single run's bytes, and that failures become ERROR rows with reasons.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.dataset import load_dataset
from ecva_core.dataset.questions import PROBE_QUESTIONS, QUESTIONS
from ecva_core.results.submission import read_submission
from ecva_core.schema import Task
from tests.openai_stub import OpenAIStub, Reply

REPO = Path(__file__).resolve().parents[1]
RANKER = "rank short captions"


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def infer(*args: str, check: bool = True) -> dict:
    """Run ``ecva infer ... --json`` in-process; returns the summary (or the result when it failed)."""
    result = CliRunner().invoke(cli, ["infer", *args, "--json", "--decode-workers", "0"])
    if check:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout.strip().splitlines()[-1])
    return {"exit_code": result.exit_code, "output": result.output}


def video_requests(stub: OpenAIStub) -> list:
    return [r for r in stub.requests if r.frame_count]


def test_full_plan_on_the_demo_asks_the_protocol_questions_with_the_right_frames(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answers.json"
    summary = infer("--model", f"openai:stub@{stub.base_url}", "--out", str(out), "--data", str(demo_dataset_dir))
    dataset = load_dataset(demo_dataset_dir)
    assert summary["videos"] == 14 and summary["rows"] == 14 * 3 * 2 and summary["answered"] == 84
    assert summary["probe"] == "annotated" and summary["failed"] == 0 and summary["from_cache"] == 0
    requests = video_requests(stub)
    assert len(requests) == 84 == stub.calls
    asked = {r.prompt_text for r in requests}
    assert asked == {QUESTIONS[t] for t in (Task.DESCRIPTION, Task.CAUSE, Task.RESULT)} | set(PROBE_QUESTIONS.values())
    for request in requests:
        parts = request.video_parts
        assert request.frame_count == 16
        assert parts[0]["type"] == "text" and parts[-1]["type"] == "text"  # the video comes before the question
        assert all(p["type"] == "image_url" for p in parts[1:-1])
    rows = json.loads(out.read_text())
    assert all(r["model"] == f"openai:stub@{stub.base_url}" and len(r["frames"]) == 16 for r in rows)
    probes = [r for r in rows if r.get("probe")]
    assert len(probes) == 42 and {r["probe"] for r in probes} == {"no_keyframes"}
    assert all(r["output"] == "None" for r in probes)  # the stub abstains on the probe wording
    for row in probes:
        moments = dataset.record(row["video_file"]).annotation.moments
        assert not any(m.start <= t <= m.end for t in row["frames"] for m in moments), row
    normal = [r for r in rows if not r.get("probe")]
    assert any(
        any(m.start <= t <= m.end for m in dataset.record(r["video_file"]).annotation.moments for t in r["frames"])
        for r in normal
    )
    report = read_submission(out, dataset)
    assert report.coverage["matched"] == 42 and report.coverage["failed"] == 0 and report.coverage["probe_rows"] == 42
    assert not [p for p in report.problems if "unknown fields" in p.problem]  # the run's own fields are known


def test_a_second_run_makes_no_model_calls_and_writes_the_same_bytes(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answers.json"
    args = (
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "3",
    )
    infer(*args)
    first = out.read_bytes()
    calls = stub.calls
    out.unlink()
    again = infer(*args)
    assert stub.calls == calls == 18
    assert again["from_cache"] == 18 and again["answered"] == 0 and again["model_calls"] == 0
    assert out.read_bytes() == first


def test_kill_9_mid_run_then_resume_asks_nothing_twice(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    stub.set_default(Reply.verdict(latency_s=0.15))
    out, cache = tmp_path / "killed.json", tmp_path / "cache"
    args = [
        "infer",
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "5",
        "--concurrency",
        "2",
        "--cache",
        str(cache),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecva_core.cli.main", *args],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        logged = sum(p.read_text().count("\n") for p in cache.glob("results-*.jsonl"))
        if logged >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    logged = sum(p.read_text().count("\n") for p in cache.glob("results-*.jsonl"))
    assert 6 <= logged < 30
    calls_before = stub.calls
    stub.set_default(Reply.verdict())
    resumed = infer(*args[1:])
    assert resumed["from_cache"] == logged and resumed["answered"] == 30 - logged
    assert stub.calls - calls_before == 30 - logged  # nothing answered before the kill was asked again
    fresh = tmp_path / "fresh.json"
    infer(
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(fresh),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "5",
        "--cache",
        str(tmp_path / "other-cache"),
    )
    assert out.read_bytes() == fresh.read_bytes()


def test_shards_merge_into_the_single_run_byte_for_byte(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    common = ("--model", f"openai:stub@{stub.base_url}", "--data", str(demo_dataset_dir), "--limit", "6")
    single = tmp_path / "single.json"
    infer(*common, "--out", str(single), "--cache", str(tmp_path / "c1"))
    shards = []
    videos = set()
    for index in range(3):
        path = tmp_path / f"shard{index}.json"
        infer(
            *common,
            "--out",
            str(path),
            "--shards",
            "3",
            "--shard-index",
            str(index),
            "--cache",
            str(tmp_path / f"c-shard{index}"),
        )
        ids = {r["video_file"] for r in json.loads(path.read_text())}
        assert not ids & videos  # all items of one video in the same shard
        videos |= ids
        shards.append(str(path))
    assert len(videos) == 6
    merged = tmp_path / "merged.json"
    result = CliRunner().invoke(cli, ["infer", "merge", *shards, "--out", str(merged), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 36
    assert merged.read_bytes() == single.read_bytes()


def _ranking_rule(stub: OpenAIStub, content: str) -> None:
    stub.add_rule(
        lambda body: any(RANKER in str(m.get("content")) for m in body.get("messages") or []),
        Reply.verdict(content=content),
    )


def test_ranked_probe_removes_the_top_two_chunks_and_records_them(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", stub.base_url)
    _ranking_rule(stub, json.dumps({"ranking": [3, 1, 4, 2]}))
    out = tmp_path / "ranked.json"
    summary = infer(
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "2",
        "--probe",
        "ranked",
    )
    assert summary["answered"] == 12 and summary["failed"] == 0
    captions = [r for r in video_requests(stub) if r.prompt_text == "Please describe the video briefly."]
    assert len(captions) == 8 and all(r.frame_count == 8 for r in captions)
    rankings = [r for r in stub.requests if not r.frame_count]
    assert len(rankings) == 2 and "Chunk 4:" in rankings[0].prompt_text
    rows = json.loads(out.read_text())
    probes = [r for r in rows if r.get("probe")]
    assert len(probes) == 6
    for row in probes:
        keyframes = row["keyframes"]
        assert keyframes["ranking"] == [3, 1, 4, 2] and len(keyframes["captions"]) == 4
        removed, kept = keyframes["removed_frames"], row["frames"]
        assert len(removed) == 16 and len(kept) == 16 and not set(removed) & set(kept)
        all_times = sorted(removed + kept)
        assert removed == all_times[:8] + all_times[16:24]  # chunks 1 and 3 of the 32 uniform frames
    probe_requests = [r for r in video_requests(stub) if r.prompt_text in PROBE_QUESTIONS.values()]
    assert len(probe_requests) == 6 and all(r.frame_count == 16 for r in probe_requests)


def test_ranked_probe_with_a_garbage_ranking_fails_with_a_reason_and_is_retried(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECVA_JUDGE_BASE_URL", stub.base_url)
    monkeypatch.setenv("ECVA_JUDGE_MAX_RETRIES", "0")
    _ranking_rule(stub, json.dumps({"ranking": [1, 1, 2, 3]}))
    out = tmp_path / "ranked.json"
    args = (
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--videos",
        "2",
        "--probe",
        "ranked",
    )
    summary = infer(*args)
    assert summary["failed"] == 3 and summary["answered"] == 3 and summary["error_rows"] == 3
    errors = [r for r in json.loads(out.read_text()) if r["output"] == "ERROR"]
    assert {r["probe"] for r in errors} == {"no_keyframes"}
    assert all("not an order of chunks 1-4" in r["error"] for r in errors)
    stub.state.rules.clear()
    _ranking_rule(stub, "chunk two, then one")
    infer(*args)
    errors = [r for r in json.loads(out.read_text()) if r["output"] == "ERROR"]
    assert len(errors) == 3 and all("is not JSON" in r["error"] for r in errors)
    stub.state.rules.clear()
    _ranking_rule(stub, "[2, 4, 1, 3]")
    stub.reset_counts()
    fixed = infer(*args)
    assert fixed["answered"] == 3 and fixed["from_cache"] == 3 and fixed["error_rows"] == 0
    assert len(video_requests(stub)) == 4 + 3  # captions again, then only the three probe answers


def _copy_dataset(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest)
    return dest


def test_missing_and_corrupt_videos_become_error_rows_and_the_run_goes_on(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    data = _copy_dataset(demo_dataset_dir, tmp_path / "data")
    (data / "videos" / "00002.mp4").unlink()
    (data / "videos" / "00003.mp4").write_bytes(b"\x00not a video at all" * 100)
    clip = data / "videos" / "00004.mp4"
    clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])  # truncated mid-stream
    out = tmp_path / "answers.json"
    summary = infer("--model", f"openai:stub@{stub.base_url}", "--out", str(out), "--data", str(data), "--limit", "5")
    rows = json.loads(out.read_text())
    assert len(rows) == 30
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video_file"], []).append(row)
    assert all(r["output"] == "ERROR" and "not found" in r["error"] for r in by_video["00002.mp4"])
    assert all(r["output"] == "ERROR" and "00003.mp4" in r["error"] for r in by_video["00003.mp4"])
    assert all(r["output"] != "ERROR" for v in ("00001.mp4", "00005.mp4") for r in by_video[v])
    assert set(summary["unreadable_videos"]) >= {"2", "3"}
    report = read_submission(out, load_dataset(data))
    assert report.coverage["error_rows"] >= 6 and report.ok


def test_a_rejected_request_is_an_error_row_and_only_it_is_asked_again(
    stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    overflow = "maximum context length is 4096 tokens"
    stub.add_rule(lambda body: QUESTIONS[Task.RESULT] in json.dumps(body), Reply.error(400, message=overflow))
    out = tmp_path / "answers.json"
    args = (
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "2",
        "--probe",
        "none",
    )
    summary = infer(*args)
    assert summary["failed"] == 2 and summary["answered"] == 4
    errors = [r for r in json.loads(out.read_text()) if r["output"] == "ERROR"]
    assert len(errors) == 2 and all(overflow in r["error"] and "400" in r["error"] for r in errors)
    stub.state.rules.clear()
    stub.reset_counts()
    again = infer(*args)
    assert stub.calls == 2 and again["answered"] == 2 and again["error_rows"] == 0


def test_the_output_scores_with_ecva_score(stub: OpenAIStub, demo_dataset_dir: Path, tmp_path: Path) -> None:
    out, db = tmp_path / "answers.json", tmp_path / "results.db"
    summary = infer(
        "--model",
        f"openai:stub@{stub.base_url}",
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "2",
        "--score",
        "--no-judge",
        "--name",
        "stub-model",
        "--db",
        str(db),
        "--metric",
        "bleu4",
    )
    score = summary["score"]
    assert score["model"] == "stub-model" and score["coverage"]["matched"] == 6
    assert score["coverage"]["probe_rows"] == 6 and score["overall"]["n_questions"] == 6
    result = CliRunner().invoke(
        cli,
        [
            "score",
            str(out),
            "--model",
            "again",
            "--data",
            str(demo_dataset_dir),
            "--db",
            str(db),
            "--no-judge",
            "--json",
            "--metric",
            "bleu4",
        ],
    )
    assert result.exit_code == 0, result.output


def test_user_errors_exit_1_without_a_traceback(demo_dataset_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.json")
    for args in (
        ["--model", f"anomshield:{tmp_path / 'absent'}", "--out", out],
        ["--model", "openai:m@not-a-url", "--out", out],
        ["--model", "openai:m@http://127.0.0.1:9/v1", "--out", out, "--probe", "ranked"],
        ["--model", "openai:m@http://127.0.0.1:9/v1", "--out", out, "--videos", "999"],
    ):
        result = infer(*args, "--data", str(demo_dataset_dir), check=False)
        assert result["exit_code"] == 1 and "Traceback" not in result["output"], result["output"]
    assert not Path(out).exists()
    usage = CliRunner().invoke(cli, ["infer", "--out", out])
    assert usage.exit_code == 2
