"""Read-side queries for the apps: question tables, disagreement filters, dataset summaries, highlighting.

The explorer shows what these return and computes nothing itself, so every table it draws is a
pure function of a dataset and the results database's frames, testable without a UI. Everything
is vectorised pandas over the scores frame (columns ``model, submission_id, video_id, task, probe,
metric, value, status, reason``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ecva_core.metrics import measures
from ecva_core.metrics.aggregate import ANOMEVAL_LABEL
from ecva_core.metrics.measures import COMPACT_TEXT_METRICS, PICK_ORDER, PILLAR_WEIGHTS, PILLARS
from ecva_core.metrics.protocol import ABSTENTION, READING_LABELS, protocol_of
from ecva_core.schema import SCORED_TASKS, Task

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.config import Settings
    from ecva_core.dataset import Dataset
    from ecva_core.metrics.judge import JudgePlan
    from ecva_core.results.db import ResultsDB
    from ecva_core.results.submission import SubmissionReport

_FACETS = {t.value: t.facet for t in Task}


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


def moments_frame(dataset: Dataset, video_id: str) -> pd.DataFrame:
    """The annotated moments of one video with their descriptions, for a timeline chart."""
    import pandas as pd

    ann = dataset.records[video_id].annotation
    rows = []
    for i, seg in enumerate(ann.moments):
        desc = ann.descriptions[i] if i < len(ann.descriptions) else ""
        rows.append({"moment": i + 1, "start": seg.start, "end": seg.end, "description": desc})
    return pd.DataFrame(rows, columns=["moment", "start", "end", "description"])


def video_duration(dataset: Dataset, video_id: str) -> float | None:
    """A clip's length: from the annotation when known, else probed from its file (None if absent)."""
    from ecva_core.errors import VideoError
    from ecva_core.video import probe_video

    record = dataset.records[video_id]
    if record.duration:
        return float(record.duration)
    path = dataset.video_path(video_id)
    if path is None:
        return None
    try:
        return float(probe_video(path).duration)
    except VideoError:
        return None


def first_moment_start(dataset: Dataset, video_id: str) -> float:
    """Where the clip preview starts: the first annotated moment, else the beginning."""
    moments = dataset.records[video_id].annotation.moments
    return float(moments[0].start) if moments else 0.0


def expert_answers(dataset: Dataset, video_id: str) -> dict[str, str]:
    """The expert What / Why / How answers of one video, keyed by task name."""
    out = {}
    for task in SCORED_TASKS:
        item = dataset.qa_item(video_id, task)
        out[task.value] = item.answer if item else ""
    return out


def category_counts(dataset: Dataset) -> pd.DataFrame:
    """Videos per major and sub-category, most frequent first."""
    cats = video_categories(dataset)
    counts = cats.groupby(["major", "major_name", "code", "category"], as_index=False).size()
    return counts.rename(columns={"size": "videos"}).sort_values(["major", "code"]).reset_index(drop=True)


def durations_frame(dataset: Dataset, probe_limit: int = 300) -> pd.DataFrame:
    """Per video: duration, number of moments and total moment length.

    Durations the annotation does not give are probed from the video files, for at most
    ``probe_limit`` clips (probing thousands of files would stall a page); the rest stay unknown.
    """
    import pandas as pd

    from ecva_core.errors import VideoError
    from ecva_core.video import probe_video

    rows = []
    probed = 0
    for vid, record in dataset.records.items():
        duration = record.duration
        if duration is None and probed < probe_limit:
            path = dataset.video_path(vid)
            if path is not None:
                probed += 1
                try:
                    duration = probe_video(path).duration
                except VideoError:
                    duration = None
        moments = record.annotation.moments
        rows.append(
            {
                "video_id": vid,
                "duration_s": duration,
                "moments": len(moments),
                "moment_total_s": sum(m.duration for m in moments),
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "duration_s", "moments", "moment_total_s"])


