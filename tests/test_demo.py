"""The generated demo dataset: playable H.264 clips, ECVA-format annotations that the real loader
reads, three submissions of distinct quality, and a safe, idempotent ``ensure_demo``."""

from __future__ import annotations

import csv
import json
import multiprocessing
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ecva_core.dataset import demo
from ecva_core.dataset.demo import MARKER, ensure_demo, generate_demo, is_demo_dir
from ecva_core.errors import DataError
from ecva_core.schema import SCORED_TASKS, Task, canonical_video_id
from tests.browser import launch_chromium

SUBMISSIONS = ("demo-strong", "demo-medium", "demo-weak")
ROW_FIELDS = {"video_file", "prompt", "output", "task_type", "human_expert_answer"}


@pytest.fixture(scope="session")
def demo_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full demo dataset for the session (read-only for tests)."""
    return ensure_demo(tmp_path_factory.mktemp("demo-data") / "demo")


@pytest.fixture
def two_clips(monkeypatch: pytest.MonkeyPatch) -> tuple[demo.DemoClip, ...]:
    """Shrink the demo to two clips so build-mechanics tests stay fast."""
    clips = (demo.CLIPS[0], demo.CLIPS[3])
    monkeypatch.setattr(demo, "CLIPS", clips)
    return clips


def _video_info(path: Path, keep: Sequence[float] = ()) -> dict[str, object]:
    """Decode the whole clip (proves it decodes); ``keep`` lists the seconds whose frames to return."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        wanted = {int(second * fps) for second in keep}
        frames: dict[int, np.ndarray] = {}
        count = 0
        for count, frame in enumerate(container.decode(stream), 1):
            if count - 1 in wanted:
                frames[count - 1] = frame.to_ndarray(format="rgb24")
        return {
            "codec": stream.codec_context.name,
            "pix_fmt": stream.codec_context.pix_fmt,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "duration": count / fps,
            "frames": frames,
            "fps": fps,
        }


def _rows(dest: Path, model: str) -> list[dict[str, object]]:
    return json.loads((dest / "submissions" / f"{model}.json").read_text(encoding="utf-8"))


def _coverage(rows: list[dict[str, object]], phrases: dict[str, list[str]]) -> float:
    """Mean share of a video's key phrases found verbatim in the scored, non-probe answers."""
    shares = []
    for row in rows:
        if row.get("probe") or row["task_type"] not in {t.value for t in SCORED_TASKS}:
            continue
        wanted = phrases[canonical_video_id(row["video_file"])]
        text = str(row["output"]).lower()
        shares.append(sum(p.lower() in text for p in wanted) / len(wanted))
    return sum(shares) / len(shares)


def test_clips_are_browser_playable_h264(demo_dataset_dir: Path) -> None:
    videos = sorted((demo_dataset_dir / "videos").glob("*.mp4"))
    assert len(videos) >= 12
    for path in videos:
        info = _video_info(path)
        assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p"), path
        assert info["size"] == (320, 240)
        assert 8 <= info["duration"] <= 12


def test_annotations_load_with_the_real_loader(demo_dataset_dir: Path) -> None:
    from ecva_core.dataset import load_dataset

    header = next(csv.reader((demo_dataset_dir / "annotations.csv").open(encoding="utf-8")))
    assert any(h.startswith("A1") for h in header) and "A3 - moment" in header  # exercises header aliasing

    dataset = load_dataset(demo_dataset_dir)
    assert dataset.is_demo
    assert dataset.flags == []
    assert len(dataset.records) >= 12
    assert len(dataset.qa_items()) == 3 * len(dataset.records)
    majors = {r.annotation.category.major for r in dataset.records.values()}
    assert len(majors) >= 8  # collision, fall, fire, theft, fight, vandalism, animal, water, ...
    for video_id, record in dataset.records.items():
        ann = record.annotation
        assert ann.category is not None and ann.category.sub is not None
        assert ann.moments and len(ann.descriptions) == len(ann.moments)
        assert ann.reason and ann.result and 4 <= len(ann.key_phrases) <= 6
        path = dataset.video_path(video_id)
        assert path is not None and path.name == record.video_file
        duration = _video_info(path)["duration"]
        for moment in ann.moments:
            assert 0 <= moment.start < moment.end <= duration + 1e-6


