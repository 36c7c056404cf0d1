"""Turn a judge's reply into a verdict: strict JSON schema first, a lenient fallback second.

Official-protocol prompts are read with the official agents' own patterns instead: the first
``Score: N`` (text matching also accepts ``Score: [N]``), or ``Key Information Count: N, Included
Key Information Count: M``.

A reply that yields no score, or a score outside the judge's range, is a :class:`VerdictError`
with a reason; the engine stores it as a failure and never as a number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ecva_core.metrics.judge.types import JudgePrompt

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_REASON = re.compile(r"""["']?reason["']?\s*[:=]\s*["']?([^"'\n}]*)""", re.IGNORECASE)
_NUMBER = r"\[?\s*(-?\d+(?:\.\d+)?)"
_MAX_REASON = 500  # a judge that rambles should not bloat the results database
# Names the matched count may go by in free text. Only an explicit matched/included count is read:
# a bare "count" or "score" may be the total ("Key Information Count: 4" of the official reply
# format), which would read as full coverage; such a reply is a parse failure.
_KEYPHRASE_ALIASES = ("matched", "included key information count", "included")


class VerdictError(ValueError):
    """The reply holds no valid verdict; ``reason`` says why (shown to the user, stored in the DB)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Verdict:
    """The judge's integer score (or matched count), its reason, and whether the fallback was needed.

    ``total`` is the number of key phrases the judge itself counted (official key-information replies).
    """

    score: int
    reason: str
    lenient: bool = False
    total: int | None = None


def parse_verdict(prompt: JudgePrompt, text: str | None, n_phrases: int | None = None) -> Verdict:
    """Parse a reply for ``prompt``; ``n_phrases`` bounds the key-phrase judge's count."""
    if text is None or not text.strip():
        raise VerdictError("empty reply from the judge")
    if prompt.reply_format == "official":
        return _official(prompt, text)
    high = n_phrases if prompt.high is None else prompt.high
    if high is None:
        raise ValueError(f"judge {prompt.name} needs the number of key phrases")
    strict = _strict(prompt, text)
    verdict = strict if strict is not None else _lenient(prompt, text)
    if len(verdict.reason) > _MAX_REASON:
        verdict = Verdict(verdict.score, verdict.reason[:_MAX_REASON] + "...", verdict.lenient)
    if not prompt.low <= verdict.score <= high:
        field, score = prompt.score_field, verdict.score
        raise VerdictError(f"{field} {score} out of range {prompt.low}..{high} in reply: {_excerpt(text)}")
    return verdict


_OFFICIAL_SCORE = re.compile(r"Score:\s*([0-5])", re.IGNORECASE)
_OFFICIAL_BRACKETED_SCORE = re.compile(r"Score:\s*\[?([0-5])\]?", re.IGNORECASE)
_OFFICIAL_KEY_INFORMATION = re.compile(
    r"Key Information Count:\s*(\d+),\s*Included Key Information Count:\s*(\d+)", re.IGNORECASE
)


def _official(prompt: JudgePrompt, text: str) -> Verdict:
    """A reply to an official prompt, read with the official pattern; the rest of the reply is the reason."""
    reason = " ".join(text.split())[:_MAX_REASON]
    if prompt.score_field == "included":
        match = _OFFICIAL_KEY_INFORMATION.search(text)
        if match is None:
            raise VerdictError(
                f"no 'Key Information Count: N, Included Key Information Count: M' in reply: {_excerpt(text)}"
            )
        total, included = int(match.group(1)), int(match.group(2))
        if total == 0 or included > total:
            raise VerdictError(
                f"included count {included} of {total} key phrases is not a share in reply: {_excerpt(text)}"
            )
        return Verdict(included, reason, total=total)
    pattern = _OFFICIAL_BRACKETED_SCORE if prompt.name == "consistency" else _OFFICIAL_SCORE
    match = pattern.search(text)
    if match is None:
        raise VerdictError(f"no 'Score: N' in reply: {_excerpt(text)}")
    score = int(match.group(1))
    if not prompt.low <= score <= (prompt.high or 0):
        raise VerdictError(f"score {score} out of range {prompt.low}..{prompt.high} in reply: {_excerpt(text)}")
    return Verdict(score, reason)


def _strict(prompt: JudgePrompt, text: str) -> Verdict | None:
    """The reply is exactly the JSON object asked for, with an integer score and a string reason."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    score = data.get(prompt.score_field)
    reason = data.get("reason", "")
    if isinstance(score, bool) or not isinstance(score, int) or not isinstance(reason, str):
        return None
    return Verdict(score, reason.strip())


def _lenient(prompt: JudgePrompt, text: str) -> Verdict:
    """Fenced code, a JSON object inside prose, string or float scores, ``score: 4`` in plain text."""
    for candidate in _json_candidates(text):
        if isinstance(candidate, dict) and prompt.score_field in candidate:
            score = _as_int(candidate[prompt.score_field], text)
            reason = candidate.get("reason", "")
            return Verdict(score, str(reason).strip() if reason is not None else "", lenient=True)
    names = _KEYPHRASE_ALIASES if prompt.score_field == "matched" else (prompt.score_field,)
    for name in names:
        match = re.search(rf"""["']?\b{re.escape(name)}\b["']?\s*[:=]?\s*{_NUMBER}""", text, re.IGNORECASE)
        if match is not None:
            reason = _REASON.search(text)
            return Verdict(_as_int(match.group(1), text), reason.group(1).strip() if reason else "", lenient=True)
    raise VerdictError(f"no {prompt.score_field} found in reply: {_excerpt(text)}")


def _json_candidates(text: str) -> list[object]:
    """JSON objects found in fenced blocks, then the outermost braces of the text."""
    chunks = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        chunks.append(text[start : end + 1])
    found: list[object] = []
    for chunk in chunks:
        try:
            found.append(json.loads(chunk))
        except ValueError:
            continue
    return found


def _as_int(value: object, text: str) -> int:
    if isinstance(value, bool):
        raise VerdictError(f"score is a boolean, not a number, in reply: {_excerpt(text)}")
    try:
        number = float(str(value).strip())
    except ValueError:
        raise VerdictError(f"score {value!r} is not a number in reply: {_excerpt(text)}") from None
    if not number.is_integer():
        raise VerdictError(f"score {value!r} is not an integer in reply: {_excerpt(text)}")
    return int(number)


def _excerpt(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")