def moment_lengths(dataset: Dataset) -> pd.DataFrame:
    """One row per annotated moment with its length in seconds."""
    import pandas as pd

    rows = [
        {"video_id": vid, "length_s": seg.duration}
        for vid, record in dataset.records.items()
        for seg in record.annotation.moments
    ]
    return pd.DataFrame(rows, columns=["video_id", "length_s"])


def flags_frame(dataset: Dataset) -> pd.DataFrame:
    """The annotation quality flags with the row of the annotation file behind each."""
    import pandas as pd

    rows = [{"video_id": f.video_id, "row": f.row, "field": f.field, "problem": f.problem} for f in dataset.flags]
    return pd.DataFrame(rows, columns=["video_id", "row", "field", "problem"])


def paired_question_diffs(
    scores: pd.DataFrame, model_a: str, model_b: str, metric: str, variant: str = "all"
) -> pd.DataFrame:
    """Questions both models have a value for: ``video_id, task, a, b, diff = a - b``, largest |diff| first."""
    import pandas as pd

    matrix = question_matrix(scores[scores["model"].isin([model_a, model_b])], metric, variant)
    if model_a not in matrix or model_b not in matrix:
        return pd.DataFrame(columns=["video_id", "task", "a", "b", "diff"])
    both = matrix[[model_a, model_b]].dropna().rename(columns={model_a: "a", model_b: "b"})
    both["diff"] = both["a"] - both["b"]
    both = both.reset_index()
    both.columns.name = None
    return both.reindex(both["diff"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)


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


def videos_frame(dataset: Dataset) -> pd.DataFrame:
    """``video_id, category_major, category_name`` for :func:`ecva_core.metrics.aggregate.leaderboard`."""
    cats = video_categories(dataset)
    return cats.rename(columns={"major": "category_major", "major_name": "category_name"})[
        ["video_id", "category_major", "category_name"]
    ]


def _restrict(scores: pd.DataFrame, dataset: Dataset, majors: Sequence[int], tasks: Sequence[str]) -> pd.DataFrame:
    """Scores of the chosen tasks and of videos in the chosen major categories (empty choice = all)."""
    out = scores
    if tasks:
        out = out[out["task"].isin(list(tasks))]
    if majors:
        cats = video_categories(dataset)
        out = out[out["video_id"].isin(cats.loc[cats["major"].isin(list(majors)), "video_id"])]
    return out


def first_question(dataset: Dataset, scores: pd.DataFrame, model: str) -> tuple[str, str] | None:
    """The first (video_id, task) a model answered, in dataset order, to open the question explorer on."""
    answered = set(
        normal_answers(scores[scores["model"] == model])[["video_id", "task"]].itertuples(index=False, name=None)
    )
    for item in dataset.qa_items(SCORED_TASKS):
        if (item.video_id, item.task.value) in answered:
            return item.video_id, item.task.value
    return None


@dataclass(frozen=True)
class LeaderboardView:
    """What the leaderboard page draws: the table, per-task values for the bar chart, pillars for the radar."""

    table: pd.DataFrame
    per_task: pd.DataFrame
    pillars: pd.DataFrame
    chart_label: str
    default_columns: tuple[str, ...]
    note: str


LEADERBOARD_HELP: dict[str, str] = {
    "AnomEval": ANOMEVAL_LABEL + "; complete: all three pillars measured (the only AnomEval ranked)",
    "Partial AnomEval": "AnomEval over the measured pillars only (see Pillars), weights renormalised; "
    "ranked after every complete AnomEval",
    "Pillars": "the AnomEval pillars measured for this model (coverage of the score)",
    "Protocol": "the protocol its judge scores were made under: default (this tool) or official (the official "
    "ECVA judge model, prompts and scales)",
    "AnomEval 95% CI": "bootstrap over videos (a video's three questions move together)",
    "Basic": "basic reasoning pillar: key-phrase coverage and logic/5",
    "Consistency": "share of answers the judge finds consistent with the reference",
    "Hallucination": "share of key-frame-removed probe answers that abstain",
    "Coverage": "questions with a score / questions in the dataset (for the chosen filters)",
    "Failed answers": "ERROR or empty predictions",
    "Failed scores": "metric or judge calls that failed (count 0 under 'all', left out under 'valid')",
}


@dataclass(frozen=True)
class LeaderboardPart:
    """The leaderboard's figures for some models before the table is drawn.

    Every figure of a model depends only on that model's scores and answers (and the dataset), so
    the explorer keeps one part per model and, after a write, recomputes only the changed model;
    :func:`leaderboard_from_parts` combines parts into the view one call over all scores gives.
    ``metrics`` names, per model with scores, the metrics stored for it: the explorer lists models
    and measures from it without reading every score.
    """

    overall: pd.DataFrame
    by_task: pd.DataFrame
    answered: dict[str, int]
    failed_answers: dict[str, int]
    n_scores: int
    metrics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)


