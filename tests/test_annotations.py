"""Annotation files (xlsx, csv with other headers, CUVA json) into records, flags and QA items."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from ecva_core.dataset import Dataset, load_dataset
from ecva_core.dataset.annotations import header_field, read_annotations
from ecva_core.dataset.cells import problem_kind
from ecva_core.errors import DataError
from ecva_core.schema import SCORED_TASKS, Category, Segment, Task

OFFICIAL_HEADERS = [
    "video_id",
    "X1 (5-1（总结其他类))",
    "X2 - reason（导致异常发生的原因）",
    "X2 -  result （异常事件导致的结果）",
    "X3 - moment",
    "X3 - description",
    "X4 - key sentences  （尊重事实的前提下，尽可能写一些（4-6个）独立短句（不超过7个单词），中间不要加逗号）",
    "Annotator",
    "备注",
]
# the same columns as the ModelScope CSV is believed to name them, plus whitespace and full-width noise
RELEASE_HEADERS = [
    " Video ID ",
    "A1 ［category］",
    "A2 - Reason (cause)",
    "A2 -  RESULT （结果）",
    "A3,moment",
    "A3 - description",
    "A4  Key Sentences",
    "annotator",
    "备注 (notes)",
]

ROWS = [
    ["example", "[type1,score1]", "free-text", "free-text", "[xxxx, xxxx]", "[free-text]", "[s1, s2]", "", ""],
    [
        1,
        "[7-1,5]",
        "Thieves broke in.",
        "Property was stolen.",
        "[0052,0114][0118,0144]",
        "[a][b]",
        '["x","y"]',
        "",
        "",
    ],
    [2, "枪战", "Men fought.", "One was hurt.", "[0005,]", "[fight]", '["a","b"]', "", ""],
    [3, "视频损坏（只能播放前4秒）", "/", "/", "[,]", "/", '["","","",""]', "", ""],
    [4, "[5-1,5]", "Same.", "same.", "[0000,0010][0011,0020]", "[only one]", '["a",b"]', "", ""],
    ["4-1", "[6-3,5]", "Robbed.", "Fled.", "[0131,0144]", "[robbery]", '["gun"]', "时间切割01：31-01：44", ""],
]


def write_csv(path: Path, headers: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, headers: list[str], rows: list[list[object]]) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    workbook.create_sheet("second").append(["unrelated"])
    workbook.save(path)
    return path


def summary(records: list, flags: list) -> tuple[list, list]:
    return (
        [(r.video_id, r.video_file, r.annotation, r.clip_window, r.source_row) for r in records],
        sorted((f.video_id, f.field, f.problem, f.row) for f in flags),
    )


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("video_id", "video_id"),
        ("X1 (5-1（总结其他类))", "category"),
        ("X2 - reason（导致异常发生的原因）", "reason"),
        ("X2 -  result （异常事件导致的结果）", "result"),
        ("X3 - moment", "moments"),
        ("A3,moment", "moments"),
        ("A3 - description", "descriptions"),
        ("x4 - KEY SENTENCES  (notes)", "key_phrases"),
        ("A1 ［category］", "category"),
        ("Annotator", "annotator"),
        ("备注", "notes"),
        ("something else", None),
    ],
)
def test_headers_match_by_meaning(header: str, field: str | None) -> None:
    assert header_field(header) == field


def test_synthetic_sheet_records_and_flags(tmp_path: Path) -> None:
    records, flags = read_annotations(write_xlsx(tmp_path / "a.xlsx", OFFICIAL_HEADERS, ROWS))
    by_id = {r.video_id: r for r in records}
    assert list(by_id) == ["1", "2", "3", "4", "4-1"]
    one = by_id["1"]
    assert one.video_file == "00001.mp4"
    assert one.annotation.categories == [Category(7, 1, 5)]
    assert one.annotation.moments == [Segment(52, 74), Segment(78, 104)]
    assert one.annotation.descriptions == ["a", "b"]
    assert one.annotation.key_phrases == ["x", "y"]
    assert one.flags == [] and one.source_row == 3
    assert not by_id["3"].usable and by_id["2"].usable
    clip = by_id["4-1"]
    assert clip.video_file == "00004.mp4" and clip.clip_window == Segment(91, 104)
    kinds = Counter((f.video_id, problem_kind(f.problem)) for f in flags)
    assert kinds[("2", "unparseable category")] == 1
    assert kinds[("2", "malformed moment")] == 1
    assert kinds[("3", "unusable video")] == 1
    assert kinds[("3", "empty key phrases")] == 1
    assert kinds[("3", "reason equals result")] == 1
    assert kinds[("4", "reason equals result")] == 1
    assert kinds[("4", "description count mismatch")] == 1
    assert kinds[("4", "invalid key phrases")] == 1
    assert by_id["4"].annotation.key_phrases == ["a", "b"]


def test_csv_with_release_headers_loads_the_same_records(tmp_path: Path) -> None:
    xlsx = read_annotations(write_xlsx(tmp_path / "a.xlsx", OFFICIAL_HEADERS, ROWS))
    csv_ = read_annotations(write_csv(tmp_path / "a.csv", RELEASE_HEADERS, ROWS))
    assert summary(*csv_) == summary(*xlsx)


def test_duplicate_ids_keep_the_first(tmp_path: Path) -> None:
    rows = [*ROWS[1:3], [1, "[1-1,5]", "r", "s", "[0000,0001]", "[d]", '["k"]', "", ""]]
    records, flags = read_annotations(write_csv(tmp_path / "d.csv", OFFICIAL_HEADERS, rows))
    assert [r.video_id for r in records] == ["1", "2"]
    assert records[0].annotation.reason == "Thieves broke in."
    assert any(problem_kind(f.problem) == "duplicate video id" and f.row == 4 for f in flags)


def test_cuva_json_records_load(tmp_path: Path) -> None:
    items = [
        {"ID": 1, "task": "Description", "visual_input": "00007.mp4", "instruction": "q", "output": "A man runs."},
        {"ID": 2, "task": "Cause", "visual_input": "00007.mp4", "instruction": "q", "output": "He was chased."},
        {"ID": 3, "task": "Result", "visual_input": "00007.mp4", "instruction": "q", "output": "He escaped."},
        {"ID": 4, "task": "Classification", "visual_input": "00007.mp4", "instruction": "q", "output": "[1-1,5]"},
        {"ID": 5, "task": "Timestamp", "visual_input": "00007.mp4", "instruction": "q", "output": "[0003,0010]"},
        {"ID": 6, "task": "Detection", "visual_input": "00007.mp4", "instruction": "q", "output": "YES"},
        {
            "ID": 7,
            "task": "Description",
            "visual_input": "00008.mp4",
            "instruction": "q",
            "output": "A car hits a pole.",
        },
        {"ID": 8, "task": "Cause", "visual_input": "00008.mp4", "instruction": "q", "output": "Ice."},
        {"ID": 9, "task": "Result", "visual_input": "00008.mp4", "instruction": "q", "output": "Pole bent."},
    ]
    path = tmp_path / "cuva.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    dataset = load_dataset(path)
    assert sorted(dataset.records) == ["7", "8"]
    seven = dataset.records["7"]
    assert seven.video_file == "00007.mp4"
    assert seven.annotation.descriptions == ["A man runs."]
    assert seven.annotation.reason == "He was chased." and seven.annotation.result == "He escaped."
    assert seven.annotation.categories == [Category(1, 1, 5)]
    assert seven.annotation.moments == [Segment(3, 10)]
    assert dataset.flags == []
    assert len(dataset.qa_items()) == 6
    assert dataset.qa_item("00008.mp4", "Cause").answer == "Ice."
    assert dataset.qa_item("8", Task.TIMESTAMP) is None


def test_json_rows_with_sheet_headers_load(tmp_path: Path) -> None:
    rows = [dict(zip(RELEASE_HEADERS, row, strict=True)) for row in ROWS]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    records, _ = read_annotations(path)
    assert [r.video_id for r in records] == ["1", "2", "3", "4", "4-1"]


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.xlsx", None, "no such file"),
        ("fake.xlsx", b"this is not a zip", "not a readable .xlsx"),
        ("noid.csv", b"reason,result\na,b\n", "no header row with a video id column"),
        ("bad.json", b"[{", "invalid JSON"),
        ("scalar.json", b"42", "JSON list"),
        ("notes.txt.doc", b"x", "unsupported"),
    ],
)
def test_unreadable_files_raise_data_error(tmp_path: Path, name: str, content: bytes | None, words: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=words) as info:
        load_dataset(path)
    assert name in str(info.value)


def test_dataset_folder_layout_and_video_paths(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    (folder / "videos").mkdir(parents=True)
    write_csv(folder / "annotations.csv", RELEASE_HEADERS, ROWS)
    (folder / "videos" / "00001.mp4").write_bytes(b"\0")
    (folder / "videos" / "00004.avi").write_bytes(b"\0")
    (folder / "submissions").mkdir()
    (folder / "submissions" / "m.json").write_text("[]", encoding="utf-8")
    dataset = load_dataset(folder)
    assert isinstance(dataset, Dataset)
    assert dataset.root == folder and dataset.annotation_file == folder / "annotations.csv"
    assert not dataset.is_demo and dataset.name == "ds"
    assert dataset.video_path("1") == folder / "videos" / "00001.mp4"
    assert dataset.video_path("00004.mp4") == folder / "videos" / "00004.avi"
    assert dataset.video_path("4-1") == folder / "videos" / "00004.avi"
    assert dataset.video_path("2") is None
    assert dataset.video_path("999") is None
    assert len(dataset.fingerprint) == 64
    # any parseable annotation file is found when the preferred names are absent
    (folder / "annotations.csv").rename(folder / "round1.csv")
    assert load_dataset(folder).annotation_file == folder / "round1.csv"


def test_folder_without_annotations_raises(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no annotation file"):
        load_dataset(tmp_path / "empty")


def test_default_path_comes_from_ecva_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "env.csv", OFFICIAL_HEADERS, ROWS)
    monkeypatch.setenv("ECVA_DATA", str(path))
    assert load_dataset().annotation_file == path


def test_fingerprint_follows_the_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", OFFICIAL_HEADERS, ROWS)
    first = load_dataset(path).fingerprint
    write_csv(path, OFFICIAL_HEADERS, ROWS[:3])
    assert load_dataset(path).fingerprint != first


def test_qa_items_follow_the_benchmark(tmp_path: Path) -> None:
    dataset = load_dataset(write_csv(tmp_path / "q.csv", OFFICIAL_HEADERS, ROWS))
    items = dataset.qa_items()
    # usable source videos 1, 2, 4 (3 is unusable; 4-1 is a sub-clip) x 3 scored tasks
    assert [(i.video_id, i.task) for i in items] == [(v, t) for v in ("1", "2", "4") for t in SCORED_TASKS]
    assert len(dataset.qa_items(include_subclips=True)) == 12
    description = dataset.qa_item("1", Task.DESCRIPTION)
    assert description.answer == "a b" and description.key_phrases == ("x", "y")
    assert description.question.startswith("Give a detailed description of the anomalous segment")
    assert dataset.qa_item("1", "Classification").answer == "[7-1,5]"
    assert dataset.qa_item("1", "Timestamp").answer == "[0052,0114][0118,0144]"
    assert dataset.qa_item("2", "Classification") is None
    assert dataset.qa_item("3", "Cause") is None
    assert dataset.qa_item("4-1", "Result").answer == "Fled."


# --- the real annotation file -----------------------------------------------------------------


@pytest.fixture(scope="module")
def real(shared_ecva: Path) -> Dataset:
    return load_dataset(shared_ecva / "annotations.xlsx")


def ids_of(dataset: Dataset, kind: str) -> set[str]:
    return {f.video_id for f in dataset.flags if problem_kind(f.problem) == kind}


def test_real_file_counts(real: Dataset) -> None:
    report = real.validation_report()
    assert report["videos"] == 1000
    assert report["records"] == 1006 and report["clips"] == 6
    assert report["unusable_videos"] == 17
    assert report["qa_items"] == 3 * (1000 - 17)
    assert report["qa_items_with_clips"] == 3 * (1006 - 17)
    counts = report["problem_counts"]
    assert counts["unusable video"] == 17
    assert counts["unparseable category"] == 77
    assert counts["malformed moment"] == 21
    assert counts["invalid key phrases"] == 2
    assert counts["empty key phrases"] == 17
    assert counts["reason equals result"] == 29
    assert counts["description count mismatch"] == 6
    assert counts["malformed descriptions"] == 1
    assert counts["blank key phrase entries"] == 1
    assert sum(counts.values()) == len(report["flags"])
    assert all(set(f) >= {"video_id", "field", "problem"} for f in report["flags"])


def test_real_file_flags_the_known_rows(real: Dataset) -> None:
    assert ids_of(real, "invalid key phrases") == {"302", "496"}
    unusable = ids_of(real, "unusable video")
    assert ids_of(real, "empty key phrases") == unusable
    assert unusable <= ids_of(real, "reason equals result")
    partly_bad_moments = ids_of(real, "malformed moment") - unusable
    assert partly_bad_moments == {"229", "323", "704", "824"}
    # the README's "11 description-count mismatches" counts with a strict parser: the 6 rows with
    # fewer descriptions than moments, the unclosed bracket of 758 and the 4 rows whose malformed
    # segment a strict parser drops. Here those 4 are recovered (or flagged as moments) instead.
    mismatched = ids_of(real, "description count mismatch")
    assert mismatched == {"132", "200", "291", "352", "406", "420"}
    assert ids_of(real, "malformed descriptions") == {"758"}
    assert len(mismatched | {"758"} | partly_bad_moments) == 11


def test_real_file_cells(real: Dataset) -> None:
    one = real.records["1"]
    assert one.video_file == "00001.mp4"
    assert one.annotation.moments == [Segment(52, 74), Segment(78, 104)]
    assert one.annotation.categories == [Category(7, 1, 5)]
    assert real.records["1000"].video_file == "01000.mp4"
    assert real.records["824"].annotation.moments == [Segment(12, 20)]
    assert real.records["229"].annotation.moments == [Segment(0, 6), Segment(43, 48)]
    assert real.records["704"].annotation.moments == []
    assert real.records["108"].annotation.categories == [Category(3, 1, 3)]
    assert len(real.records["302"].annotation.key_phrases) == 4
    assert not real.records["167"].usable and real.qa_item("167", "Cause") is None


def test_real_file_subclips_keep_their_time_cut(real: Dataset) -> None:
    clips = {v: r for v, r in real.records.items() if "-" in v}
    assert sorted(clips) == ["19-1", "19-2", "19-3", "19-4", "65-1", "65-2"]
    assert clips["19-2"].video_file == "00019.mp4"
    assert clips["19-2"].clip_window == Segment(91, 104)
    assert clips["65-2"].clip_window == Segment(482, 739)
    assert all(r.clip_window is not None for r in clips.values())
    for record in clips.values():
        window = record.clip_window
        assert all(window.start <= m.start and m.end <= window.end for m in record.annotation.moments)
    assert real.records["65"].clip_window == Segment(0, 382)


def test_real_file_joins_official_model_outputs_by_id(real: Dataset, shared_ecva: Path) -> None:
    outputs = json.loads((shared_ecva / "model_outputs" / "videollama2_new_reason.json").read_text(encoding="utf-8"))
    ids = {real.record(o["video_file"]).video_id for o in outputs}
    assert len(ids) == 1000
    scored = {i.video_id for i in real.qa_items((Task.CAUSE,))}
    assert scored <= ids
    row = next(o for o in outputs if o["video_file"] == "00001.mp4")
    assert real.qa_item("1", "Cause").answer == " ".join(row["human_expert_answer"].split())


def test_real_sheet_as_csv_with_release_headers_loads_the_same(
    real: Dataset, shared_ecva: Path, tmp_path: Path
) -> None:
    from openpyxl import load_workbook

    workbook = load_workbook(shared_ecva / "annotations.xlsx", read_only=True)
    rows = [list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)][1:]
    workbook.close()
    path = write_csv(tmp_path / "release.csv", RELEASE_HEADERS, rows)
    records, flags = read_annotations(path)
    assert summary(records, flags) == summary(list(real.records.values()), real.flags)


def test_default_without_ecva_data_is_the_demo_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecva_core.dataset import demo

    dest = tmp_path / "demo"
    dest.mkdir()
    # a demo folder that ensure_demo() accepts as built; its annotations are the generator's own
    demo.write_annotations(dest / demo.ANNOTATION_FILE, demo.CLIPS)
    (dest / demo.MARKER).write_text(f"demo version: {demo.DEMO_VERSION}\n", encoding="utf-8")
    monkeypatch.setenv("ECVA_DEMO_DIR", str(dest))
    dataset = load_dataset()
    assert dataset.is_demo and "demo" in dataset.name
    assert dataset.root == dest.resolve()
    assert dataset.flags == []
    assert len(dataset.qa_items()) == 3 * len(demo.CLIPS)


def test_missing_columns_are_flagged_once(tmp_path: Path) -> None:
    rows = [[1, "Thieves broke in.", "Property was stolen."], [2, "A fight.", "A man was hurt."]]
    records, flags = read_annotations(write_csv(tmp_path / "few.csv", ["ID", "Cause", "Outcome"], rows))
    assert [r.annotation.reason for r in records] == ["Thieves broke in.", "A fight."]
    assert sorted(f.field for f in flags) == ["category", "descriptions", "key_phrases", "moments"]
    assert all(f.video_id == "*" and problem_kind(f.problem) == "missing column" for f in flags)
