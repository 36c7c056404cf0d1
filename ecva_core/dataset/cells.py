"""Lenient parsers for the cells of the ECVA annotation sheet.

Every parser returns ``(value, problems)``: it recovers what can be recovered sensibly and
describes the rest, so one bad cell never aborts a load. A problem is a string
``"<kind>: <detail>"``; the kind (one of the ``KIND_*`` constants) is what reports count by.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata

from ecva_core.schema import Category, Segment

KIND_CATEGORY = "unparseable category"
KIND_UNKNOWN_CATEGORY = "unknown category code"
KIND_MOMENT = "malformed moment"
KIND_DESCRIPTIONS = "malformed descriptions"
KIND_KEY_PHRASES_INVALID = "invalid key phrases"
KIND_KEY_PHRASES_EMPTY = "empty key phrases"
KIND_KEY_PHRASES_BLANK = "blank key phrase entries"

_EXTRA_BRACKETS = str.maketrans({"【": "[", "】": "]", "〔": "[", "〕": "]", "〖": "[", "〗": "]"})
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "‘": "'", "’": "'"})
_DASHES = str.maketrans({"–": "-", "—": "-", "−": "-", "~": "-", "～": "-"})


def problem_kind(problem: str) -> str:
    """The kind part of a problem string (``"malformed moment: ..."`` -> ``"malformed moment"``)."""
    return problem.split(":", 1)[0].strip()


def normalize(value: object) -> str:
    """Cell value as text with full-width brackets, commas, colons and digits folded to ASCII."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).translate(_EXTRA_BRACKETS)
    return text.strip()


def clean_text(value: object) -> str:
    """Free-text cell (reason, result): NFKC-normalised, whitespace collapsed."""
    return " ".join(normalize(value).split())


def is_unusable_marker(value: object) -> bool:
    """The annotators wrote ``/`` in the reason cell of videos they could not annotate."""
    return clean_text(value) == "/"


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


# --- categories -------------------------------------------------------------------------------

_CATEGORY_CELL = re.compile(r"(?:\[\d+(?:-\d+(?:,\d+)?)?\][,;]?)+")
_CATEGORY_ITEM = re.compile(r"\[(\d+)(?:-(\d+)(?:,(\d+))?)?\]")
_CATEGORY_LOOSE = re.compile(r"(\d+)\s*(?:-\s*(\d+))?\s*(?:,\s*(\d+))?")


def _category(major: str, sub: str | None, confidence: str | None) -> Category:
    return Category(int(major), int(sub) if sub else None, int(confidence) if confidence else None)


def format_categories(categories: list[Category]) -> str:
    """Official cell format: ``[7-2,5][1-1,3]``."""
    parts = []
    for category in categories:
        conf = f",{category.confidence}" if category.confidence is not None else ""
        parts.append(f"[{category.code}{conf}]")
    return "".join(parts)


def parse_categories(value: object) -> tuple[list[Category], list[str]]:
    """``[7-2,5]`` or several pairs ``[1-1,5][5-1,3]`` (whitespace, newlines, full-width ok).

    Cells that do not follow the format (annotator notes such as "枪战", ``[,]``, ``[3-1,3,]``)
    are flagged; major/sub/confidence numbers that can still be read from them are kept.
    """
    from ecva_core.taxonomy import is_known

    text = normalize(value)
    compact = re.sub(r"\s+", "", text.translate(_DASHES))
    if _CATEGORY_CELL.fullmatch(compact):
        categories = [_category(*m.groups()) for m in _CATEGORY_ITEM.finditer(compact)]
        unknown = [c.code for c in categories if not is_known(c)]
        problems = [f"{KIND_UNKNOWN_CATEGORY}: {', '.join(unknown)} not in the taxonomy"] if unknown else []
        return categories, problems
    if not compact:
        return [], [f"{KIND_CATEGORY}: empty cell"]
    recovered: list[Category] = []
    groups = re.findall(r"\[([^\[\]]*)\]", compact) or [compact]
    for group in groups:
        match = _CATEGORY_LOOSE.match(group)
        if match:
            recovered.append(_category(*match.groups()))
    detail = f"{_short(text)} is not [major-sub,confidence]"
    if recovered:
        detail += f"; read as {format_categories(recovered)}"
    return recovered, [f"{KIND_CATEGORY}: {detail}"]