def model_protocols(db: ResultsDB, model: str) -> dict[str, str]:
    """``{model: protocol}`` of the model's latest judge scores ("default", "official", or both joined
    with "+"); empty when it has none. Read from the prompt version stored with each judge score."""
    names: set[str] = set()
    for submission in db.submissions(model):
        names |= {protocol_of(s.prompt_version) for s in db.judge_scores(submission["id"]) if s.latest}
    names.discard("")
    return {model: "+".join(sorted(names))} if names else {}


def leaderboard_part(
    scores: pd.DataFrame,
    dataset: Dataset,
    mode: str = "all",
    majors: Sequence[int] = (),
    tasks: Sequence[str] = (),
    predictions: pd.DataFrame | None = None,
    *,
    hallucination: str = ABSTENTION,
    protocols: dict[str, str] | None = None,
) -> LeaderboardPart:
    """Aggregates of the models in ``scores`` (any frame with the columns of
    ``ResultsDB.aggregate_frame``) for the chosen categories and tasks; ``predictions`` needs only
    ``model, video_id, task, probe, status`` (``ResultsDB.answer_status_frame``); ``hallucination``
    is the reading that feeds the pillar; ``protocols`` (:func:`model_protocols`) is carried along."""
    import pandas as pd

    from ecva_core.metrics.aggregate import leaderboard

    scoped = _restrict(scores, dataset, majors, tasks)
    if scoped.empty:
        return LeaderboardPart(pd.DataFrame(columns=["model"]), pd.DataFrame(columns=["model", "task"]), {}, {}, 0)
    overall = leaderboard(scoped, variant=mode, hallucination=hallucination)
    by_task = leaderboard(scoped, by="task", variant=mode, hallucination=hallucination)
    scored = normal_answers(scoped)
    scored = scored[scored["task"].isin([t.value for t in SCORED_TASKS])]
    answered = scored[["model", "video_id", "task"]].drop_duplicates().groupby("model").size()
    models = overall["model"]
    failed = _failed_answers(predictions, models, dataset, majors, tasks)
    return LeaderboardPart(
        overall=overall,
        by_task=by_task,
        answered={str(m): int(n) for m, n in answered.items()},
        failed_answers={str(m): n for m, n in zip(models, failed, strict=True)},
        n_scores=len(scoped),
        metrics={str(m): tuple(sorted(g.dropna().unique())) for m, g in scoped.groupby("model")["metric"]},
        protocols=dict(protocols or {}),
    )


def leaderboard_view(
    scores: pd.DataFrame,
    dataset: Dataset,
    mode: str = "all",
    majors: Sequence[int] = (),
    tasks: Sequence[str] = (),
    predictions: pd.DataFrame | None = None,
    *,
    hallucination: str = ABSTENTION,
) -> LeaderboardView:
    """One row per model with AnomEval, per-task AnomEval (What/Why/How), pillars and text metrics,
    each with its 95% CI, plus coverage and failure counts, for the chosen categories and tasks."""
    part = leaderboard_part(scores, dataset, mode, majors, tasks, predictions, hallucination=hallucination)
    return leaderboard_from_parts([part], dataset, mode, majors, tasks)


