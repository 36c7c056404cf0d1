"""What the read views share: the probe-free answers, categories, filters, task labels and the
per-question values of one measure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ecva_core.metrics import measures
from ecva_core.metrics.measures import PICK_ORDER, PILLAR_WEIGHTS, PILLARS
from ecva_core.schema import SCORED_TASKS, Task

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset


_FACETS = {t.value: t.facet for t in Task}


def normal_answers(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores of the ordinary answers (the key-frame-removed probe answers are a separate pillar)."""
    probe = scores["probe"].fillna("")
    return scores[probe == ""]


def available_metrics(scores: pd.DataFrame) -> list[str]:
    """Measures a per-question view can show: AnomEval and its pillars when judged, then each metric."""
    present = set(scores["metric"].dropna().unique())
    if "tiou" in present:
        present = (present - {"tiou"}) | {"R@0.5", "mIoU"}
    judged = [m for m in ("anomeval", *PILLARS) if measures.pillar_inputs(m) & present]
    ordered = [m for m in PICK_ORDER if m in present]
    return judged + ordered + sorted(present - set(ordered))


def breakdown_metrics(scores: pd.DataFrame) -> list[str]:
    """Measures the breakdown and compare pages offer (same list as :func:`available_metrics`)."""
    return available_metrics(scores)


def default_metric(scores: pd.DataFrame) -> str | None:
    """The measure a per-question view starts on (None when nothing is scored yet)."""
    metrics = available_metrics(scores)
    return metrics[0] if metrics else None


def video_categories(dataset: Dataset) -> pd.DataFrame:
    """One row per video: its primary category codes and names (unparsed categories are ``major=-1``)."""
    import pandas as pd

    from ecva_core.taxonomy import category_name, major_name

    rows = []
    for vid, record in dataset.records.items():
        cat = record.annotation.category
        rows.append(
            {
                "video_id": vid,
                "major": cat.major if cat else -1,
                "sub": cat.sub if cat and cat.sub is not None else -1,
                "major_name": major_name(cat.major) if cat else "unknown",
                "category": category_name(cat) if cat else "unknown",
                "code": cat.code if cat else "?",
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "major", "sub", "major_name", "category", "code"])


def videos_frame(dataset: Dataset) -> pd.DataFrame:
    """``video_id, category_major, category_name`` for :func:`ecva_core.metrics.aggregate.leaderboard`."""
    cats = video_categories(dataset)
    return cats.rename(columns={"major": "category_major", "major_name": "category_name"})[
        ["video_id", "category_major", "category_name"]
    ]


def restrict_scores(
    scores: pd.DataFrame, dataset: Dataset, majors: Sequence[int], tasks: Sequence[str]
) -> pd.DataFrame:
    """Scores of the chosen tasks and of videos in the chosen major categories (empty choice = all)."""
    out = scores
    if tasks:
        out = out[out["task"].isin(list(tasks))]
    if majors:
        cats = video_categories(dataset)
        out = out[out["video_id"].isin(cats.loc[cats["major"].isin(list(majors)), "video_id"])]
    return out


def restrict_items(dataset: Dataset, majors: Sequence[int], tasks: Sequence[str]) -> list:
    """The scored questions of the chosen tasks and major categories (empty choice = all)."""
    items = dataset.qa_items(SCORED_TASKS)
    if tasks:
        items = [i for i in items if i.task.value in tasks]
    if majors:
        cats = video_categories(dataset)
        keep = set(cats.loc[cats["major"].isin(list(majors)), "video_id"])
        items = [i for i in items if i.video_id in keep]
    return items


def task_label(task: str) -> str:
    return f"{task} ({_FACETS.get(task, 'What')})"


def task_of_label(label: str) -> str:
    """``"Cause (Why)"`` -> ``"Cause"``."""
    return label.split(" (", 1)[0]


def split_model_task(label: str) -> tuple[str, str]:
    """``"model · Cause (Why)"`` -> ``("model", "Cause")``."""
    model, _, task = label.rpartition(" · ")
    return model, task_of_label(task)


def question_scores(scores: pd.DataFrame, measure: str, variant: str = "all") -> pd.DataFrame:
    """Long frame ``model, video_id, task, value``: one measure per question (``anomeval`` combined
    per question from the pillars it has, with the reconstruction's weights)."""
    from ecva_core.metrics.aggregate import question_table

    if scores.empty:
        return scores[["model", "video_id", "task"]].assign(value=float("nan"))
    table = question_table(scores, variant)
    if measure == "anomeval":
        value = _anomeval_per_question(table)
    elif measure in table:
        value = table[measure].to_numpy(dtype=float)
    else:
        value = float("nan")
    return table[["model", "video_id", "task"]].assign(value=value)


def _anomeval_per_question(table: pd.DataFrame) -> np.ndarray:

    values = np.column_stack([table[p].to_numpy(dtype=float) for p in PILLARS])
    weights = np.array([PILLAR_WEIGHTS[p] for p in PILLARS])
    present = ~np.isnan(values)
    total = (present * weights).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.where(total > 0, (np.where(present, values, 0.0) * weights).sum(axis=1) / total, np.nan)
    return combined


def question_matrix(scores: pd.DataFrame, metric: str, variant: str = "all") -> pd.DataFrame:
    """Per-question values of one measure, one column per model (NaN where a model has no value)."""
    long = question_scores(scores, metric, variant)
    return long.pivot_table(index=["video_id", "task"], columns="model", values="value", aggfunc="mean")
