"""Two models paired over their common questions: differences with 95% CIs for the explorer, and
per measure for ``ecva compare``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecva_core.metrics import measures
from ecva_core.metrics.measures import PILLARS, SUMMARY_ORDER, counted
from ecva_core.metrics.protocol import ABSTENTION, READING_LABELS, check_reading
from ecva_core.schema import SCORED_TASKS
from ecva_core.views.common import default_metric, question_matrix, task_label, video_categories
from ecva_core.views.leaderboard import _judge_models, protocols

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset
    from ecva_core.results.db import ResultsDB


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

    from ecva_core.metrics.aggregate import compare_questions, question_table

    pair = scores[scores["model"].isin([model_a, model_b])]
    metric = metric or default_metric(pair) or "anomeval"
    missing: dict[str, list[str]] = {}
    table = question_table(pair, mode, hallucination)  # once; each group compares its rows

    def row(group: str, frame: pd.DataFrame) -> dict[str, Any]:
        res = compare_questions(frame, model_a, model_b, measure=metric, variant=mode)
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

    overall = row("all", table)
    overall = {**overall, "ci_low": overall["low"], "ci_high": overall["high"]}
    by_task = [row(task_label(t.value), table[table["task"] == t.value]) for t in SCORED_TASKS]
    cats = video_categories(dataset)
    by_cat = []
    for name, ids in cats.groupby("major_name")["video_id"]:
        part = table[table["video_id"].isin(ids)]
        if not part.empty:
            by_cat.append(row(str(name), part))
    columns = {"group": str, "questions": int, "a": float, "b": float, "diff": float, "low": float, "high": float,
               "significant": bool}  # fmt: skip

    def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
        out = pd.DataFrame(rows, columns=list(columns)).astype(columns)  # the same dtypes with or without rows
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


def compare_models(
    db: ResultsDB,
    model_a: str,
    model_b: str,
    metrics: Sequence[str] | None = None,
    variant: str = "all",
    hallucination: str = ABSTENTION,
) -> dict[str, Any]:
    """Paired comparison on common questions per measure (what ``ecva compare --json`` prints); ``judge_models``
    names the judge(s) behind each model's judge metrics, which should match for a fair comparison.

    When the two models measure different AnomEval pillars, AnomEval is not compared (its entry says
    so) and ``missing_pillars`` names, per model, the pillars it lacks; the pillars are compared one by one.
    """
    from ecva_core.errors import ResultsError
    from ecva_core.metrics import aggregate

    check_reading(hallucination)
    known = {m["model"] for m in db.models()}
    for name in (model_a, model_b):
        if name not in known:
            raise ResultsError(f"no model named {name!r} in {db.path}; known: {', '.join(sorted(known)) or 'none'}")
    frame = db.scores_frame(models=[model_a, model_b])
    judges = _judge_models(frame)
    head = {
        "model_a": model_a,
        "model_b": model_b,
        "variant": variant,
        "hallucination_reading": hallucination,
        "judge_models": judges,
        "protocols": protocols(frame),
        "missing_pillars": {},
    }
    if not counted(frame).any():
        return {**head, "measures": {}}
    table = aggregate.question_table(frame, variant, hallucination)
    present = [m for m in SUMMARY_ORDER if m in table.columns and table[m].notna().any()]
    if any(m in present for m in PILLARS):
        present.insert(0, "anomeval")
    wanted = list(metrics) if metrics else present
    results = {}
    for measure in wanted:
        result = aggregate.compare_models(
            frame, model_a, model_b, measure=measure, variant=variant, hallucination=hallucination
        )
        results[measure] = {k: (None if isinstance(v, float) and v != v else v) for k, v in result.items()}
    if "anomeval" in results:
        head["missing_pillars"] = results["anomeval"]["missing_pillars"]
    return {**head, "measures": results}
