"""The question explorer: one row per question with each chosen model's score, the disagreement
between them, failures, and every answer to one question with its scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecva_core.schema import SCORED_TASKS, Task
from ecva_core.views.common import default_metric, normal_answers, question_matrix, video_categories

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset


@dataclass(frozen=True)
class QuestionFilter:
    """What the question explorer's filters ask for; the defaults select everything."""

    metric: str | None = None
    models: tuple[str, ...] = ()
    majors: tuple[int, ...] = ()
    tasks: tuple[str, ...] = ()
    score_min: float | None = None
    score_max: float | None = None
    failures_only: bool = False
    disagree_min: float | None = None
    search: str = ""
    video_ids: tuple[str, ...] = ()


def failure_matrix(scores: pd.DataFrame, predictions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per question and model: True where the prediction or any of its scores failed."""
    frames = []
    normal = normal_answers(scores)
    frames.append(normal.assign(failed=normal["status"] == "failed")[["video_id", "task", "model", "failed"]])
    if predictions is not None and not predictions.empty:
        preds = normal_answers(predictions) if "probe" in predictions else predictions
        frames.append(preds.assign(failed=preds["status"] != "ok")[["video_id", "task", "model", "failed"]])
    import pandas as pd

    both = pd.concat(frames, ignore_index=True)
    return both.pivot_table(index=["video_id", "task"], columns="model", values="failed", aggfunc="max")


def question_rows(
    dataset: Dataset,
    scores: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    flt: QuestionFilter | None = None,
) -> pd.DataFrame:
    """The question explorer's table: one row per (video, task) with each model's score and the spread.

    Columns: ``video_id, task, facet, code, category, major, <model>..., spread, mean, failures``.
    ``spread`` (max - min over the chosen models) is what "models that disagree" filters on.
    """
    import pandas as pd

    flt = flt or QuestionFilter()
    metric = flt.metric or default_metric(scores)
    cats = video_categories(dataset)
    base = pd.DataFrame(
        [(item.video_id, item.task.value) for item in dataset.qa_items(SCORED_TASKS)],
        columns=["video_id", "task"],
    )
    base = base.merge(cats, on="video_id", how="left")
    base["facet"] = base["task"].map(lambda t: Task.parse(t).facet)
    models = list(flt.models) or sorted(scores["model"].unique())
    if metric is not None and models:
        matrix = question_matrix(scores[scores["model"].isin(models)], metric)
        matrix = matrix.reindex(columns=models)
        base = base.merge(matrix.reset_index(), on=["video_id", "task"], how="left")
        values = base[models]
        base["mean"] = values.mean(axis=1)
        base["spread"] = values.max(axis=1) - values.min(axis=1)
    else:
        base["mean"] = float("nan")
        base["spread"] = float("nan")
    fails = failure_matrix(scores[scores["model"].isin(models)], _only_models(predictions, models))
    fail_count = fails.fillna(False).astype(bool).sum(axis=1).rename("failures").reset_index()
    base = base.merge(fail_count, on=["video_id", "task"], how="left")
    base["failures"] = base["failures"].fillna(0).astype(int)

    keep = pd.Series(True, index=base.index)
    if flt.video_ids:
        keep &= base["video_id"].isin(flt.video_ids)
    if flt.majors:
        keep &= base["major"].isin(flt.majors)
    if flt.tasks:
        keep &= base["task"].isin(flt.tasks)
    if flt.score_min is not None:
        keep &= base["mean"] >= flt.score_min
    if flt.score_max is not None:
        keep &= base["mean"] <= flt.score_max
    if flt.failures_only:
        keep &= base["failures"] > 0
    if flt.disagree_min is not None:
        keep &= base["spread"] >= flt.disagree_min
    if flt.search.strip():
        hits = answers_matching(predictions, flt.search, models)
        keep &= base.set_index(["video_id", "task"]).index.isin(hits)
    cols = ["video_id", "task", "facet", "code", "category", "major", *models, "mean", "spread", "failures"]
    return base.loc[keep, cols].reset_index(drop=True)


def _only_models(predictions: pd.DataFrame | None, models: Sequence[str]) -> pd.DataFrame | None:
    if predictions is None or predictions.empty:
        return predictions
    return predictions[predictions["model"].isin(list(models))]


def answers_matching(predictions: pd.DataFrame | None, text: str, models: Sequence[str] = ()) -> list[tuple]:
    """(video_id, task) keys whose answer (by any of ``models``) contains ``text``, case-insensitively."""
    if predictions is None or predictions.empty or not text.strip():
        return []
    preds = predictions
    if models:
        preds = preds[preds["model"].isin(list(models))]
    hit = preds["output"].fillna("").str.contains(text.strip(), case=False, regex=False)
    return list(preds.loc[hit, ["video_id", "task"]].drop_duplicates().itertuples(index=False, name=None))


def question_answers(
    scores: pd.DataFrame, predictions: pd.DataFrame | None, video_id: str, task: str
) -> list[dict[str, Any]]:
    """Each model's answer to one question with every score (value, status, judge reason) beside it."""
    sel = scores[(scores["video_id"] == video_id) & (scores["task"] == task)]
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    if predictions is not None and not predictions.empty:
        preds = predictions[(predictions["video_id"] == video_id) & (predictions["task"] == task)]
        for row in preds.itertuples(index=False):
            probe = getattr(row, "probe", "") or ""
            answers[(row.model, probe)] = {
                "model": row.model,
                "probe": probe,
                "output": row.output or "",
                "status": row.status,
                "scores": [],
            }
    for row in sel.sort_values(["model", "metric"]).itertuples(index=False):
        probe = row.probe or ""
        entry = answers.setdefault(
            (row.model, probe), {"model": row.model, "probe": probe, "output": "", "status": "", "scores": []}
        )
        value = None if row.value is None or row.value != row.value else float(row.value)
        judge = getattr(row, "judge_model", "") or ""
        entry["scores"].append(
            {"metric": row.metric, "value": value, "status": row.status, "reason": row.reason or "", "judge": judge}
        )
    return sorted(answers.values(), key=lambda a: (a["model"], a["probe"]))


def first_question(dataset: Dataset, scores: pd.DataFrame, model: str) -> tuple[str, str] | None:
    """The first (video_id, task) a model answered, in dataset order, to open the question explorer on."""
    answered = set(
        normal_answers(scores[scores["model"] == model])[["video_id", "task"]].itertuples(index=False, name=None)
    )
    for item in dataset.qa_items(SCORED_TASKS):
        if (item.video_id, item.task.value) in answered:
            return item.video_id, item.task.value
    return None
