"""A fake checkout of the official ECVA repository, in the shape of its judge-prompt file.

The official repository has no licence, so its prompt wordings never enter this project, tests
included: the texts below are placeholders written here, in the official file's layout (module-level
``NAME='''...'''`` assignments beside keys, a URL and a name that refers to another).
"""

from __future__ import annotations

from pathlib import Path

from ecva_core.metrics.judge.official import PROMPTS_FILE

FAKE_PROMPTS: dict[str, str] = {
    "PROMPT_FOR_TEXT_MATCHING": "\nPlaceholder text-matching agent. \nSay whether feature and truth agree.\n"
    "Reply: Score: 0 or 1\n",
    "PROMPT_FOR_LOGIC_CHECKING": "\nPlaceholder logic agent.\nGrade the system output against the base "
    "facts, 0 to 5.\nReply: Score: N\n",
    "PROMPT_FOR_KEY_INFOMATION_CHECKING": "\nPlaceholder key-information agent.\nCount the key items and "
    "the ones the output includes.\nReply: Key Information Count: N, Included Key Information Count: M\n",
    "PROMPTS_FOR_REASONING_ABILITY_CHECKING": "\nPlaceholder reasoning agent. \nDoes the output abstain?\n"
    "Reply: Score: 0 or 1\n",
}


def write_official_checkout(
    root: Path,
    prompts: dict[str, str] | None = None,
    model_type: str | None = "gpt-4o",
    extra: str = "",
) -> Path:
    """Write ``root/AnomEval/evaluating_system_v2/config.py`` with ``prompts`` (default: the placeholders;
    a name absent from ``prompts`` is left out), ``MODEL_TYPE`` unless None, and ``extra`` source
    appended; return ``root`` (what ``ECVA_OFFICIAL_REPO`` names)."""
    texts = FAKE_PROMPTS if prompts is None else prompts
    lines = [
        "PLACEHOLDER_API_KEY_0 ='sk-placeholder'",
        "PLACEHOLDER_API_KEY = PLACEHOLDER_API_KEY_0",
        "PLACEHOLDER_BASE_URL ='https://judge.invalid/v1'",
        "",
    ]
    if model_type is not None:
        lines += [f'MODEL_TYPE = "{model_type}"', ""]
    lines += [f"{name}='''{text}'''" for name, text in texts.items()]
    lines += ["", extra]
    path = root / PROMPTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return root
