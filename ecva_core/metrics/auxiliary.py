"""Auxiliary What tasks: category classification (``cls_major``, ``cls_sub``) and timestamps (``tiou``).

Rules (documented in the README's metrics section):

- A classification answer's *primary* category is the first one it names: a bracketed code
  (``[5]``, ``[5-1]``, ``[5-1,4]`` = major-sub,confidence), else a code at the start (``5. Traffic``)
  or a ``major-sub`` code anywhere, else the earliest taxonomy name (``Traffic accident``). It is
  right when it matches *any* of the annotated categories (annotators list co-occurring anomalies).
  ``cls_sub`` is scored only when the answer names a sub-category (otherwise "skipped").
- A timestamp answer's segments are time pairs joined by ``,``/``-``/``to``/``and``: plain seconds
  (``[12, 30]``, ``12-30 seconds``, ``from 12s to 30s``), minutes (``between 2 and 5 minutes`` is
  120-300 s; a unit after the second number applies to both), ``M:SS`` (``1:30`` is 90 s),
  ``H:MM:SS`` and ``1m12s``. A reversed pair (``[30, 12]``) is swapped.
- Four-digit pairs (``[0100,0130]``): the benchmark's prompt asks for seconds as ``[xxxx,xxxx]``,
  while its annotations write ``MMSS``. Each answer is read both ways and the reading that fits
  inside the clip is kept: seconds when both fit (or when the clip's duration is unknown), ``MMSS``
  when only it fits (``[0100,0130]`` in a 90-second clip is 60-90 s).
- ``tiou`` is the temporal IoU of the answer's best-matching interval with the annotated moments:
  the maximum over every interval the answer gives and every annotated moment.
- An answer with nothing parsable is "failed" (counts 0 in the "all" aggregate, excluded in
  "valid"); a missing ground truth makes the item "skipped".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from ecva_core.schema import Annotation, Category, Prediction, PredictionStatus, Score, ScoreStatus, Segment, Task
from ecva_core.taxonomy import ALL_MAJORS, CUVA_SUBS

CLASSIFICATION_METRICS: tuple[str, ...] = ("cls_major", "cls_sub")
TIMESTAMP_METRICS: tuple[str, ...] = ("tiou",)


class MetricValue(NamedTuple):
    value: float | None
    status: ScoreStatus
    reason: str = ""


_BRACKET = re.compile(r"[\[(（【]\s*(\d{1,2})\s*(?:[-–]\s*(\d{1,2}))?\s*(?:,\s*(\d{1,2})\s*)?[\])）】]")
_LEADING = re.compile(
    r"^\W*(?:(?:the\s+)?(?:category|class|answer|anomaly)(?:\s+(?:number|is|id))*\s*[:#=]?\s*)?"
    r"(\d{1,2})(?:\s*-\s*(\d{1,2}))?(?=\s*(?:[.):\]*,]|$)|\s+(?-i:[A-Z]))",
    re.IGNORECASE,
)
_PAIR_CODE = re.compile(r"(?<![\d.:])(\d{1,2})-(\d{1,2})(?![\d:])")
_NAME_ALIASES: dict[str, int] = {"forbidden to burn": 11, "fight": 1}


def _norm_words(text: str) -> str:
    words = re.findall(r"[a-z]+", text.lower())
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words)


def _name_patterns() -> list[tuple[re.Pattern[str], int]]:
    names = {_norm_words(name): code for code, name in ALL_MAJORS.items()}
    names.update({_norm_words(alias): code for alias, code in _NAME_ALIASES.items()})
    ordered = sorted(names.items(), key=lambda item: -len(item[0]))  # longest first: no partial shadowing
    return [(re.compile(rf"\b{re.escape(name)}\b"), code) for name, code in ordered]


_NAMES = _name_patterns()


def parse_categories(text: str) -> list[Category]:
    """Every bracketed ``[major(-sub)(,confidence)]`` code in a cell or answer, in order."""
    out = []
    for match in _BRACKET.finditer(str(text)):
        major, sub, confidence = (int(g) if g else None for g in match.groups())
        out.append(Category(int(major or 0), sub, confidence))
    return out


def parse_category_answer(text: str) -> Category | None:
    """The primary category a model's classification answer names, or None when it names none."""
    text = str(text)
    bracketed = parse_categories(text)
    if bracketed:
        return bracketed[0]
    for pattern in (_LEADING, _PAIR_CODE):
        match = pattern.search(text)
        if match:
            return Category(int(match.group(1)), int(match.group(2)) if match.group(2) else None)
    normalised = _norm_words(text)
    found = [(m.start(), code) for pattern, code in _NAMES for m in [pattern.search(normalised)] if m]
    if found:
        return Category(min(found)[1])
    return None


