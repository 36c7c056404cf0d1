"""``ecva infer`` with local backends on tiny random checkpoints in their real on-disk layouts.

The AnomShield checkpoint is in the official training-output layout (its config.json says 8
frames, which the plan uses without loading the model); the hf model is a tiny Qwen2-VL. Both run
the whole plan through ``ItemRunner`` and ``ChatModel.answer_batch``, then resume at no cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.infer import ItemRunner, WorkItem
from ecva_core.results.submission import read_submission
from tests.tiny_models import build_anomshield, build_qwen2_vl


def run(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["infer", *args, "--json", "--device", "cpu", "--max-new-tokens", "6"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def anomshield_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"anomshield:{build_anomshield(tmp_path_factory.mktemp('anomshield'), lora=True).checkpoint}"


def test_anomshield_runs_the_plan_with_its_own_frame_count_and_resumes(
    anomshield_spec: str, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    from ecva_core.dataset import load_dataset

    out = tmp_path / "anomshield.json"
    args = (
        "--model",
        anomshield_spec,
        "--out",
        str(out),
        "--data",
        str(demo_dataset_dir),
        "--limit",
        "2",
        "--batch-size",
        "4",
    )
    summary = run(*args)
    assert summary["num_frames"] == 8 and summary["answered"] == 12 and summary["failed"] == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 12 and all(len(r["frames"]) == 8 and isinstance(r["output"], str) for r in rows)
    assert read_submission(out, load_dataset(demo_dataset_dir)).coverage["matched"] == 6
    first = out.read_bytes()
    again = run(*args)
    assert again["model_calls"] == 0 and again["from_cache"] == 12 and out.read_bytes() == first


def test_hf_model_runs_the_plan(demo_dataset_dir: Path, tmp_path: Path) -> None:
    spec = f"hf:{build_qwen2_vl(tmp_path / 'qwen')}"
    summary = run(
        "--model",
        spec,
        "--out",
        str(tmp_path / "hf.json"),
        "--data",
        str(demo_dataset_dir),
        "--videos",
        "3",
        "--num-frames",
        "4",
        "--probe",
        "none",
        "--tasks",
        "description,classification",
    )
    assert summary["answered"] == 2 and summary["num_frames"] == 4
    rows = json.loads((tmp_path / "hf.json").read_text())
    assert [r["task_type"] for r in rows] == ["Description", "Classification"]
    assert all(len(r["frames"]) == 4 for r in rows)


def test_item_runner_answers_items_and_turns_a_bad_video_into_an_error(
    anomshield_spec: str, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    video = demo_dataset_dir / "videos" / "00001.mp4"
    good = [
        WorkItem(f"k{i}", "1", str(video), "Description", "normal", f"question {i}", (0, 50, 100)) for i in range(3)
    ]
    bad = WorkItem("k-bad", "9", str(tmp_path / "gone.mp4"), "Cause", "normal", "why?", (0, 1))
    runner = ItemRunner(anomshield_spec, {"device": "cpu"}, {"max_new_tokens": 4}, batch_size=2)
    results = runner([good[0], bad, good[1], good[2]])
    assert [r.key for r in results] == ["k0", "k-bad", "k1", "k2"]
    assert all(r.ok and len(r.frames) == 3 for r in results if r.key != "k-bad")
    assert results[1].error and "gone.mp4" in results[1].error
    assert runner.model_calls == 3
    assert WorkItem.from_dict(good[0].to_dict()) == good[0]
    assert type(results[0]).from_dict(results[0].to_dict()) == results[0]


def test_a_model_that_cannot_load_stops_the_run_with_the_loaders_message(
    demo_dataset_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "nothing-known", "num_frames": 8}))
    result = CliRunner().invoke(
        cli,
        [
            "infer",
            "--model",
            f"anomshield:{broken}",
            "--out",
            str(tmp_path / "o.json"),
            "--data",
            str(demo_dataset_dir),
            "--limit",
            "1",
            "--decode-workers",
            "0",
        ],
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error:" in result.output and not (tmp_path / "o.json").exists()