def test_rendered_fire_appears_in_the_annotated_window(demo_dataset_dir: Path) -> None:
    from ecva_core.dataset import load_dataset

    dataset = load_dataset(demo_dataset_dir)
    fire = next(r for r in dataset.records.values() if r.annotation.category.code == "9-1")
    window = fire.annotation.moments[0]
    before, during = window.start - 1.5, (window.start + window.end) / 2
    info = _video_info(dataset.video_path(fire.video_id), keep=(before, during))

    def flame_pixels(second: float) -> int:
        frame = info["frames"][int(second * info["fps"])].astype(int)
        red, green, blue = frame[..., 0], frame[..., 1], frame[..., 2]
        return int(np.sum((red > 180) & (blue < 90) & (green < 200)))

    assert flame_pixels(before) < 20
    assert flame_pixels(during) > 300


def test_submissions_are_in_the_official_format(demo_dataset_dir: Path) -> None:
    from ecva_core.dataset.questions import question_for

    ids = {p.stem.lstrip("0") for p in (demo_dataset_dir / "videos").glob("*.mp4")}
    for model in SUBMISSIONS:
        rows = _rows(demo_dataset_dir, model)
        assert isinstance(rows, list) and rows
        for row in rows:
            assert set(row) >= ROW_FIELDS, row
            task = Task.parse(row["task_type"])
            assert row["prompt"] == question_for(task, probe=bool(row.get("probe")))
            assert row.get("probe") in (None, "no_keyframes")
        probes = [r for r in rows if r.get("probe")]
        assert {r["task_type"] for r in probes} == {"Description", "Cause", "Result"}
        assert {r["task_type"] for r in rows} == {t.value for t in Task}
        answered = {canonical_video_id(r["video_file"]) for r in rows if r["task_type"] == "Description"}
        if model == "demo-weak":
            assert len(ids - answered) == 1
            assert sum(r["output"] == "ERROR" for r in rows) == 2
        else:
            assert answered == ids
            assert all(r["output"] != "ERROR" for r in rows)


def test_submissions_validate_and_join_with_the_real_reader(demo_dataset_dir: Path) -> None:
    from ecva_core.dataset import load_dataset
    from ecva_core.results.submission import read_submission

    dataset = load_dataset(demo_dataset_dir)
    for model in SUBMISSIONS:
        report = read_submission(demo_dataset_dir / "submissions" / f"{model}.json", dataset)
        assert report.ok, report.errors
        probes = [p for p in report.predictions if p.probe == "no_keyframes"]
        scored = [p for p in report.predictions if p.probe is None and p.task in SCORED_TASKS]
        expected = len(dataset.records) - (1 if model == "demo-weak" else 0)
        assert len(scored) == len(probes) == 3 * expected


def test_quality_order_strong_medium_weak(demo_dataset_dir: Path) -> None:
    from ecva_core.dataset import load_dataset

    dataset = load_dataset(demo_dataset_dir)
    phrases = {vid: r.annotation.key_phrases for vid, r in dataset.records.items()}
    strong, medium, weak = (_coverage(_rows(demo_dataset_dir, m), phrases) for m in SUBMISSIONS)
    assert strong > 0.6 > medium > weak
    assert medium > 0.1

    def abstention(model: str) -> float:
        probes = [r for r in _rows(demo_dataset_dir, model) if r.get("probe")]
        return sum(str(r["output"]).strip() == "None" or "cannot tell" in str(r["output"]).lower()
                   for r in probes) / len(probes)

    assert abstention("demo-strong") == 1.0
    assert 0 < abstention("demo-medium") < 1
    assert abstention("demo-weak") == 0.0


def test_marker_says_demo_and_ensure_is_idempotent(demo_dataset_dir: Path) -> None:
    text = (demo_dataset_dir / MARKER).read_text(encoding="utf-8")
    assert "DEMO" in text and "NOT ECVA DATA" in text
    stamps = {p: p.stat().st_mtime_ns for p in demo_dataset_dir.rglob("*") if p.is_file()}
    assert ensure_demo(demo_dataset_dir) == demo_dataset_dir
    assert {p: p.stat().st_mtime_ns for p in demo_dataset_dir.rglob("*") if p.is_file()} == stamps