def score_classification(answer: str, truth: Sequence[Category]) -> dict[str, MetricValue]:
    """``cls_major`` / ``cls_sub`` (1.0 right, 0.0 wrong) of one answer against the annotated categories."""
    if not truth:
        skipped = MetricValue(None, ScoreStatus.SKIPPED, "annotation has no parsable category")
        return {name: skipped for name in CLASSIFICATION_METRICS}
    predicted = parse_category_answer(answer)
    if predicted is None:
        failed = MetricValue(None, ScoreStatus.FAILED, "no category code or name found in the answer")
        return {name: failed for name in CLASSIFICATION_METRICS}
    known = " (not in the taxonomy)" if predicted.major not in ALL_MAJORS else ""
    majors = {c.major for c in truth}
    out = {
        "cls_major": MetricValue(float(predicted.major in majors), ScoreStatus.OK, f"answer {predicted.code}{known}")
    }
    pairs = {(c.major, c.sub) for c in truth if c.sub is not None}
    if predicted.sub is None:
        out["cls_sub"] = MetricValue(None, ScoreStatus.SKIPPED, "answer names no sub-category")
    elif not pairs:
        out["cls_sub"] = MetricValue(None, ScoreStatus.SKIPPED, "annotation has no sub-category")
    else:
        unknown = "" if (predicted.major, predicted.sub) in CUVA_SUBS else " (not in the taxonomy)"
        hit = (predicted.major, predicted.sub) in pairs
        out["cls_sub"] = MetricValue(float(hit), ScoreStatus.OK, f"answer {predicted.code}{unknown}")
    return out


_TIME = re.compile(
    r"(?<![\d.:])(?:"
    r"(?P<h>\d{1,2}):(?P<hm>\d{2}):(?P<hs>\d{2}(?:\.\d+)?)"
    r"|(?P<m>\d{1,3}):(?P<ms>\d{2}(?:\.\d+)?)"
    r"|(?P<um>\d+)\s*m(?:in(?:utes?)?)?\s*(?P<us>\d+(?:\.\d+)?)\s*s(?:ec(?:onds?)?)?\b"
    r"|(?P<n>\d+(?:\.\d+)?)"
    r")(?![\d:])",
    re.IGNORECASE,
)
_JOIN = re.compile(
    r"\s*(?:s|secs?|seconds?|m|mins?|minutes?)?\s*(?:,|-|–|—|~|to|and|until|till)\s*(?:the\s+)?$",
    re.IGNORECASE,
)
_MINUTES_AFTER = re.compile(r"\s*(?:m|mins?|minutes?)\b", re.IGNORECASE)


def _seconds(match: re.Match[str]) -> tuple[float, str]:
    g = match.groupdict()
    if g["h"] is not None:
        return int(g["h"]) * 3600 + int(g["hm"]) * 60 + float(g["hs"]), "clock"
    if g["m"] is not None:
        return int(g["m"]) * 60 + float(g["ms"]), "clock"
    if g["um"] is not None:
        return int(g["um"]) * 60 + float(g["us"]), "clock"
    return float(g["n"]), g["n"]


def _mmss(raw: str) -> float | None:
    """``0052`` -> 52 s, ``0114`` -> 74 s (the annotation's minutes+seconds), or None if not MMSS."""
    if re.fullmatch(r"\d{4}", raw) and int(raw[2:]) < 60:
        return float(int(raw[:2]) * 60 + int(raw[2:]))
    return None


