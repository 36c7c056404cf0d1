"""``ecva frames``: JPEGs on disk, one JSON object with --json, exit 1 on a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ecva_core.cli.main import cli
from tests.videogen import frame_code, make_clip


def test_frames_json_writes_jpegs(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, gop=8)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["frames", str(clip), "--num-frames", "4", "--backend", "opencv", "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["backend"] == "opencv"
    assert payload["indices"] == [6, 18, 31, 43]
    assert payload["timestamps"] == [0.24, 0.72, 1.24, 1.72]
    assert len(payload["files"]) == 4
    for file, index in zip(payload["files"], payload["indices"], strict=True):
        with Image.open(file) as image:
            assert image.format == "JPEG" and image.size == (64, 48)
            assert frame_code(np.asarray(image.convert("RGB"))) == index


def test_frames_fps_and_plain_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, gop=8)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["frames", str(clip), "--fps", "1"])
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "clip_frames").glob("*.jpg"))
    assert len(written) == 2
    assert "0.480s" in result.stdout


def test_frames_bad_file_exits_1_with_message(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    result = CliRunner().invoke(cli, ["frames", str(missing)])
    assert result.exit_code == 1
    assert "nope.mp4" in result.output and "Traceback" not in result.output
    usage = CliRunner().invoke(cli, ["frames", str(missing), "--backend", "vlc"])
    assert usage.exit_code == 2
