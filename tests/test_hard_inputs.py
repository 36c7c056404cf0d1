"""Malformed annotation files and results exports: the project's own error naming the file, exit 1, never a
traceback, and nothing stored. (Submissions have their corpus in tests/submissions; videos test_video_uploads.)"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecva_core.cli.main import cli
from ecva_core.dataset import load_dataset
from ecva_core.errors import DataError, ResultsError
from ecva_core.results.db import ResultsDB
from ecva_core.results.export import import_results

DEPTH = 100_000
HEADER = ["video_id", "X1 (5-1)", "X2 - reason", "X2 -  result", "X3 - moment", "X3 - description"]


def _workbook(path: Path) -> Path:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for number in range(1, 40):
        sheet.append([number, "[5-1,5]", "He ran the light.", "A crash.", "[0001,0003]", "[A car crashes]"])
    book.save(path)
    return path


def _damage_sheet(path: Path, change: Callable[[bytes], bytes]) -> Path:
    good = _workbook(path.with_name("good.xlsx"))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            out.writestr(name, change(data) if name.startswith("xl/worksheets/sheet1") else data)
    return path


ANNOTATION_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "deep.json": (lambda p: (p.write_text("[" * DEPTH + "]" * DEPTH), p)[1], "nested too deeply"),
    "deep_record.json": (
        lambda p: (p.write_text('[{"video_id": "1", "key_phrases": ' + "[" * DEPTH + "]" * DEPTH + "}]"), p)[1],
        "nested too deeply",
    ),
    "nul.csv": (lambda p: (p.write_bytes(b"video_id,X2 - reason\n" + b"1,ok\n" * 300 + b"2,a\x00b\n"), p)[1], "binary"),
    "empty.csv": (lambda p: (p.write_bytes(b""), p)[1], "no rows"),
    "empty.xlsx": (lambda p: (p.write_bytes(b""), p)[1], "not a readable .xlsx"),
    "truncated.xlsx": (
        lambda p: (p.write_bytes(_workbook(p.with_name("w.xlsx")).read_bytes()[:3000]), p)[1],
        "not a readable .xlsx",
    ),
    "damaged_sheet.xlsx": (lambda p: _damage_sheet(p, lambda d: d[: len(d) // 2]), "workbook is damaged"),
    "deep_sheet.xlsx": (lambda p: _damage_sheet(p, lambda d: b"<a>" * DEPTH + b"</a>" * DEPTH), "no rows"),
}


@pytest.mark.parametrize("name", sorted(ANNOTATION_CASES))
def test_malformed_annotations_name_the_file_and_never_trace_back(tmp_path: Path, name: str) -> None:
    make, expected = ANNOTATION_CASES[name]
    path = make(tmp_path / name)
    with pytest.raises(DataError, match=expected) as caught:
        load_dataset(path)
    assert str(path) in str(caught.value)
    result = CliRunner().invoke(cli, ["data", "validate", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output and expected in result.output


EXPORT_CASES: dict[str, tuple[bytes, str]] = {
    "deep.json": (("[" * DEPTH + "]" * DEPTH).encode(), "nested too deeply"),
    "binary.json": (b"\xff\xfe\x00\x01garbage", "not UTF-8"),
    "nul.json": (b'{"format": "ecva-results"\x00}', "NUL byte"),
    "no_model.json": (json.dumps({"format": "ecva-results", "version": 1, "submissions": []}).encode(), "well-formed"),
    "bad_version.json": (json.dumps({"format": "ecva-results", "version": "new"}).encode(), "well-formed"),
    "bad_rows.json": (
        json.dumps(
            {
                "format": "ecva-results",
                "version": 1,
                "model": "m",
                "submissions": [{"key": "k", "predictions": [{"video_id": "1"}]}],
            }
        ).encode(),
        "well-formed",
    ),
    "huge_cell.csv": (b"model,submission_key\nm," + b"x" * 200_000 + b"\n", "not an ECVA results CSV"),
}


@pytest.mark.parametrize("name", sorted(EXPORT_CASES))
def test_malformed_results_exports_are_refused_and_store_nothing(tmp_path: Path, name: str) -> None:
    content, expected = EXPORT_CASES[name]
    path = tmp_path / name
    path.write_bytes(content)
    db = ResultsDB(tmp_path / "r.db")
    with pytest.raises(ResultsError, match=expected) as caught:
        import_results(db, path)
    assert str(path) in str(caught.value) and db.models() == []
    result = CliRunner().invoke(cli, ["results", "import", str(path), "--db", str(tmp_path / "r.db")])
    assert result.exit_code == 1 and "Traceback" not in result.output