def _in_minutes(text: str, match: re.Match[str]) -> bool:
    return match.group("n") is not None and _MINUTES_AFTER.match(text, match.end()) is not None


def parse_segments(text: str, duration: float | None = None) -> list[Segment]:
    """Time segments (seconds) in the order an answer gives them; reversed pairs are swapped.

    ``duration`` (seconds) decides how four-digit pairs are read (see the module docstring).
    """
    text = str(text)
    tokens = [(m, *_seconds(m)) for m in _TIME.finditer(text)]
    pairs: list[tuple[float, float, tuple[float, float] | None]] = []
    i = 0
    while i + 1 < len(tokens):
        (m1, s1, raw1), (m2, s2, raw2) = tokens[i], tokens[i + 1]
        if not _JOIN.match(text[m1.end() : m2.start()]):
            i += 1
            continue
        if _in_minutes(text, m2):
            s2 *= 60
            s1 *= 60 if m1.group("n") is not None else 1
        elif _in_minutes(text, m1):
            s1 *= 60
        four_digit = re.fullmatch(r"\d{4}", raw1) and re.fullmatch(r"\d{4}", raw2)
        a, b = (_mmss(raw1), _mmss(raw2)) if four_digit else (None, None)
        pairs.append((s1, s2, (a, b) if a is not None and b is not None else None))
        i += 2
    use_mmss = _read_as_mmss(pairs, duration)
    out = []
    for s1, s2, mmss in pairs:
        start, end = mmss if use_mmss and mmss is not None else (s1, s2)
        out.append(Segment(min(start, end), max(start, end)))
    return out


def _read_as_mmss(pairs: list[tuple[float, float, tuple[float, float] | None]], duration: float | None) -> bool:
    """Whether this answer's four-digit pairs are MMSS: only when seconds overrun the clip and MMSS fits."""
    four = [p for p in pairs if p[2] is not None]
    if not four or duration is None:
        return False
    seconds_fit = all(max(s1, s2) <= duration for s1, s2, _ in four)
    mmss_fit = all(max(mmss) <= duration for _, _, mmss in four if mmss is not None)
    return not seconds_fit and mmss_fit


def score_timestamp(answer: str, moments: Sequence[Segment], duration: float | None = None) -> dict[str, MetricValue]:
    """``tiou``: IoU of the answer's best-matching interval with the annotated moments."""
    if not moments:
        return {"tiou": MetricValue(None, ScoreStatus.SKIPPED, "annotation has no moments")}
    segments = parse_segments(answer, duration)
    if not segments:
        return {"tiou": MetricValue(None, ScoreStatus.FAILED, "no time segment found in the answer")}
    best, segment = max(((max(s.iou(m) for m in moments), s) for s in segments), key=lambda pair: pair[0])
    count = f", best of {len(segments)} intervals" if len(segments) > 1 else ""
    return {"tiou": MetricValue(best, ScoreStatus.OK, f"answer {segment.start:g}-{segment.end:g} s{count}")}


def score_auxiliary(prediction: Prediction, annotation: Annotation, duration: float | None = None) -> list[Score]:
    """Scores of one Classification or Timestamp prediction; an ERROR/empty answer is a failure.
    ``duration`` is the clip's length in seconds when known (it decides how four-digit times read)."""
    if prediction.task == Task.CLASSIFICATION:
        names: tuple[str, ...] = CLASSIFICATION_METRICS
    elif prediction.task == Task.TIMESTAMP:
        names = TIMESTAMP_METRICS
    else:
        raise ValueError(f"{prediction.task.value} is not an auxiliary task")
    if prediction.status != PredictionStatus.OK:
        values = {
            name: MetricValue(None, ScoreStatus.FAILED, f"prediction is {prediction.status.value}") for name in names
        }
    elif prediction.task == Task.CLASSIFICATION:
        values = score_classification(prediction.output, annotation.categories)
    else:
        values = score_timestamp(prediction.output, annotation.moments, duration)
    return [
        Score(prediction.video_id, prediction.task, name, v.value, v.status, v.reason, prediction.probe)
        for name, v in values.items()
    ]
