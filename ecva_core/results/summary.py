"""Summaries over a scores frame: per-task and overall means with 95% CIs, leaderboard, paired comparison.

"all" counts a failure (ERROR answer, judge failure) as 0; "valid" leaves failures out; skipped
scores (not applicable, not configured) are never counted. Confidence intervals resample videos,
because the three questions of a video are not independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

BOOTSTRAP = 1000
SEED = 0
TASK_ORDER = ("Description", "Cause", "Result", "Classification", "Timestamp")


def usable_rows(frame: pd.DataFrame, variant: str = "all") -> pd.DataFrame:
    """Rows that count for ``variant``, with failures set to 0 for "all"."""
    if variant not in {"all", "valid"}:
        raise ValueError(f"variant must be 'all' or 'valid', not {variant!r}")
    keep = frame["status"].eq("ok") | (frame["status"].eq("failed") if variant == "all" else False)
    out = frame.loc[keep].copy()
    out.loc[out["status"].eq("failed"), "value"] = 0.0
    return out


def mean_ci(values: pd.DataFrame, seed: int = SEED, rounds: int = BOOTSTRAP) -> dict[str, Any]:
    """Mean of ``value`` with a percentile bootstrap CI that resamples ``video_id`` clusters."""
    import numpy as np

    n = len(values)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    per_video = values.groupby("video_id")["value"].agg(["sum", "count"])
    sums, counts = per_video["sum"].to_numpy(float), per_video["count"].to_numpy(float)
    mean = float(sums.sum() / counts.sum())
    if len(per_video) < 2:
        return {"mean": mean, "ci_low": None, "ci_high": None, "n": n}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_video), size=(rounds, len(per_video)))
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"mean": mean, "ci_low": float(low), "ci_high": float(high), "n": n}


def metric_block(frame: pd.DataFrame, variant: str = "all") -> dict[str, dict[str, Any]]:
    """``{metric: {mean, ci_low, ci_high, n}}`` over the given scores (probe answers kept apart)."""
    rows = usable_rows(frame, variant)
    out: dict[str, dict[str, Any]] = {}
    for (metric, probe), group in rows.groupby(["metric", "probe"], sort=True):
        name = metric if not probe else f"{metric}@{probe}"
        if metric == "judge_hallucination":
            name = metric
        out[name] = mean_ci(group)
    return out


def submission_summary(frame: pd.DataFrame, variant: str = "all") -> dict[str, Any]:
    """Per-task and overall blocks for one submission's scores frame."""
    tasks: dict[str, Any] = {}
    for task in [t for t in TASK_ORDER if t in set(frame["task"])]:
        part = frame[frame["task"] == task]
        tasks[task] = _block(part, variant)
    scored = frame[frame["task"].isin(TASK_ORDER[:3])]
    return {
        "variant": variant,
        "metrics": sorted(set(frame["metric"])),
        "tasks": tasks,
        "overall": _block(scored if not scored.empty else frame, variant),
        "failures": {
            "failed_scores": int(frame["status"].eq("failed").sum()),
            "skipped_scores": int(frame["status"].eq("skipped").sum()),
            "judge_failed": int((frame["status"].eq("failed") & frame["metric"].str.startswith("judge_")
                                 & ~frame["reason"].str.contains("ERROR row|empty answer", regex=True)).sum()),
        },
    }


def _block(part: pd.DataFrame, variant: str) -> dict[str, Any]:
    answers = part.drop_duplicates(["video_id", "task", "probe"])
    failed_answers = part[part["status"].eq("failed") & part["reason"].str.contains("ERROR row|empty answer")]
    return {
        "n": len(answers),
        "failed": len(failed_answers.drop_duplicates(["video_id", "task", "probe"])),
        "metrics": metric_block(part, variant),
    }


def leaderboard(
    frame: pd.DataFrame, by: str = "task", variant: str = "all", categories: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per (model, group) with a metric block; ``by`` is "task", "category" or "metric"."""
    if frame.empty:
        return []
    frame = frame.copy()
    if by == "category":
        lookup = categories or {}
        frame["category"] = frame["video_id"].map(lambda v: lookup.get(v, "unknown"))
    elif by == "metric":
        frame["metric_group"] = "all tasks"
    column = {"task": "task", "category": "category", "metric": "metric_group"}[by]
    order = {name: i for i, name in enumerate(TASK_ORDER)}
    rows = []
    for model, per_model in frame.groupby("model", sort=True):
        groups = sorted(per_model.groupby(column), key=lambda g: (order.get(g[0], len(order)), str(g[0])))
        for group, part in groups:
            rows.append({"model": model, by: group, "metrics": metric_block(part, variant)})
        if by == "task":
            scored = per_model[per_model["task"].isin(TASK_ORDER[:3])]
            if not scored.empty:
                rows.append({"model": model, by: "overall", "metrics": metric_block(scored, variant)})
    return rows


def paired_comparison(
    frame: pd.DataFrame, model_a: str, model_b: str, metrics: Sequence[str] | None = None, variant: str = "all",
    seed: int = SEED, rounds: int = BOOTSTRAP,
) -> dict[str, dict[str, Any]]:
    """A - B on the questions both models answered, with a CI that resamples videos."""
    import numpy as np

    rows = usable_rows(frame, variant)
    keys = ["video_id", "task", "probe", "metric"]
    a = rows[rows["model"] == model_a].set_index(keys)["value"]
    b = rows[rows["model"] == model_b].set_index(keys)["value"]
    joined = a.to_frame("a").join(b.to_frame("b"), how="inner").reset_index()
    out: dict[str, dict[str, Any]] = {}
    wanted = list(metrics) if metrics else sorted(set(joined["metric"]))
    for metric in wanted:
        part = joined[joined["metric"] == metric]
        if part.empty:
            out[metric] = {"n": 0, "mean_a": None, "mean_b": None, "diff": None, "ci_low": None, "ci_high": None}
            continue
        part = part.assign(d=part["a"] - part["b"])
        per_video = part.groupby("video_id")["d"].agg(["sum", "count"])
        sums, counts = per_video["sum"].to_numpy(float), per_video["count"].to_numpy(float)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(per_video), size=(rounds, len(per_video)))
        boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
        low, high = np.percentile(boot, [2.5, 97.5])
        out[metric] = {"n": len(part), "videos": len(per_video), "mean_a": float(part["a"].mean()),
                       "mean_b": float(part["b"].mean()), "diff": float(part["d"].mean()),
                       "ci_low": float(low), "ci_high": float(high),
                       "a_better": bool(low > 0), "b_better": bool(high < 0)}
    return out
