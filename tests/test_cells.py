"""Every cell shape the real annotation sheet holds, good and malformed, through the lenient parsers."""

from __future__ import annotations

import pytest

from ecva_core.dataset import cells
from ecva_core.schema import Category, Segment


def kinds(problems: list[str]) -> list[str]:
    return [cells.problem_kind(p) for p in problems]


# --- categories -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("[7-2,5]", [Category(7, 2, 5)]),
        ("[1-1,5][5-1,3]", [Category(1, 1, 5), Category(5, 1, 3)]),
        ("[1-1,5] [5-1,3]", [Category(1, 1, 5), Category(5, 1, 3)]),
        (" [ 7 - 2 , 5 ]\n[9-4,4]\n", [Category(7, 2, 5), Category(9, 4, 4)]),
        ("［7-2，5］", [Category(7, 2, 5)]),
        ("【7-2,5】", [Category(7, 2, 5)]),
        ("[7－2,5]", [Category(7, 2, 5)]),
        ("[5]", [Category(5)]),
    ],
)
def test_category_cells_that_parse(cell: str, expected: list[Category]) -> None:
    assert cells.parse_categories(cell) == (expected, [])


@pytest.mark.parametrize(
    ("cell", "recovered"),
    [
        ("枪战", []),
        ("视频损坏（只能播放前4秒）", []),
        ("[,]", []),
        ("[3-1,3,]", [Category(3, 1, 3)]),
        ("", []),
        (None, []),
        ("7-2,5", [Category(7, 2, 5)]),
    ],
)
def test_category_cells_that_do_not_parse_are_flagged(cell: str | None, recovered: list[Category]) -> None:
    categories, problems = cells.parse_categories(cell)
    assert categories == recovered
    assert kinds(problems) == [cells.KIND_CATEGORY]


def test_unknown_category_code_is_flagged_but_kept() -> None:
    categories, problems = cells.parse_categories("[5-9,5]")
    assert categories == [Category(5, 9, 5)]
    assert kinds(problems) == [cells.KIND_UNKNOWN_CATEGORY]


def test_category_round_trip_format() -> None:
    assert cells.format_categories([Category(7, 2, 5), Category(1, 1, 3)]) == "[7-2,5][1-1,3]"


# --- moments ----------------------------------------------------------------------------------


def test_mmss_segments_are_minutes_and_seconds() -> None:
    segments, problems = cells.parse_moments("[0052,0114][0118,0144]")
    assert segments == [Segment(52, 74), Segment(78, 104)]
    assert problems == []
    assert cells.format_moments(segments) == "[0052,0114][0118,0144]"


@pytest.mark.parametrize(
    "cell",
    [
        "[0052, 0114]\n[0118,0144]",
        "［0052，0114］［0118，0144］",
        "[00:52,01:14][01:18,01:44]",
        "[0052-0114][0118-0144]",
    ],
)
def test_moment_spacing_fullwidth_and_colons(cell: str) -> None:
    assert cells.parse_moments(cell) == ([Segment(52, 74), Segment(78, 104)], [])


def test_three_digit_zero_is_not_a_problem() -> None:
    assert cells.parse_moments("[000,0941]") == ([Segment(0, 581)], [])


@pytest.mark.parametrize(
    ("cell", "segments", "words"),
    [
        ("[,]", [], "is empty"),
        ("[0005,]", [], "no end"),
        ("[,0005]", [], "no start"),
        ("[0012,20]", [Segment(12, 20)], "2 digits"),
        ("[0005,00050]", [Segment(5, 50)], "5 digits"),
        ("[0000,0006][00043,0048]", [Segment(0, 6), Segment(43, 48)], "5 digits"),
        ("[0070,0100]", [], "seconds"),
        ("[0114,0052]", [], "ends before it starts"),
        ("[abc,0052]", [], "not [MMSS,MMSS]"),
        ("0052,0114", [Segment(52, 74)], "not in [brackets]"),
        ("", [], "empty cell"),
        (None, [], "empty cell"),
        ("see video", [], "no [MMSS,MMSS]"),
    ],
)
def test_malformed_moments_recover_what_is_clear_and_flag(
    cell: str | None, segments: list[Segment], words: str
) -> None:
    parsed, problems = cells.parse_moments(cell)
    assert parsed == segments
    if words:
        assert kinds(problems) == [cells.KIND_MOMENT]
        assert words in problems[0]


