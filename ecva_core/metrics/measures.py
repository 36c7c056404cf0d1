"""Every measure the tool stores or derives, in one table: its name, label, kind, range, display
order, direction and the AnomEval pillar it feeds; plus the probe rule.

The table's order is the display order everywhere (score summaries, leaderboards, the explorer's
columns); scorers, aggregates, the CLI and the apps take names, labels and lists from here.

- ``combined``: AnomEval, the weighted mean of the pillars (complete, or partial over the measured ones).
- ``pillar``: the three AnomEval pillars, each with its weight in the reconstruction.
- ``text``: reference-based text metrics of an answer (BLEU, ROUGE, METEOR, semantic...).
- ``judge``: verdicts of the LLM judge, each feeding one pillar.
- ``auxiliary``: classification and timestamp answers scored against the annotation.
- ``derived``: figures derived from a stored auxiliary score (recall at a tIoU threshold, mean tIoU).

Probe rule: an answer given with the key frames removed (``probe`` set, see
:data:`ecva_core.schema.KEYFRAMES_REMOVED_PROBE`) counts only for the measures marked ``probe``
(the hallucination verdicts); a normal answer counts for every other measure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ecva_core.metrics.protocol import ABSTENTION, PAIR

if TYPE_CHECKING:
    import pandas as pd


class Kind(StrEnum):
    COMBINED = "combined"
    PILLAR = "pillar"
    TEXT = "text"
    JUDGE = "judge"
    AUXILIARY = "auxiliary"
    DERIVED = "derived"


@dataclass(frozen=True)
class Measure:
    """One measure. ``summary``: listed in score summaries and leaderboards by default; ``stored``:
    written to the database (False for figures computed when aggregating); ``pick``: rank among the
    measures a per-question view opens on (lower first; None: never the default)."""

    name: str
    kind: Kind
    label: str = ""
    low: float = 0.0
    high: float = 1.0
    higher_is_better: bool = True
    pillar: str | None = None
    weight: float = 0.0
    probe: bool = False
    summary: bool = True
    stored: bool = True
    pick: int | None = None

    @property
    def title(self) -> str:
        """How the measure is named on screen."""
        return self.label or self.name


RECALL_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)

MEASURES: tuple[Measure, ...] = (
    Measure("anomeval", Kind.COMBINED, "AnomEval (reconstructed)", stored=False),
    Measure("anomeval_partial", Kind.COMBINED, "Partial AnomEval", stored=False),
    Measure("basic", Kind.PILLAR, "Basic reasoning", weight=0.2, stored=False),
    Measure("consistency", Kind.PILLAR, "Consistency", weight=0.4, stored=False),
    Measure("hallucination", Kind.PILLAR, "Hallucination", weight=0.4, stored=False),
    Measure("bleu1", Kind.TEXT, pick=6),
    Measure("bleu2", Kind.TEXT, summary=False),
    Measure("bleu3", Kind.TEXT, summary=False),
    Measure("bleu4", Kind.TEXT, pick=5),
    Measure("rouge1", Kind.TEXT, summary=False),
    Measure("rouge2", Kind.TEXT, summary=False),
    Measure("rougeL", Kind.TEXT, pick=3),
    Measure("meteor", Kind.TEXT, pick=4),
    Measure("semantic", Kind.TEXT, "Semantic similarity", low=-1.0, pick=2),
    Measure("bleurt", Kind.TEXT, "BLEURT", low=float("-inf"), high=float("inf")),
    Measure("unieval", Kind.TEXT, "UniEval"),
    Measure("bleu_official", Kind.TEXT, "BLEU (official script)"),
    Measure("rougeL_official", Kind.TEXT, "ROUGE-L (official script)"),
    Measure("judge_consistency", Kind.JUDGE, pillar="consistency", pick=0),
    Measure("judge_logic", Kind.JUDGE, high=5.0, pillar="basic"),
    Measure("judge_keyphrase", Kind.JUDGE, pillar="basic", pick=1),
    Measure("judge_hallucination", Kind.JUDGE, pillar="hallucination", probe=True),
    Measure("judge_hallucination_pair", Kind.JUDGE, pillar="hallucination", probe=True),
    Measure("cls_major", Kind.AUXILIARY, "Major category correct"),
    Measure("cls_sub", Kind.AUXILIARY, "Sub-category correct"),
    Measure("tiou", Kind.AUXILIARY, "Temporal IoU", summary=False),
    *(Measure(f"R@{k}", Kind.DERIVED, f"Recall at tIoU >= {k}", stored=False) for k in RECALL_THRESHOLDS),
    Measure("mIoU", Kind.DERIVED, "Mean temporal IoU", stored=False),
)

BY_NAME: dict[str, Measure] = {m.name: m for m in MEASURES}


def names(keep: Callable[[Measure], bool] = lambda m: True) -> tuple[str, ...]:
    """Names of the measures ``keep`` accepts, in display order."""
    return tuple(m.name for m in MEASURES if keep(m))


def label(name: str) -> str:
    """How a measure is named on screen (unknown names as they are)."""
    measure = BY_NAME.get(name)
    return measure.title if measure else name


def is_per_question_metric(name: str) -> bool:
    """A figure of one answer that a table shows as its own column (not AnomEval or a pillar)."""
    measure = BY_NAME.get(name)
    return measure is not None and measure.kind not in (Kind.COMBINED, Kind.PILLAR) and name != "tiou"


def counts_for(metric: str, probe: str | None) -> bool:
    """The probe rule: a probe answer counts only for probe measures, a normal answer for the others."""
    return bool(probe) == (metric in PROBE_METRICS)


def stored_inputs(measure: str) -> tuple[str, ...]:
    """The stored metrics a per-question value of ``measure`` is computed from under either
    hallucination reading: the judges behind AnomEval or a pillar, ``tiou`` behind R@k and mIoU."""
    kind = BY_NAME[measure].kind if measure in BY_NAME else Kind.TEXT
    if kind in (Kind.COMBINED, Kind.PILLAR):
        return names(lambda m: m.kind is Kind.JUDGE and (kind is Kind.COMBINED or m.pillar == measure))
    return ("tiou",) if kind is Kind.DERIVED else (measure,)


def counted(scores: pd.DataFrame) -> pd.Series:
    """:func:`counts_for` over a scores frame (``probe``, ``metric``): the rows an aggregate uses."""
    return (scores["probe"].fillna("") != "") == scores["metric"].isin(PROBE_METRICS)


def measures_present(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The summary measures with a value in any of ``rows``, in display order."""
    have = {k for row in rows for k, v in row.items() if v is not None}
    return [m for m in SUMMARY_ORDER if m in have]


