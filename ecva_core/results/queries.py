"""What the Submit page and the answer cards still take from here: key-phrase highlighting, the
"already scored" lookup and the judge's cost plan. The read views live in :mod:`ecva_core.views`;
these move with the submit rules (kept apart so the two changes do not collide).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ecva_core.schema import SCORED_TASKS

if TYPE_CHECKING:

    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset
    from ecva_core.metrics.judge import JudgePlan
    from ecva_core.results.db import ResultsDB
    from ecva_core.results.submission import SubmissionReport

def highlight_spans(text: str, phrases: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of ``text`` holding a key phrase (case-insensitive, longest phrase first, no overlap)."""
    taken: list[tuple[int, int]] = []
    for phrase in sorted({p.strip() for p in phrases if p and p.strip()}, key=len, reverse=True):
        for match in re.finditer(re.escape(phrase), text, flags=re.IGNORECASE):
            start, end = match.span()
            if all(end <= s or start >= e for s, e in taken):
                taken.append((start, end))
    return sorted(taken)


def highlight_html(text: str, phrases: Iterable[str]) -> str:
    """``text`` HTML-escaped, with key-phrase matches wrapped in ``<mark>`` (safe for unsafe_allow_html)."""
    out: list[str] = []
    pos = 0
    for start, end in highlight_spans(text, phrases):
        out.append(html.escape(text[pos:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def phrases_found(text: str, phrases: Iterable[str]) -> list[str]:
    """The key phrases that ``text`` contains (case-insensitive)."""
    lowered = text.lower()
    return [p for p in phrases if p and p.strip() and p.strip().lower() in lowered]


def scored_submission(db: ResultsDB, file_hash: str) -> dict[str, Any] | None:
    """The stored submission with this file hash, if any (so a re-upload is recognised, not re-scored)."""
    for sub in db.submissions():
        if sub["file_hash"] == file_hash:
            return sub
    return None


def judge_plan(report: SubmissionReport, dataset: Dataset, settings: Settings, db: ResultsDB) -> JudgePlan:
    """What judging this submission would cost (calls after the cache, tokens, money), before it runs."""
    from ecva_core.metrics.judge import plan_judges, requests_for

    requests = requests_for(report.predictions, dataset.qa_items(SCORED_TASKS))
    return plan_judges(requests, settings, db.judge_cache())