# --- moments ----------------------------------------------------------------------------------


def format_mmss(seconds: float) -> str:
    """Seconds as the sheet's ``MMSS`` (``74`` -> ``0114``)."""
    total = round(seconds)
    return f"{total // 60:02d}{total % 60:02d}"


def format_moments(segments: list[Segment]) -> str:
    """Official cell format: ``[0052,0114][0118,0144]``."""
    return "".join(f"[{format_mmss(s.start)},{format_mmss(s.end)}]" for s in segments)


def _mmss_seconds(digits: str) -> tuple[float, str | None]:
    """``MMSS`` digits to seconds: the last two digits are seconds, the rest minutes.

    The integer reading recovers the known slips (``20`` = 0:20, ``00050`` = 0:50, ``00043`` =
    0:43); any width other than 4 is reported unless the value is zero (``000`` is unambiguous).
    """
    number = int(digits)
    minutes, seconds = divmod(number, 100)
    issues = []
    if len(digits) != 4 and number != 0:
        issues.append(f"{digits!r} has {len(digits)} digits, read as {minutes:02d}:{seconds:02d}")
    if seconds >= 60:
        issues.append(f"{digits!r} has {seconds} seconds")
    return float(minutes * 60 + seconds), "; ".join(issues) or None


def _moment_groups(text: str) -> list[str]:
    groups = re.findall(r"\[([^\[\]]*)\]", text)
    if not groups and re.search(r"\d", text):
        groups = [text.strip("[] ")]
    return groups


def moment_entry_count(value: object) -> int:
    """Number of segments the annotator wrote (entries with any digit; ``[,]`` counts as none)."""
    return sum(1 for g in _moment_groups(normalize(value)) if re.search(r"\d", g))


def parse_moments(value: object) -> tuple[list[Segment], list[str]]:
    """Concatenated ``[MMSS,MMSS]`` segments to seconds (``[0052,0114]`` = 52 s to 74 s).

    Malformed shapes are recovered where the reading is clear (``[0012,20]``, ``[0005,00050]``,
    ``[00043,0048]``) and dropped where it is not (``[,]``, ``[0005,]``); either way flagged.
    """
    text = normalize(value).translate(_DASHES)
    if not text:
        return [], [f"{KIND_MOMENT}: empty cell"]
    groups = _moment_groups(text)
    issues: list[str] = []
    outside = re.sub(r"\[[^\[\]]*\]", "", text).strip(" ,;\n")
    if groups and not re.search(r"\[[^\[\]]*\]", text):
        issues.append("segments are not in [brackets]")
    elif outside:
        issues.append(f"text outside brackets {_short(outside, 30)}")
    if not groups:
        return [], [f"{KIND_MOMENT}: {_short(text)} holds no [MMSS,MMSS] segment"]
    segments: list[Segment] = []
    for group in groups:
        raw = f"[{group.strip()}]"
        parts = [re.sub(r"[:\s]", "", p) for p in re.split(r"[,;-]", group)]
        parts = [p for p in parts if p] if len(parts) > 2 else parts
        if len(parts) != 2 or not all(re.fullmatch(r"\d*", p) for p in parts):
            issues.append(f"{raw} is not [MMSS,MMSS]; dropped")
            continue
        start_digits, end_digits = parts
        if not start_digits and not end_digits:
            issues.append(f"{raw} is empty")
            continue
        if not start_digits or not end_digits:
            issues.append(f"{raw} has no {'start' if not start_digits else 'end'}; dropped")
            continue
        start, start_issue = _mmss_seconds(start_digits)
        end, end_issue = _mmss_seconds(end_digits)
        issues.extend(f"{raw}: {i}" for i in (start_issue, end_issue) if i)
        if end < start:
            issues.append(f"{raw} ends before it starts; dropped")
            continue
        segments.append(Segment(start, end))
    problems = [f"{KIND_MOMENT}: {'; '.join(issues)}"] if issues else []
    return segments, problems