def leaderboard_from_parts(
    parts: Sequence[LeaderboardPart],
    dataset: Dataset,
    mode: str = "all",
    majors: Sequence[int] = (),
    tasks: Sequence[str] = (),
) -> LeaderboardView:
    """The :func:`leaderboard_view` of the models of ``parts`` (disjoint model sets, same filters)."""
    import pandas as pd

    from ecva_core.metrics.aggregate import combine_leaderboards

    parts = [p for p in parts if p.n_scores]
    if not parts:
        empty = pd.DataFrame(columns=["model"])
        return LeaderboardView(
            empty,
            pd.DataFrame(columns=["model", "task", "facet", "mean", "low", "high"]),
            pd.DataFrame(columns=["model", "pillar", "value"]),
            "score",
            ("model",),
            "No scores for these filters.",
        )
    overall = combine_leaderboards([p.overall for p in parts])
    by_task = combine_leaderboards([p.by_task for p in parts], by="task")
    answered = {m: n for p in parts for m, n in p.answered.items()}
    failed_answers = {m: n for p in parts for m, n in p.failed_answers.items()}
    protocols = {m: n for p in parts for m, n in p.protocols.items()}
    complete = overall["anomeval"].notna().any() if "anomeval" in overall else False
    partial = overall["anomeval_partial"].notna().any() if "anomeval_partial" in overall else False
    judged = complete or partial
    chart = "anomeval" if complete else "anomeval_partial" if partial else None
    chart = chart or next((m for m in PICK_ORDER if m in overall), None)
    table = pd.DataFrame({"model": overall["model"]})
    ci = _ci_text
    if judged:
        table["AnomEval"] = overall["anomeval"]
        table["AnomEval 95% CI"] = ci(overall, "anomeval")
        table["Partial AnomEval"] = overall["anomeval_partial"]
        table["Partial AnomEval 95% CI"] = ci(overall, "anomeval_partial")
        table["Pillars"] = overall["anomeval_covers"]
    task_wide = by_task.set_index(["model", "task"]) if not by_task.empty else None
    for task in SCORED_TASKS:
        if tasks and task.value not in tasks:
            continue
        column = chart or "anomeval"
        if task_wide is None or column not in task_wide:
            continue
        rows = task_wide.xs(task.value, level="task") if task.value in task_wide.index.get_level_values(1) else None
        if rows is None:
            continue
        label = f"{task.facet} ({task.value})"
        aligned = rows.reindex(table["model"])
        table[label] = aligned[column].to_numpy()
        table[f"{label} 95% CI"] = ci(aligned.reset_index(), column)
    for pillar in PILLARS:
        if judged and pillar in overall:
            table[pillar.capitalize()] = overall[pillar]
    shown = (*PICK_ORDER, *sorted(overall.columns))
    metric_cols = [m for m in shown if m in overall and measures.is_per_question_metric(m)]
    for metric in dict.fromkeys(metric_cols):
        table[metric] = overall[metric]
        table[f"{metric} 95% CI"] = ci(overall, metric)
    expected = len(_restrict_items(dataset, majors, tasks))
    table["Questions"] = [int(answered.get(m, 0)) for m in table["model"]]
    table["Coverage"] = (table["Questions"] / expected).round(3) if expected else float("nan")
    table["Failed answers"] = [int(failed_answers.get(m, 0)) for m in table["model"]]
    table["Failed scores"] = overall["n_failed"].astype(int)
    table["Skipped scores"] = overall["n_skipped"].astype(int)
    table["Protocol"] = [protocols.get(m, "-") for m in table["model"]]

    per_task = pd.DataFrame(columns=["model", "task", "facet", "mean", "low", "high"])
    if chart and not by_task.empty and chart in by_task:
        per_task = by_task[["model", "task", "facet", chart, f"{chart}_lo", f"{chart}_hi"]].rename(
            columns={chart: "mean", f"{chart}_lo": "low", f"{chart}_hi": "high"}
        )
    pillars = overall.melt(id_vars="model", value_vars=[p for p in PILLARS if p in overall], var_name="pillar")
    if not judged:
        pillars = pillars.assign(value=float("nan"))
    first = "AnomEval" if judged else (chart or "model")
    defaults = ["model", first, f"{first} 95% CI"]
    if judged:
        defaults += ["Partial AnomEval", "Pillars"]
    defaults += [c for c in table.columns if c.endswith(")") and "CI" not in c]
    if judged:
        defaults += ["Basic", "Consistency", "Hallucination"]
    defaults += [m for m in (*COMPACT_TEXT_METRICS, "meteor") if m in table and m not in defaults]
    defaults += ["Coverage", "Failed answers", "Failed scores", "Protocol"]
    reading = str(overall["hallucination_reading"].iloc[0]) if "hallucination_reading" in overall else ABSTENTION
    note = (
        f"{'All: failures count 0' if mode == 'all' else 'Valid: failures left out'} · 95% CIs by video bootstrap · "
        + (
            f"{ANOMEVAL_LABEL}. AnomEval is complete (all three pillars) and ranked first; a partial one covers "
            f"the pillars named in Pillars · hallucination pillar: {READING_LABELS[reading]}"
            if judged
            else "No judge scores yet: AnomEval needs ECVA_JUDGE_BASE_URL or "
            "ECVA_JUDGE_API_KEY; the text metrics are shown."
        )
    )
    return LeaderboardView(
        table=table.reset_index(drop=True),
        per_task=per_task.reset_index(drop=True),
        pillars=pillars,
        chart_label=measures.label(chart) if chart else "score",
        default_columns=tuple(dict.fromkeys(c for c in defaults if c in table)),
        note=note,
    )


