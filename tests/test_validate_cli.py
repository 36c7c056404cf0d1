"""``ecva data validate``: human table and --json, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from ecva_core.cli.data_validate import validate
from ecva_core.cli.main import cli

REPO = Path(__file__).resolve().parents[1]

SHEET = (
    'video_id,A1 category,A2 - reason,A2 -  result,"A3,moment",A3 - description,A4 key sentences\n'
    '1,"[7-1,5]",Thieves broke in.,Property was stolen.,"[0052,0114]",[a],"[""x""]"\n'
    '2,枪战,Men fought.,One was hurt.,"[0005,]",[fight],"[""a"",b""]"\n'
    '3,没有视频,/,/,"[,]",/,"["""",""""]"\n'
)


def write_sheet(tmp_path: Path) -> Path:
    path = tmp_path / "sheet.csv"
    path.write_text(SHEET, encoding="utf-8")
    return path


def test_json_output_is_one_object(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "validate", str(write_sheet(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["videos"] == 3 and report["qa_items"] == 6
    problems = {(f["video_id"], f["field"]) for f in report["flags"]}
    assert {("2", "category"), ("2", "moments"), ("2", "key_phrases"), ("3", "video")} <= problems
    assert all(set(f) >= {"video_id", "field", "problem"} for f in report["flags"])


def test_table_for_people_lists_every_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(validate, [str(write_sheet(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "source videos" in result.output and "scored QA items" in result.output
    assert "unusable video: reason is '/'" in result.output
    assert "malformed moment: [0005,] has no end" in result.output
    assert result.output.count("\n  2 ") >= 3


def test_unreadable_path_is_a_user_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["data", "validate", str(tmp_path / "nope.xlsx")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output
    assert "Traceback" not in result.output


def test_default_is_ecva_data(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ECVA_DATA", str(write_sheet(tmp_path)))
    result = CliRunner().invoke(validate, ["--json"])
    assert json.loads(result.stdout)["videos"] == 3


def test_real_file_as_subprocess(shared_ecva: Path) -> None:
    exe = Path(sys.executable).parent / "ecva"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ecva_core.cli.main"]
    done = subprocess.run(
        [*command, "data", "validate", str(shared_ecva / "annotations.xlsx"), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["videos"] == 1000
    assert report["qa_items"] == 2949
    kinds = [f["kind"] for f in report["flags"]]
    assert kinds.count("unusable video") == 17
    assert kinds.count("malformed moment") == 21
    assert kinds.count("unparseable category") == 77
    assert {f["video_id"] for f in report["flags"] if f["kind"] == "invalid key phrases"} == {"302", "496"}
