"""The breakdown page: task x pillar, one measure per category and per task, every measure's mean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ecva_core.metrics import measures
from ecva_core.metrics.measures import PILLARS
from ecva_core.views.common import default_metric, task_label, videos_frame

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset


@dataclass(frozen=True)
class BreakdownView:
    """Tables for the breakdown page; each is rows x columns ready for a heatmap."""

    task_pillar: pd.DataFrame
    by_category: pd.DataFrame
    by_task: pd.DataFrame
    by_metric: pd.DataFrame
    metric_label: str


def breakdown_view(
    scores: pd.DataFrame,
    dataset: Dataset,
    models: Sequence[str],
    metric: str | None,
    mode: str = "all",
    *,
    totals: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> BreakdownView:
    """Per model: task x pillar, ``metric`` per major category and per task, and every metric's mean.

    ``totals``: the models' overall and per-task leaderboards for ``mode`` when the caller holds
    them (combined from cached leaderboard parts); ``scores`` then needs only ``metric``'s stored
    inputs (:func:`ecva_core.metrics.measures.stored_inputs`), for the per-category table."""
    import pandas as pd

    from ecva_core.metrics.aggregate import leaderboard

    chosen = scores[scores["model"].isin(list(models))]
    metric = metric or default_metric(chosen) or "anomeval"
    if totals is None:
        overall = leaderboard(chosen, variant=mode, n_boot=0)
        by_task = leaderboard(chosen, by="task", variant=mode, n_boot=0)
    else:
        overall, by_task = totals
    by_cat = leaderboard(chosen, videos=videos_frame(dataset), by="category", variant=mode, n_boot=0)
    pillar_cols = [c for c in (*PILLARS, "anomeval") if c in by_task and by_task[c].notna().any()]
    task_pillar = pd.DataFrame()
    if pillar_cols and not by_task.empty:
        task_pillar = by_task.assign(row=by_task["model"] + " · " + by_task["task"].map(task_label)).set_index("row")[
            pillar_cols
        ]
        task_pillar.index.name = None

    def wide(frame: pd.DataFrame, rows: str) -> pd.DataFrame:
        if frame.empty or metric not in frame:
            return pd.DataFrame()
        out = frame.pivot_table(index=rows, columns="model", values=metric, aggfunc="mean")
        out.columns.name = None
        out.index.name = None
        return out

    by_task = by_task.assign(task_label=by_task["task"].map(task_label)) if not by_task.empty else by_task
    metrics = [c for c in overall.columns if measures.is_per_question_metric(c) or c in (*PILLARS, "anomeval")]
    by_metric = overall.set_index("model")[metrics].dropna(axis=1, how="all") if not overall.empty else overall
    return BreakdownView(
        task_pillar=task_pillar,
        by_category=wide(by_cat, "category_name"),
        by_task=wide(by_task, "task_label"),
        by_metric=by_metric,
        metric_label=measures.label(metric),
    )