def _ci_text(frame: pd.DataFrame, column: str) -> list[str]:
    out = []
    for lo, hi in zip(frame.get(f"{column}_lo", []), frame.get(f"{column}_hi", []), strict=False):
        out.append("" if lo != lo or hi != hi else f"[{lo:.3f}, {hi:.3f}]")
    return out or [""] * len(frame)


def _restrict_items(dataset: Dataset, majors: Sequence[int], tasks: Sequence[str]) -> list:
    items = dataset.qa_items(SCORED_TASKS)
    if tasks:
        items = [i for i in items if i.task.value in tasks]
    if majors:
        cats = video_categories(dataset)
        keep = set(cats.loc[cats["major"].isin(list(majors)), "video_id"])
        items = [i for i in items if i.video_id in keep]
    return items


def _failed_answers(
    predictions: pd.DataFrame | None,
    models: pd.Series,
    dataset: Dataset,
    majors: Sequence[int],
    tasks: Sequence[str],
) -> list[int]:
    if predictions is None or predictions.empty:
        return [0] * len(models)
    preds = _restrict(normal_answers(predictions), dataset, majors, tasks)
    failed = preds[preds["status"] != "ok"].groupby("model").size()
    return [int(failed.get(m, 0)) for m in models]


def filter_leaderboard(
    view: LeaderboardView,
    search: str = "",
    sort: str | None = None,
    ascending: bool = False,
    columns: Sequence[str] = (),
) -> pd.DataFrame:
    """The leaderboard table as shown: models matching ``search``, sorted, with the chosen columns."""
    table = view.table
    if search.strip():
        table = table[table["model"].str.contains(search.strip(), case=False, regex=False)]
    if sort and sort in table:
        table = table.sort_values(sort, ascending=ascending, na_position="last", kind="stable")
    keep = ["model", *(c for c in (columns or view.default_columns) if c != "model" and c in table)]
    return table[keep].reset_index(drop=True)


@dataclass(frozen=True)
class BreakdownView:
    """Tables for the breakdown page; each is rows x columns ready for a heatmap."""

    task_pillar: pd.DataFrame
    by_category: pd.DataFrame
    by_task: pd.DataFrame
    by_metric: pd.DataFrame
    metric_label: str


def task_label(task: str) -> str:
    return f"{task} ({_FACETS.get(task, 'What')})"


def task_of_label(label: str) -> str:
    """``"Cause (Why)"`` -> ``"Cause"``."""
    return label.split(" (", 1)[0]


