"""The explorer's leaderboard and compare views: complete vs partial AnomEval, pillar coverage, protocol."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ecva_core.views.compare import compare_view
from ecva_core.views.leaderboard import filter_leaderboard, leaderboard_from_parts, leaderboard_part
from tests.submissions.tiny import load_tiny

TASKS = ("Description", "Cause", "Result")


def _scores(model: str, consistency: float, probe: bool) -> list[dict]:
    rows = []
    for video in ("1", "2", "3", "4", "5", "6"):
        for task in TASKS:
            base = {"model": model, "video_id": video, "task": task, "status": "ok"}
            rows += [
                {**base, "probe": "", "metric": "judge_consistency", "value": consistency},
                {**base, "probe": "", "metric": "judge_logic", "value": 4.0},
                {**base, "probe": "", "metric": "judge_keyphrase", "value": 0.5},
                {**base, "probe": "", "metric": "semantic", "value": 0.6},
            ]
            if probe:
                rows.append({**base, "probe": "no_keyframes", "metric": "judge_hallucination", "value": 0.0})
    return rows


def test_leaderboard_view_ranks_complete_first_and_shows_pillars_and_protocol(tmp_path: Path) -> None:
    dataset = load_tiny(tmp_path / "tiny")
    complete = leaderboard_part(pd.DataFrame(_scores("complete", 0.5, True)), dataset,
                                protocols={"complete": "official"})  # fmt: skip
    partial = leaderboard_part(pd.DataFrame(_scores("partial", 1.0, False)), dataset)
    view = leaderboard_from_parts([partial, complete], dataset)
    table = view.table.set_index("model")
    assert list(view.table["model"]) == ["complete", "partial"]
    assert table.loc["partial", "Partial AnomEval"] > table.loc["complete", "AnomEval"]
    assert pd.isna(table.loc["partial", "AnomEval"])
    assert table.loc["partial", "Pillars"] == "basic+consistency"
    assert table.loc["complete", "Pillars"] == "basic+consistency+hallucination"
    assert (table.loc["complete", "Protocol"], table.loc["partial", "Protocol"]) == ("official", "-")
    shown = filter_leaderboard(view)
    assert {"AnomEval", "Partial AnomEval", "Pillars", "Protocol"} <= set(shown.columns)
    assert "abstention" in view.note


def test_compare_view_says_which_pillars_are_missing(tmp_path: Path) -> None:
    dataset = load_tiny(tmp_path / "tiny")
    scores = pd.DataFrame(_scores("complete", 0.5, True) + _scores("partial", 1.0, False))
    view = compare_view(scores, dataset, "complete", "partial", metric="anomeval")
    assert "AnomEval not compared" in view.note and "partial lacks hallucination" in view.note
    assert pd.isna(view.overall["diff"])
    pillar = compare_view(scores, dataset, "complete", "partial", metric="consistency")
    assert pillar.overall["diff"] == -0.5 and "not compared" not in pillar.note