PILLAR_WEIGHTS: dict[str, float] = {m.name: m.weight for m in MEASURES if m.kind is Kind.PILLAR}
PILLARS: tuple[str, ...] = tuple(PILLAR_WEIGHTS)
HEADLINE = ("anomeval", "anomeval_partial")
HEADLINE_TEXT_METRIC = "semantic"  # what ranks models without a complete AnomEval
HALLUCINATION_METRICS: dict[str, str] = {ABSTENTION: "judge_hallucination", PAIR: "judge_hallucination_pair"}
PROBE_METRICS: frozenset[str] = frozenset(names(lambda m: m.probe))
METRIC_ORDER: tuple[str, ...] = names(lambda m: m.kind not in (Kind.COMBINED, Kind.PILLAR) and m.name != "tiou")
SUMMARY_ORDER: tuple[str, ...] = names(lambda m: m.summary)
PICK_ORDER: tuple[str, ...] = tuple(sorted(names(lambda m: m.pick is not None), key=lambda n: BY_NAME[n].pick))
COMPACT_TEXT_METRICS: tuple[str, ...] = ("semantic", "rougeL", "bleu4")  # beside AnomEval in a compact table
CHAT_TEXT_METRICS: tuple[str, ...] = ("bleu1", "bleu4", "rougeL", "semantic")  # cheap enough for one live answer
NORMAL_JUDGE_METRICS: tuple[str, ...] = names(lambda m: m.kind is Kind.JUDGE and not m.probe)


def pillar_inputs(measure: str) -> frozenset[str]:
    """The judge metrics behind AnomEval (all of them) or behind one pillar; empty for anything else."""
    judges = [m for m in MEASURES if m.kind is Kind.JUDGE and m.name != HALLUCINATION_METRICS[PAIR]]
    return frozenset(m.name for m in judges if measure == "anomeval" or m.pillar == measure)