def split_model_task(label: str) -> tuple[str, str]:
    """``"model · Cause (Why)"`` -> ``("model", "Cause")``."""
    model, _, task = label.rpartition(" · ")
    return model, task_of_label(task)


def breakdown_view(
    scores: pd.DataFrame, dataset: Dataset, models: Sequence[str], metric: str | None, mode: str = "all"
) -> BreakdownView:
    """Per model: task x pillar, ``metric`` per major category and per task, and every metric's mean."""
    import pandas as pd

    from ecva_core.metrics.aggregate import leaderboard

    chosen = scores[scores["model"].isin(list(models))]
    metric = metric or default_metric(chosen) or "anomeval"
    by_task = leaderboard(chosen, by="task", variant=mode, n_boot=0)
    by_cat = leaderboard(chosen, videos=videos_frame(dataset), by="category", variant=mode, n_boot=0)
    overall = leaderboard(chosen, variant=mode, n_boot=0)
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


@dataclass(frozen=True)
class CompareView:
    """Two models paired over their common questions."""

    overall: dict[str, Any]
    by_task: pd.DataFrame
    by_category: pd.DataFrame
    questions: pd.DataFrame
    metric_label: str
    note: str


def compare_view(
    scores: pd.DataFrame,
    dataset: Dataset,
    model_a: str,
    model_b: str,
    metric: str | None = None,
    mode: str = "all",
    hallucination: str = ABSTENTION,
) -> CompareView:
    """Paired differences A - B with 95% CIs overall, per task and per major category, plus the questions.

    When the models measure different AnomEval pillars, AnomEval has no difference and the note says
    which pillars are missing for whom (compare the pillars one by one)."""
    import pandas as pd

    from ecva_core.metrics.aggregate import compare_models

    pair = scores[scores["model"].isin([model_a, model_b])]
    metric = metric or default_metric(pair) or "anomeval"
    missing: dict[str, list[str]] = {}

    def row(group: str, frame: pd.DataFrame) -> dict[str, Any]:
        res = compare_models(frame, model_a, model_b, measure=metric, variant=mode, hallucination=hallucination)
        if group == "all":
            missing.update(res["missing_pillars"])
        return {
            "group": group,
            "questions": res["n_questions"],
            "a": res["mean_a"],
            "b": res["mean_b"],
            "diff": res["diff"],
            "low": res["ci_low"],
            "high": res["ci_high"],
            "significant": res["significant"],
        }

    overall = row("all", pair)
    overall = {**overall, "ci_low": overall["low"], "ci_high": overall["high"]}
    by_task = [row(task_label(t.value), pair[pair["task"] == t.value]) for t in SCORED_TASKS]
    cats = video_categories(dataset)
    by_cat = []
    for name, ids in cats.groupby("major_name")["video_id"]:
        part = pair[pair["video_id"].isin(ids)]
        if not part.empty:
            by_cat.append(row(str(name), part))
    columns = ["group", "questions", "a", "b", "diff", "low", "high", "significant"]

    def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        out = pd.DataFrame(rows, columns=columns)
        return out[out["questions"] > 0].reset_index(drop=True)

    questions = paired_question_diffs(pair, model_a, model_b, metric, mode)
    note = (
        f"A = {model_a}, B = {model_b} · {measures.label(metric)} · paired over common questions · "
        "95% CI by video bootstrap · "
        + ("failures count 0" if mode == "all" else "failures left out")
        + f" · hallucination pillar: {READING_LABELS[hallucination]}"
    )
    if missing and missing.get(model_a) != missing.get(model_b):
        gaps = "; ".join(f"{m} lacks {', '.join(p)}" for m, p in missing.items())
        note += f" · AnomEval not compared: the models measure different pillars ({gaps}); compare the pillars"
    return CompareView(
        overall=overall,
        by_task=frame(by_task),
        by_category=frame(by_cat),
        questions=questions,
        metric_label=measures.label(metric),
        note=note,
    )