def test_sixty_or_more_seconds_is_flagged() -> None:
    parsed, problems = cells.parse_moments("[0070,0130]")
    assert parsed == [Segment(70, 90)]
    assert "70 seconds" in problems[0]


def test_moment_entry_count_ignores_empty_segments() -> None:
    assert cells.moment_entry_count("[0052,0114][0118,0144]") == 2
    assert cells.moment_entry_count("[0005,]") == 1
    assert cells.moment_entry_count("[,]") == 0
    assert cells.moment_entry_count(None) == 0


# --- descriptions -----------------------------------------------------------------------------


def test_one_description_per_bracket() -> None:
    text = "[Three masked thieves entered,][ damaging the building]"
    assert cells.parse_descriptions(text) == (["Three masked thieves entered,", "damaging the building"], [])


@pytest.mark.parametrize(
    ("cell", "expected", "words"),
    [
        (
            "[Thieves enter the store and steal motorcycles",
            ["Thieves enter the store and steal motorcycles"],
            "unclosed",
        ),
        ("A man falls.", ["A man falls."], "not in [brackets]"),
        ("[a] stray [b]", ["a", "stray", "b"], "outside brackets"),
        ("[a][]", ["a"], "empty []"),
        ("［a］［b］", ["a", "b"], ""),
        ("/", [], ""),
        (None, [], ""),
    ],
)
def test_description_shapes(cell: str | None, expected: list[str], words: str) -> None:
    descriptions, problems = cells.parse_descriptions(cell)
    assert descriptions == expected
    if words:
        assert kinds(problems) == [cells.KIND_DESCRIPTIONS]
        assert words in problems[0]
    else:
        assert problems == []


# --- key phrases ------------------------------------------------------------------------------


def test_valid_key_phrases() -> None:
    assert cells.parse_key_phrases('["a b", "c d"]') == (["a b", "c d"], [])


def test_missing_quote_as_in_rows_302_and_496_is_recovered() -> None:
    cell = (
        '["picked up a small pile of paper money",gripping at a pile of yellow paper money",'
        '"placed it directly on the window boundary of the stove","paper money flew directly into the flames"]'
    )
    phrases, problems = cells.parse_key_phrases(cell)
    assert phrases == [
        "picked up a small pile of paper money",
        "gripping at a pile of yellow paper money",
        "placed it directly on the window boundary of the stove",
        "paper money flew directly into the flames",
    ]
    assert kinds(problems) == [cells.KIND_KEY_PHRASES_INVALID]


def test_smart_quotes_are_read_without_a_flag() -> None:
    assert cells.parse_key_phrases("[“man falls”, “car stops”]") == (["man falls", "car stops"], [])


def test_python_style_and_plain_lists_are_recovered_and_flagged() -> None:
    phrases, problems = cells.parse_key_phrases("['man falls', 'car stops']")
    assert phrases == ["man falls", "car stops"]
    assert kinds(problems) == [cells.KIND_KEY_PHRASES_INVALID]
    phrases, problems = cells.parse_key_phrases("man falls; car stops")
    assert phrases == ["man falls", "car stops"]
    assert kinds(problems) == [cells.KIND_KEY_PHRASES_INVALID]


def test_empty_key_phrases() -> None:
    assert cells.parse_key_phrases('["","","",""]') == (
        [],
        [f"{cells.KIND_KEY_PHRASES_EMPTY}: all 4 entries are empty"],
    )
    assert kinds(cells.parse_key_phrases(None)[1]) == [cells.KIND_KEY_PHRASES_EMPTY]
    phrases, problems = cells.parse_key_phrases('["woman in a blue dress","","",""]')
    assert phrases == ["woman in a blue dress"]
    assert kinds(problems) == [cells.KIND_KEY_PHRASES_BLANK]


# --- text and time cuts -----------------------------------------------------------------------


def test_unusable_marker_and_text_cleanup() -> None:
    assert cells.is_unusable_marker(" / ")
    assert cells.is_unusable_marker("／")
    assert not cells.is_unusable_marker("A car hit a wall / fence")
    assert cells.clean_text("  two\n spaces ") == "two spaces"


@pytest.mark.parametrize(
    ("note", "window"),
    [
        ("时间切割01：31-01：44", Segment(91, 104)),
        ("时间切割00:36-01:30", Segment(36, 90)),
        ("cut 1:02:03 - 1:02:10", Segment(3723, 3730)),
        ("no cut here", None),
        (None, None),
    ],
)
def test_time_cut_notes(note: str | None, window: Segment | None) -> None:
    assert cells.parse_time_cut(note) == window
