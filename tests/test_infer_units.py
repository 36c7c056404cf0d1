"""The small rules of ``ecva infer``: strict ranking parse, log replay, shard assignment, row order."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecva_core.infer import ItemResult, ResultLog, read_results, row_order, shard_of
from ecva_core.infer.probe import RankingError, kept_positions, parse_ranking


@pytest.mark.parametrize("text", ['{"ranking": [2, 1, 4, 3]}', "[2, 1, 4, 3]", ' {"ranking":[2,1,4,3]}\n'])
def test_a_ranking_is_an_order_of_the_four_chunks(text: str) -> None:
    assert parse_ranking(text) == [2, 1, 4, 3]


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "2,1,4,3",
        '{"ranking": [1, 2, 3]}',
        '{"ranking": [1, 1, 2, 3]}',
        '{"ranking": [0, 1, 2, 3]}',
        '{"ranking": ["1", "2", "3", "4"]}',
        '{"ranking": [true, 2, 3, 4]}',
        '{"order": [1, 2, 3, 4]}',
        "The most relevant is chunk 2: [2, 1, 4, 3]",
    ],
)
def test_anything_else_is_a_recorded_failure(text: str | None) -> None:
    with pytest.raises(RankingError):
        parse_ranking(text)


def test_the_top_two_chunks_are_removed() -> None:
    kept, removed = kept_positions([3, 1, 4, 2])
    assert removed == list(range(0, 8)) + list(range(16, 24))
    assert kept == list(range(8, 16)) + list(range(24, 32))


def test_replay_prefers_a_success_skips_torn_lines_and_reads_every_process_log(tmp_path: Path) -> None:
    with ResultLog(tmp_path) as first:
        first.append([ItemResult("a", error="server said 500"), ItemResult("b", output="yes", frames=[1.0])])
    with ResultLog(tmp_path) as second:
        second.append([ItemResult("a", output="now it works"), ItemResult("b", error="later failure")])
    with second.path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "c", "output": "torn')  # a kill -9 in the middle of a line
    found = read_results(tmp_path)
    assert found["a"].output == "now it works" and found["b"].output == "yes" and "c" not in found
    assert len(list(tmp_path.glob("results-*.jsonl"))) == 2


def test_shards_are_stable_and_rows_follow_the_benchmark_order() -> None:
    assert [shard_of(v, 4) for v in ("1", "2", "662")] == [shard_of(v, 4) for v in ("1", "2", "662")]
    assert {shard_of(str(v), 4) for v in range(1, 200)} == {0, 1, 2, 3}
    rows = [
        {"video_file": "00010.mp4", "task_type": "Description"},
        {"video_file": "00002.mp4", "task_type": "Result", "probe": "no_keyframes"},
        {"video_file": "00002.mp4", "task_type": "Result"},
        {"video_file": "00002.mp4", "task_type": "Cause"},
    ]
    ordered = sorted(rows, key=row_order)
    assert [(r["video_file"], r["task_type"], bool(r.get("probe"))) for r in ordered] == [
        ("00002.mp4", "Cause", False),
        ("00002.mp4", "Result", False),
        ("00002.mp4", "Result", True),
        ("00010.mp4", "Description", False),
    ]