# --- descriptions -----------------------------------------------------------------------------


def parse_descriptions(value: object) -> tuple[list[str], list[str]]:
    """One ``[text]`` per moment segment; unbracketed or unclosed text is kept and flagged."""
    text = normalize(value)
    if not text or text == "/":
        return [], []
    if not text.startswith("["):
        return [" ".join(text.split())], [f"{KIND_DESCRIPTIONS}: text is not in [brackets]"]
    descriptions: list[str] = []
    issues: list[str] = []
    position = 0
    for match in re.finditer(r"\[([^\[\]]*)(\]?)", text):
        between = text[position : match.start()].strip(" ,;\n")
        if between:
            descriptions.append(" ".join(between.split()))
            issues.append(f"text outside brackets {_short(between, 30)}")
        if not match.group(2):
            issues.append("unclosed bracket")
        body = " ".join(match.group(1).split())
        if body:
            descriptions.append(body)
        else:
            issues.append("empty []")
        position = match.end()
    tail = text[position:].strip(" ,;\n]")
    if tail:
        descriptions.append(" ".join(tail.split()))
        issues.append(f"text outside brackets {_short(tail, 30)}")
    problems = [f"{KIND_DESCRIPTIONS}: {'; '.join(issues)}"] if issues else []
    return descriptions, problems


# --- key phrases ------------------------------------------------------------------------------

_LOOSE_SPLIT = re.compile(r'"\s*,\s*"?|"?\s*,\s*"')


def _as_phrase_list(data: object) -> list[str] | None:
    if isinstance(data, (list, tuple)) and all(isinstance(x, (str, int, float)) for x in data):
        return [str(x) for x in data]
    return None


def _loose_phrases(text: str) -> list[str]:
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    pieces = _LOOSE_SPLIT.split(body) if '"' in body else re.split(r"[,;\n]", body)
    return [p.strip().strip("\"'").strip() for p in pieces]


def parse_key_phrases(value: object) -> tuple[list[str], list[str]]:
    """A JSON list of short phrases; invalid JSON (a missing quote), smart quotes, Python-style
    lists and plain comma lists are recovered and flagged; empty entries are dropped."""
    text = normalize(value).translate(_SMART_QUOTES)
    if not text:
        return [], [f"{KIND_KEY_PHRASES_EMPTY}: empty cell"]
    problems: list[str] = []
    try:
        phrases = _as_phrase_list(json.loads(text))
        if phrases is None:
            raise ValueError("not a list of strings")
    except (ValueError, RecursionError):
        try:
            phrases = _as_phrase_list(ast.literal_eval(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            phrases = None
        if phrases is None:
            phrases = _loose_phrases(text)
        kept = sum(1 for p in phrases if p.strip())
        problems.append(f"{KIND_KEY_PHRASES_INVALID}: not a valid JSON list; recovered {kept} phrases")
    stripped = [" ".join(p.split()) for p in phrases]
    kept_phrases = [p for p in stripped if p]
    if not kept_phrases:
        problems.append(f"{KIND_KEY_PHRASES_EMPTY}: all {len(stripped)} entries are empty")
    elif len(kept_phrases) < len(stripped):
        blank = len(stripped) - len(kept_phrases)
        problems.append(f"{KIND_KEY_PHRASES_BLANK}: {blank} of {len(stripped)} entries are empty")
    return kept_phrases, problems


# --- sub-clip time cuts -----------------------------------------------------------------------

_TIME_CUT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*-\s*(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _clock(a: str, b: str, c: str | None) -> float:
    if c is not None:
        return float(int(a) * 3600 + int(b) * 60 + int(c))
    return float(int(a) * 60 + int(b))


def parse_time_cut(value: object) -> Segment | None:
    """A sub-clip's cut from a note such as ``时间切割01：31-01：44`` (MM:SS or H:MM:SS)."""
    text = normalize(value).translate(_DASHES)
    match = _TIME_CUT.search(text)
    if not match:
        return None
    g = match.groups()
    return Segment(_clock(g[0], g[1], g[2]), _clock(g[3], g[4], g[5]))
