"""Where an answer mentions the annotated key phrases: spans for highlighting, and which phrases it holds.

The library finds the spans; the explorer turns them into (escaped) HTML in ``ecva_apps.explorer.ui``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def highlight_spans(text: str, phrases: Iterable[str]) -> list[tuple[int, int]]:
    """Spans of ``text`` holding a key phrase (case-insensitive, longest phrase first, no overlap)."""
    taken: list[tuple[int, int]] = []
    for phrase in sorted({p.strip() for p in phrases if p and p.strip()}, key=len, reverse=True):
        for match in re.finditer(re.escape(phrase), text, flags=re.IGNORECASE):
            start, end = match.span()
            if all(end <= s or start >= e for s, e in taken):
                taken.append((start, end))
    return sorted(taken)


def phrases_found(text: str, phrases: Iterable[str]) -> list[str]:
    """The key phrases that ``text`` contains (case-insensitive)."""
    lowered = text.lower()
    return [p for p in phrases if p and p.strip() and p.strip().lower() in lowered]
