"""The leaderboard: per-model parts (cached, combined into the view the explorer draws) and the
plain rows ``ecva leaderboard`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.config import get_settings
from ecva_core.metrics import measures
from ecva_core.metrics.aggregate import ANOMEVAL_LABEL
from ecva_core.metrics.measures import (
    COMPACT_TEXT_METRICS,
    PICK_ORDER,
    PILLARS,
    SUMMARY_ORDER,
    counted,
    measures_present,
)
from ecva_core.metrics.protocol import ABSTENTION, READING_LABELS, check_reading, protocol_of
from ecva_core.results.scoring import NO_JUDGE
from ecva_core.schema import SCORED_TASKS
from ecva_core.views.common import normal_answers, restrict_items, restrict_scores

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset
    from ecva_core.results.db import ResultsDB


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

    scoped = restrict_scores(scores, dataset, majors, tasks)
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
    expected = len(restrict_items(dataset, majors, tasks))
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
        defaults += [p.capitalize() for p in PILLARS]
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


def _failed_answers(
    predictions: pd.DataFrame | None,
    models: pd.Series,
    dataset: Dataset,
    majors: Sequence[int],
    tasks: Sequence[str],
) -> list[int]:
    if predictions is None or predictions.empty:
        return [0] * len(models)
    preds = restrict_scores(normal_answers(predictions), dataset, majors, tasks)
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


def protocols(frame: pd.DataFrame) -> dict[str, str]:
    """For each model, the protocol its judge scores were made under ("default", "official", or both
    joined with "+" when mixed); models without judge scores are left out."""
    judged = frame[frame["metric"].str.startswith("judge_") & (frame["prompt_version"] != "")]
    out = {}
    for model, versions in judged.groupby("model")["prompt_version"]:
        names = sorted({protocol_of(v) for v in versions})
        out[str(model)] = "+".join(names)
    return out


def _videos_frame(data_path: Path | None) -> pd.DataFrame:
    import pandas as pd

    from ecva_core.dataset import load_dataset
    from ecva_core.taxonomy import major_name

    rows = []
    for vid, record in load_dataset(data_path).records.items():
        category = record.annotation.category
        major = category.major if category else -1
        rows.append(
            {
                "video_id": vid,
                "category_major": major,
                "category_name": major_name(major) if category else "unknown category",
            }
        )
    return pd.DataFrame(rows, columns=["video_id", "category_major", "category_name"])


def _json_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    import math

    out = []
    for record in table.to_dict("records"):
        out.append(
            {
                str(k): (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
                for k, v in record.items()
            }
        )
    return out


def leaderboard_rows(
    db: ResultsDB,
    by: str = "model",
    variant: str = "all",
    metrics: Sequence[str] | None = None,
    data_path: Path | None = None,
    judge_model: str | None = None,
    hallucination: str = ABSTENTION,
) -> dict[str, Any]:
    """The leaderboard as plain data (what ``ecva leaderboard --json`` prints); ``by``: model/task/category.

    Rows are ranked by the headline measure (:func:`ecva_core.metrics.aggregate.rank_columns`: the
    complete AnomEval, then a partial one, then the semantic score); by task or category, each
    model's rows stay together in the order of the models' overall rank. Judge metrics come from
    each answer's latest judge run, or from ``judge_model`` only; ``protocols`` names the protocol
    behind each model's judge scores. Models with answers but nothing to rank (e.g. only probe
    answers and no judge verdicts) are listed under ``unmeasured`` with the reason.
    """
    from ecva_core.metrics import aggregate

    check_reading(hallucination)
    frame = db.scores_frame(judge_model=judge_model)
    group = None if by == "model" else by
    videos = _videos_frame(data_path) if by == "category" and not frame.empty else None
    usable = counted(frame).any()
    rows = []
    if usable:
        table = aggregate.leaderboard(frame, videos, by=group, variant=variant, hallucination=hallucination)
        if group is not None:
            order = aggregate.leaderboard(frame, variant=variant, n_boot=0, hallucination=hallucination)["model"]
            rank = {m: i for i, m in enumerate(order)}
            table = table.assign(_rank=table["model"].map(rank)).sort_values("_rank", kind="stable")
            table = table.drop(columns="_rank")
        rows = _json_rows(table)
    shown = list(metrics) if metrics else measures_present(rows)
    configured = get_settings().judge_configured
    notes = []
    if not any(r.get(m) is not None for r in rows for m in SUMMARY_ORDER if m.startswith("judge_")):
        notes.append(
            f"judge metrics: {NO_JUDGE}" if not configured else "judge metrics: none stored yet (score with --judge)"
        )
    notes += _judge_notes(frame, judge_model)
    return {
        "by": by,
        "variant": variant,
        "measures": shown,
        "rows": rows,
        "notes": notes,
        "unmeasured": _unmeasured(db, {r["model"] for r in rows}, configured),
        "judge_models": _judge_models(frame),
        "protocols": protocols(frame),
        "hallucination_reading": hallucination,
        "anomeval_label": aggregate.ANOMEVAL_LABEL,
    }


def _judge_models(frame: pd.DataFrame) -> dict[str, list[str]]:
    """For each model, the judge models its shown judge scores come from ("" = not recorded)."""
    judged = frame[frame["metric"].str.startswith("judge_")]
    return {str(m): sorted(set(group)) for m, group in judged.groupby("model")["judge_model"]}


def _judge_notes(frame: pd.DataFrame, judge_model: str | None) -> list[str]:
    used = sorted({j for js in _judge_models(frame).values() for j in js})
    if not used:
        return []
    names = ", ".join(j or "unrecorded (scored before judges were recorded)" for j in used)
    source = f"only {judge_model}" if judge_model is not None else "latest judge run per answer"
    notes = [f"judge: {names} ({source})"]
    if len(used) > 1:
        notes.append("judge metrics come from different judge models; re-score with one judge to compare them")
    return notes


def _unmeasured(db: ResultsDB, ranked: set[str], judge_configured: bool) -> list[dict[str, Any]]:
    """Models with stored answers but no leaderboard row, and why."""
    preds = db.predictions_frame()
    out = []
    for model, group in preds.groupby("model"):
        if model in ranked:
            continue
        probes = int((group["probe"] != "").sum())
        answers = len(group) - probes
        if answers == 0 and probes:
            note = (
                "hallucination: not measured (no judge configured)"
                if not judge_configured
                else "hallucination: not measured (no judge verdicts stored; score it again with --judge)"
            )
        else:
            note = "not scored yet (score it again to resume)"
        out.append({"model": str(model), "answers": answers, "probe_answers": probes, "note": note})
    return out
