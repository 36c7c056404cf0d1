"""The official judge prompts, read with ``ast`` from a (fake) checkout of the official repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecva_core.errors import ConfigError
from ecva_core.metrics.judge.engine import request_key
from ecva_core.metrics.judge.official import read_official_prompts
from ecva_core.metrics.judge.prompts import prompt_for
from ecva_core.metrics.judge.types import JudgeRequest
from ecva_core.metrics.protocol import OFFICIAL_JUDGE_MODEL, protocol_of
from ecva_core.schema import Task
from tests.official_checkout import FAKE_PROMPTS, write_official_checkout

BY_JUDGE = {
    "consistency": "PROMPT_FOR_TEXT_MATCHING",
    "logic": "PROMPT_FOR_LOGIC_CHECKING",
    "keyphrase": "PROMPT_FOR_KEY_INFOMATION_CHECKING",
    "hallucination": "PROMPTS_FOR_REASONING_ABILITY_CHECKING",
}


def test_the_prompts_are_exactly_the_checkouts_strings(official_repo: Path) -> None:
    prompts = read_official_prompts()
    assert prompts.texts == FAKE_PROMPTS  # keys, URLs and name references beside them are not prompts
    assert (prompts.model_type, prompts.judge_model, prompts.model_note()) == ("gpt-4o", "gpt-4o", None)
    for judge, name in BY_JUDGE.items():
        prompt = prompt_for(judge, "official")
        assert prompt.system == FAKE_PROMPTS[name] and prompt.reply_format == "official"
        assert prompt.version.startswith(f"official-v1-{judge}-") and protocol_of(prompt.version) == "official"
    assert prompt_for("hallucination_pair", "official").version == "hallucination-pair-v1"  # ours: no official one


def test_no_setting_fails_with_what_to_do() -> None:
    with pytest.raises(ConfigError) as info:
        prompt_for("logic", "official")
    message = str(info.value)
    assert "ECVA_OFFICIAL_REPO is not set: clone https://github.com/Dulpy/ECVA and set ECVA_OFFICIAL_REPO" in message
    assert "AnomEval/evaluating_system_v2/config.py" in message and "--no-judge" in message
    assert prompt_for("logic").version == "logic-v1"  # our protocol needs no checkout


def test_a_folder_without_the_file_fails_naming_the_expected_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(tmp_path / "not-ecva"))
    expected = tmp_path / "not-ecva" / "AnomEval" / "evaluating_system_v2" / "config.py"
    with pytest.raises(ConfigError, match="cannot read") as info:
        prompt_for("consistency", "official")
    assert str(expected) in str(info.value) and "ECVA_OFFICIAL_REPO=" in str(info.value)


@pytest.mark.parametrize(
    ("prompts", "missing"),
    [
        ({k: v for k, v in FAKE_PROMPTS.items() if k != "PROMPT_FOR_LOGIC_CHECKING"}, "PROMPT_FOR_LOGIC_CHECKING"),
        ({**FAKE_PROMPTS, "PROMPTS_FOR_REASONING_ABILITY_CHECKING": ""}, "PROMPTS_FOR_REASONING_ABILITY_CHECKING"),
    ],
)
def test_a_missing_or_empty_prompt_fails_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts: dict[str, str], missing: str
) -> None:
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(write_official_checkout(tmp_path / "ecva", prompts)))
    with pytest.raises(ConfigError, match=f"lacks {missing}: each must be a module-level assignment"):
        prompt_for("consistency", "official")


def test_a_prompt_last_assigned_something_else_than_a_string_is_missing(tmp_path: Path) -> None:
    checkout = write_official_checkout(tmp_path / "ecva", extra="PROMPT_FOR_TEXT_MATCHING = PLACEHOLDER_API_KEY\n")
    with pytest.raises(ConfigError, match="lacks PROMPT_FOR_TEXT_MATCHING"):
        read_official_prompts(checkout)


def test_a_file_that_is_not_python_fails_with_its_line(tmp_path: Path) -> None:
    checkout = write_official_checkout(tmp_path / "ecva", extra="def broken(:\n")
    with pytest.raises(ConfigError, match=r"not valid Python \(line \d+"):
        read_official_prompts(checkout)


def test_the_file_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "executed.txt"
    side_effect = f"import pathlib\npathlib.Path({str(trace)!r}).write_text('ran')\nraise SystemExit(3)\n"
    checkout = write_official_checkout(tmp_path / "ecva", extra=side_effect)
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(checkout))
    assert prompt_for("logic", "official").system == FAKE_PROMPTS["PROMPT_FOR_LOGIC_CHECKING"]
    assert not trace.exists()


def test_another_prompt_text_is_another_version_and_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = JudgeRequest("logic", "1", Task.CAUSE, "Why?", "ref", "a man fell", protocol="official")
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(write_official_checkout(tmp_path / "a")))
    before = {judge: prompt_for(judge, "official").version for judge in BY_JUDGE}
    key_before = request_key(request, "gpt-4o")
    changed = {**FAKE_PROMPTS, "PROMPT_FOR_LOGIC_CHECKING": FAKE_PROMPTS["PROMPT_FOR_LOGIC_CHECKING"] + "Be strict.\n"}
    monkeypatch.setenv("ECVA_OFFICIAL_REPO", str(write_official_checkout(tmp_path / "b", changed)))
    after = {judge: prompt_for(judge, "official").version for judge in BY_JUDGE}
    assert after["logic"] != before["logic"] and after["logic"].startswith("official-v1-logic-")
    assert {j: v for j, v in after.items() if j != "logic"} == {j: v for j, v in before.items() if j != "logic"}
    assert request_key(request, "gpt-4o") != key_before


def test_model_type_other_than_the_published_one_is_said_and_wins(tmp_path: Path) -> None:
    other = read_official_prompts(write_official_checkout(tmp_path / "a", model_type="gpt-4o-2024-08-06"))
    assert other.judge_model == "gpt-4o-2024-08-06"
    assert other.model_note() is not None and "MODEL_TYPE = 'gpt-4o-2024-08-06'" in other.model_note()
    unnamed = read_official_prompts(write_official_checkout(tmp_path / "b", model_type=None))
    assert (unnamed.judge_model, unnamed.model_note()) == (OFFICIAL_JUDGE_MODEL, None)