def test_generation_is_deterministic(tmp_path: Path, two_clips: tuple[demo.DemoClip, ...]) -> None:
    first, second = generate_demo(tmp_path / "a"), generate_demo(tmp_path / "b")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == len(two_clips) + 5  # videos, annotations, 3 submissions, marker
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def _ensure_in_child(dest: str) -> None:
    ensure_demo(Path(dest))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_processes_build_once(tmp_path: Path, two_clips: tuple[demo.DemoClip, ...]) -> None:
    dest = tmp_path / "shared" / "demo"
    ctx = multiprocessing.get_context("fork")  # children inherit the two-clip patch
    workers = [ctx.Process(target=_ensure_in_child, args=(str(dest),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert is_demo_dir(dest)
    assert len(list((dest / "videos").glob("*.mp4"))) == len(two_clips)
    assert sorted(p.name for p in dest.parent.iterdir()) == [".demo.lock", "demo"]  # no half builds left


def test_racing_builders_without_the_lock_still_install_one_complete_copy(
    tmp_path: Path, two_clips: tuple[demo.DemoClip, ...]
) -> None:
    dest = tmp_path / "demo"
    errors: list[BaseException] = []

    def build() -> None:
        try:
            demo._generate(dest.resolve())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert is_demo_dir(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_failed_build_leaves_nothing_that_looks_finished(
    tmp_path: Path, two_clips: tuple[demo.DemoClip, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecva_core.dataset.demo import answers as demo_answers

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(demo_answers, "write_submissions", boom)
    dest = tmp_path / "demo"
    with pytest.raises(OSError, match="disk full"):
        ensure_demo(dest)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".demo.lock"]


def test_leftovers_and_stale_versions_are_replaced(tmp_path: Path, two_clips: tuple[demo.DemoClip, ...]) -> None:
    dest = tmp_path / "demo"
    (tmp_path / ".demo.tmp-crashed").mkdir()
    (tmp_path / ".demo.tmp-crashed" / "DEMO.txt").write_text("half", encoding="utf-8")
    dest.mkdir()
    (dest / MARKER).write_text("GENERATED DEMO DATASET\ndemo version: 0\n", encoding="utf-8")
    ensure_demo(dest)
    assert is_demo_dir(dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo.lock", "demo"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(DataError, match="not a generated demo dataset"):
        ensure_demo(tmp_path)
    assert (tmp_path / "mine.txt").read_text(encoding="utf-8") == "precious"


def test_cli_generates_then_reports(tmp_path: Path, two_clips: tuple[demo.DemoClip, ...]) -> None:
    from ecva_core.cli.main import cli

    dest = tmp_path / "cli-demo"
    runner = CliRunner()
    first = runner.invoke(cli, ["data", "demo", "--to", str(dest), "--json"])
    assert first.exit_code == 0, first.output
    payload = json.loads(first.stdout)
    assert payload["generated"] is True and payload["dest"] == str(dest.resolve())
    assert len(payload["submissions"]) == 3 and len(payload["clips"]) == len(two_clips)

    again = runner.invoke(cli, ["data", "demo", "--to", str(dest), "--json"])
    assert json.loads(again.stdout)["generated"] is False

    text = runner.invoke(cli, ["data", "demo", "--to", str(dest), "--force"])
    assert text.exit_code == 0 and "GENERATED DEMO" in text.stdout

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("x", encoding="utf-8")
    refused = runner.invoke(cli, ["data", "demo", "--to", str(tmp_path / "taken")])
    assert refused.exit_code == 1 and "not a generated demo dataset" in refused.output


def test_load_dataset_defaults_to_the_demo(isolated_home: Path, two_clips: tuple[demo.DemoClip, ...]) -> None:
    from ecva_core.dataset import load_dataset

    dataset = load_dataset()
    assert dataset.is_demo
    assert dataset.root == (isolated_home / "demo").resolve()
    assert set(dataset.records) == {c.video_id for c in two_clips}


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_a_real_chromium_plays_a_demo_clip(demo_dataset_dir: Path) -> None:
    import functools
    import http.server
    import socketserver

    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            return

    handler = functools.partial(Quiet, directory=str(demo_dataset_dir))
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page()
                page.goto(f"{base}/DEMO.txt")
                played = page.evaluate(
                    """src => new Promise(done => {
                        const v = document.createElement('video');
                        v.muted = true;
                        v.addEventListener('timeupdate', () => {
                          if (v.currentTime < 0.5) return;
                          const c = document.createElement('canvas');
                          c.width = v.videoWidth; c.height = v.videoHeight;
                          const g = c.getContext('2d');
                          g.drawImage(v, 0, 0);
                          const px = g.getImageData(0, 0, c.width, c.height).data;
                          let sum = 0;
                          for (let i = 0; i < px.length; i += 4) sum += px[i] + px[i + 1] + px[i + 2];
                          done({duration: v.duration, width: v.videoWidth, mean: sum / (px.length / 4) / 3});
                        });
                        v.addEventListener('error', () => done({error: v.error && v.error.code}));
                        v.src = src;
                        document.body.appendChild(v);
                        v.play();
                        setTimeout(() => done({error: 'timeout'}), 20000);
                    })""",
                    "/videos/00001.mp4",
                )
            finally:
                browser.close()
        server.shutdown()
    assert "error" not in played, played
    assert played["width"] == 320 and played["duration"] == pytest.approx(10, abs=0.1)
    assert played["mean"] > 40  # real picture, not a black frame
