"""Aggregates over a scores frame: per task / pillar / category / metric, AnomEval, CIs, paired comparisons.

Input: a long frame with columns ``model, video_id, task, probe, metric, value, status, reason``
(``probe`` "" for normal answers; ``status`` ok / failed / skipped), e.g. ``ResultsDB.scores_frame()``.

- Variants: ``"all"`` counts a failed score as 0, ``"valid"`` leaves failures out; skipped scores
  (not applicable) are left out of both.
- Pillars per question: basic reasoning = mean of ``judge_keyphrase`` and ``judge_logic`` / 5;
  consistency = ``judge_consistency``; hallucination = ``judge_hallucination`` (abstention, the
  official reading) or ``judge_hallucination_pair`` (probe vs normal answer, the paper's figure),
  on probe answers, as ``hallucination`` chooses. Probe answers count for that pillar only.
- AnomEval = 0.2 basic + 0.4 consistency + 0.4 hallucination, a *reconstruction* of the paper's
  weighting (the official code never combines the pillars). ``anomeval`` is the complete score
  (all three pillars measured) and is the only one ranked; when some pillar has no value the
  weights are renormalised over the measured ones into ``anomeval_partial``, with
  ``anomeval_covers`` naming them, and such a row sorts after every complete one.
- Timestamp answers: ``tiou`` gives ``R@0.3`` / ``R@0.5`` / ``R@0.7`` (share with tIoU >= k) and
  ``mIoU``.
- Confidence intervals: 95 % percentile bootstrap resampling *videos* (a video's three questions
  move together), vectorised as multinomial video weights; seeded, so results are reproducible.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ecva_core.metrics.measures import (
    HALLUCINATION_METRICS,
    HEADLINE_TEXT_METRIC,
    MEASURES,
    METRIC_ORDER,
    PILLAR_WEIGHTS,
    PILLARS,
    PROBE_METRICS,
    RECALL_THRESHOLDS,
)
from ecva_core.metrics.protocol import ABSTENTION, check_reading
from ecva_core.metrics.stats import bootstrap_weights, percentile_ci, ratio_means
from ecva_core.schema import Task

if TYPE_CHECKING:
    import pandas as pd

ANOMEVAL_LABEL = (
    "AnomEval (reconstruction of the paper's weighting: 0.2 basic reasoning + 0.4 consistency "
    "+ 0.4 hallucination, each in [0, 1]; the official code never combines the pillars)"
)
VARIANTS: tuple[str, ...] = ("all", "valid")
N_BOOT = 1000
SEED = 0
REQUIRED_COLUMNS: tuple[str, ...] = ("model", "video_id", "task", "probe", "metric", "value", "status")
_KEY = ["model", "video_id", "task"]


def question_table(scores: pd.DataFrame, variant: str = "all", hallucination: str = ABSTENTION) -> pd.DataFrame:
    """One row per (model, video_id, task), one column per measure: metrics, derived R@k/mIoU, pillars.

    Several values of one measure for one question (e.g. two probe answers) are averaged;
    ``hallucination`` picks the reading that feeds the hallucination pillar.
    """
    import pandas as pd

    check_reading(hallucination)
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    missing = [c for c in REQUIRED_COLUMNS if c not in scores.columns]
    if missing:
        raise ValueError(f"scores frame lacks column(s) {missing}")
    failed = (scores["status"] == "failed").to_numpy(dtype=bool)
    ok = (scores["status"] == "ok").to_numpy(dtype=bool)
    probe_metric = scores["metric"].isin(PROBE_METRICS).to_numpy(dtype=bool)
    probe = (scores["probe"].fillna("").astype(str) != "").to_numpy(dtype=bool)
    value = pd.to_numeric(scores["value"], errors="coerce").to_numpy(dtype=float)
    keep = (probe == probe_metric) & (ok | failed)  # probe answers feed the hallucination pillar only
    if variant == "valid":
        keep &= ~failed
    else:
        value = np.where(failed, 0.0, value)
    keep &= ~np.isnan(value)
    if not keep.any():
        return pd.DataFrame(columns=[*_KEY, *PILLARS])
    value = value[keep]
    keys = []
    for column in _KEY:
        codes, uniques = pd.factorize(scores[column])
        keys.append((codes[keep], np.asarray(uniques.astype(str), dtype=object)))
    metric_all, metric_names = pd.factorize(scores["metric"])
    metric_codes_arr = metric_all[keep].astype(np.int64)
    combined = (keys[0][0].astype(np.int64) * len(keys[1][1]) + keys[1][0]) * len(keys[2][1]) + keys[2][0]
    question, first = pd.factorize(combined)
    names = [str(m) for m in metric_names]
    metric_codes = {name: i for i, name in enumerate(names)}
    rows_q, rows_m, rows_v = [question], [metric_codes_arr], [value]
    if "tiou" in metric_codes:
        is_tiou = rows_m[0] == metric_codes["tiou"]
        derived = [(f"R@{k}", (value[is_tiou] >= k).astype(float)) for k in RECALL_THRESHOLDS]
        for name, values in [*derived, ("mIoU", value[is_tiou])]:
            metric_codes[name] = len(names)
            names.append(name)
            rows_q.append(question[is_tiou])
            rows_m.append(np.full(is_tiou.sum(), metric_codes[name]))
            rows_v.append(values)
        names.remove("tiou")
    q, m, v = np.concatenate(rows_q), np.concatenate(rows_m), np.concatenate(rows_v)
    size = len(first) * len(metric_codes)
    flat = q * len(metric_codes) + m
    sums = np.bincount(flat, weights=v, minlength=size).reshape(len(first), -1)
    counts = np.bincount(flat, minlength=size).reshape(len(first), -1)
    means = ratio_means(sums, counts)
    n_task = len(keys[2][1])
    n_video = len(keys[1][1])
    table = pd.DataFrame(
        {
            "model": keys[0][1][first // (n_video * n_task)],
            "video_id": keys[1][1][(first // n_task) % n_video],
            "task": keys[2][1][first % n_task],
        }
    )
    measures = pd.DataFrame({name: means[:, metric_codes[name]] for name in names})
    table = pd.concat([table, measures], axis=1)
    nan = np.full(len(table), np.nan)
    basic = [table[m.name].to_numpy() / m.high for m in MEASURES if m.pillar == "basic" and m.name in table]
    with np.errstate(invalid="ignore"):
        stacked = np.vstack(basic) if basic else nan.reshape(1, -1)
        present = (~np.isnan(stacked)).sum(axis=0)
        table["basic"] = np.where(present > 0, np.nansum(stacked, axis=0) / np.maximum(present, 1), np.nan)
    table["consistency"] = table.get("judge_consistency", nan)
    table["hallucination"] = table.get(HALLUCINATION_METRICS[hallucination], nan)
    return table


def _measure_columns(table: pd.DataFrame, group_cols: list[str]) -> list[str]:
    present = [c for c in table.columns if c not in (*_KEY, *PILLARS, *group_cols)]
    known = [m for m in METRIC_ORDER if m in present]
    return [*PILLARS, *known, *sorted(set(present) - set(known))]


def anomeval_combine(pillar_means: dict[str, Any], measured: Sequence[str]) -> Any:
    """Weighted mean of the measured pillars with weights renormalised over them (arrays broadcast)."""
    if not measured:
        return np.nan
    total = sum(PILLAR_WEIGHTS[p] for p in measured)
    return sum(PILLAR_WEIGHTS[p] * pillar_means[p] for p in measured) / total


def _video_sums(group: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-video sums of values and counts of present values, shape (n_videos, n_columns)."""
    codes, uniques = _factorize(group["video_id"])
    values = group[columns].to_numpy(dtype=float)
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    n = len(uniques)
    sums = np.column_stack([np.bincount(codes, weights=filled[:, j], minlength=n) for j in range(len(columns))])
    counts = np.column_stack([np.bincount(codes, weights=present[:, j], minlength=n) for j in range(len(columns))])
    return sums.reshape(n, len(columns)), counts.reshape(n, len(columns))


def _factorize(values: pd.Series) -> tuple[np.ndarray, Any]:
    import pandas as pd

    return pd.factorize(values, sort=False)


@functools.lru_cache(maxsize=8)
def _float32_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights as float32, drawn once per (n, n_boot, seed): the leaderboard's per-model,
    per-task and per-filter calls mostly share one video count, and drawing costs more than the product."""
    weights = bootstrap_weights(n, n_boot, seed).astype(np.float32)
    weights.setflags(write=False)
    return weights


def _bootstrap_groups(parts: list[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int) -> list[np.ndarray | None]:
    """Bootstrap means (n_boot, k) per group, one product per group.

    Each group's figures come from a product of its own shape only, never from a wider product
    shared with other groups: BLAS kernels sum in an order that depends on the matrix shape and on
    the CPU's SIMD path, so a model's cached rows and a pass over every model agree by construction.
    """
    out: list[np.ndarray | None] = [None] * len(parts)
    if n_boot <= 0:
        return out
    for i, (sums, counts) in enumerate(parts):
        if not len(sums):
            continue
        weights = _float32_weights(len(sums), n_boot, seed)
        product = (weights @ np.hstack([sums, counts]).astype(np.float32)).astype(float)
        k = sums.shape[1]
        out[i] = ratio_means(product[:, :k], product[:, k:])
    return out


def _summarise(
    sums: np.ndarray,
    counts: np.ndarray,
    boot: np.ndarray | None,
    columns: list[str],
    n_questions: int,
    hallucination: str = ABSTENTION,
) -> dict[str, Any]:
    point = ratio_means(sums.sum(axis=0), counts.sum(axis=0))
    measured = [p for p in PILLARS if counts[:, columns.index(p)].sum() > 0]
    row: dict[str, Any] = {"n_videos": len(sums), "n_questions": n_questions}
    anomeval = anomeval_combine(dict(zip(columns, point, strict=True)), measured)
    if boot is not None:
        lo, hi = percentile_ci(boot)
        boot_anomeval = anomeval_combine({c: boot[:, i] for i, c in enumerate(columns)}, measured)
        a_lo, a_hi = percentile_ci(np.asarray(boot_anomeval, dtype=float).reshape(-1, 1))
    else:
        lo = hi = np.full(len(columns), np.nan)
        a_lo = a_hi = np.array([np.nan])
    figures = (float(anomeval), float(a_lo[0]), float(a_hi[0]))
    nan3 = (np.nan, np.nan, np.nan)
    complete = len(measured) == len(PILLARS)
    for name, (value, low, high) in (
        ("anomeval", figures if complete else nan3),
        ("anomeval_partial", nan3 if complete else figures),
    ):
        row.update({name: value, f"{name}_lo": low, f"{name}_hi": high})
    row["hallucination_reading"] = hallucination
    row["anomeval_covers"] = "+".join(measured) if measured else "not measured"
    row["not_measured"] = "+".join(p for p in PILLARS if p not in measured)
    for i, column in enumerate(columns):
        row[column], row[f"{column}_lo"], row[f"{column}_hi"] = point[i], lo[i], hi[i]
    return row


def _status_counts(scores: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    counts = scores.groupby([*by, "status"], observed=True).size().unstack("status", fill_value=0)
    return counts.reindex(columns=["failed", "skipped"], fill_value=0).add_prefix("n_")


def _group_columns(by: str | None) -> list[str]:
    if by is None:
        return []
    if by == "task":
        return ["task"]
    if by == "category":
        return ["category_major", "category_name"]
    raise ValueError(f"by must be None, 'task' or 'category', not {by!r}")


def _attach_groups(frame: pd.DataFrame, by: str | None, videos: pd.DataFrame | None) -> pd.DataFrame:
    if by != "category":
        return frame
    if videos is None:
        raise ValueError("by='category' needs the videos frame (video_id, category_major, category_name)")
    meta = videos[["video_id", "category_major", "category_name"]].drop_duplicates("video_id")
    meta = meta.assign(video_id=meta["video_id"].astype(str))
    out = frame.assign(video_id=frame["video_id"].astype(str)).merge(meta, on="video_id", how="left")
    out["category_major"] = out["category_major"].fillna(-1).astype(int)
    return out.assign(category_name=out["category_name"].fillna("unknown category"))


def rank_columns(frame: pd.DataFrame) -> list[str]:
    """What a leaderboard is sorted by, best first: the complete AnomEval, then the partial one (so a
    partial score sorts after every complete one), then the semantic score (else the first text metric)."""
    text = HEADLINE_TEXT_METRIC if HEADLINE_TEXT_METRIC in frame.columns else None
    text = text or next((m for m in METRIC_ORDER if m in frame.columns), None)
    return [c for c in ("anomeval", "anomeval_partial", text) if c is not None and c in frame.columns]


def _ranked(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(rank_columns(frame), ascending=False, na_position="last", kind="stable").reset_index(
        drop=True
    )


def leaderboard(
    scores: pd.DataFrame,
    videos: pd.DataFrame | None = None,
    by: str | None = None,
    variant: str = "all",
    n_boot: int = N_BOOT,
    seed: int = SEED,
    hallucination: str = ABSTENTION,
) -> pd.DataFrame:
    """One row per model (``by=None``), per (model, task) or per (model, category).

    Columns: group keys, ``n_videos``, ``n_questions``, ``n_failed``, ``n_skipped``, ``anomeval``
    (complete) and ``anomeval_partial`` (+ ``_lo``/``_hi`` 95 % CI), ``hallucination_reading``,
    ``anomeval_covers``, ``not_measured``, each pillar and each metric mean with its CI. Sorted by
    :func:`rank_columns`, best first.
    """
    import pandas as pd

    group_cols = _group_columns(by)
    table = _attach_groups(question_table(scores, variant, hallucination), by, videos)
    columns = _measure_columns(table, group_cols)
    labels, parts, sizes = [], [], []
    for keys, group in table.groupby(["model", *group_cols], sort=True, observed=True):
        labels.append(dict(zip(["model", *group_cols], keys if isinstance(keys, tuple) else (keys,), strict=True)))
        parts.append(_video_sums(group, columns))
        sizes.append(len(group))
    boots = _bootstrap_groups(parts, n_boot, seed)
    rows = [
        {**label, **_summarise(sums, counts, boot, columns, size, hallucination)}
        for label, (sums, counts), boot, size in zip(labels, parts, boots, sizes, strict=True)
    ]
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=["model", *group_cols, "n_videos", "n_questions", "anomeval"])
    status = _status_counts(_attach_groups(scores, by, videos), ["model", *group_cols]).reset_index()
    out = out.merge(status, on=["model", *group_cols], how="left")
    out[["n_failed", "n_skipped"]] = out[["n_failed", "n_skipped"]].fillna(0).astype(int)
    out.insert(len(group_cols) + 1, "variant", variant)
    if by == "task":
        out.insert(2, "facet", out["task"].map({t.value: t.facet for t in Task}).fillna("What"))
    return _ranked(out)


def combine_leaderboards(frames: Sequence[pd.DataFrame], by: str | None = None) -> pd.DataFrame:
    """The :func:`leaderboard` of several disjoint sets of models, from each set's own leaderboard.

    A model's rows depend only on its own scores (its bootstrap weights only on its video count and
    the seed), so the explorer caches them per model and recomputes only the models a write changed;
    this puts the cached rows together with the columns and order one call over all scores gives.
    """
    import pandas as pd

    group_cols = _group_columns(by)
    filled = [f for f in frames if len(f)]
    if len(filled) <= 1:
        return filled[0] if filled else (frames[0] if frames else pd.DataFrame(columns=["model", *group_cols]))
    out = pd.concat(filled, ignore_index=True)
    measures = {c[: -len("_lo")] for c in out.columns if c.endswith("_lo")} - {"anomeval", "anomeval_partial"}
    known = [m for m in METRIC_ORDER if m in measures]
    ordered = [*PILLARS, *known, *sorted(measures - {*PILLARS, *known})]
    head = list(filled[0].columns[: filled[0].columns.get_loc("not_measured") + 1])
    columns = [*head, *(f"{m}{suffix}" for m in ordered for suffix in ("", "_lo", "_hi")), "n_failed", "n_skipped"]
    out = out[columns].sort_values(["model", *group_cols], kind="stable")
    return _ranked(out)


def compare_models(
    scores: pd.DataFrame,
    model_a: str,
    model_b: str,
    measure: str = "anomeval",
    variant: str = "all",
    n_boot: int = N_BOOT,
    seed: int = SEED,
    hallucination: str = ABSTENTION,
) -> dict[str, Any]:
    """Paired difference A - B on the questions both models have a value for, with a video-clustered CI.

    ``measure`` is ``"anomeval"``, a pillar or a metric column of :func:`question_table`. AnomEval
    is compared only when both models measure the same pillars; otherwise the result has no
    difference, ``comparable`` False and ``missing_pillars`` says which pillars each model lacks
    (compare the pillars one by one instead).
    """
    table = question_table(scores[scores["model"].isin([model_a, model_b])], variant, hallucination)
    return compare_questions(table, model_a, model_b, measure, variant, n_boot, seed)


def compare_questions(
    table: pd.DataFrame,
    model_a: str,
    model_b: str,
    measure: str = "anomeval",
    variant: str = "all",
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> dict[str, Any]:
    """:func:`compare_models` on rows of the pair's :func:`question_table` (made with ``variant``):
    a view comparing several groups of questions builds the table once and passes each group's rows."""
    a = table[table["model"] == model_a].set_index(["video_id", "task"])
    b = table[table["model"] == model_b].set_index(["video_id", "task"])
    common = a.index.intersection(b.index)
    columns = list(PILLARS) if measure == "anomeval" else [measure]
    for column in columns:
        for side in (a, b):
            if column not in side.columns:
                side[column] = np.nan
    missing: dict[str, list[str]] = {}
    if measure == "anomeval":
        for name, side in ((model_a, a), (model_b, b)):
            gaps = [p for p in PILLARS if side[p].isna().all()]
            if gaps:
                missing[name] = gaps
    comparable = missing.get(model_a) == missing.get(model_b)
    a, b = a.loc[common, columns], b.loc[common, columns]
    both = (a.notna().to_numpy() & b.notna().to_numpy()).any(axis=1)  # questions both models have
    a, b, common = a[both], b[both], common[both]
    mask = a.notna().to_numpy() & b.notna().to_numpy()
    result: dict[str, Any] = {
        "measure": measure, "model_a": model_a, "model_b": model_b, "variant": variant, "n_boot": n_boot,
        "n_questions": int(both.sum()),
        "n_videos": len(set(common.get_level_values("video_id"))),
        "comparable": comparable, "missing_pillars": missing,
    }  # fmt: skip
    if result["n_questions"] == 0 or not comparable:
        nan = float("nan")
        covers = "not measured" if comparable else "not comparable: the models measure different pillars"
        return {**result, "mean_a": nan, "mean_b": nan, "diff": nan, "ci_low": nan, "ci_high": nan,
                "significant": False, "covers": covers}  # fmt: skip
    codes, _ = _factorize(common.get_level_values("video_id").to_series())
    n = int(codes.max()) + 1
    sums_a, sums_b, counts = np.zeros((n, len(columns))), np.zeros((n, len(columns))), np.zeros((n, len(columns)))
    np.add.at(sums_a, codes, np.where(mask, a.to_numpy(float), 0.0))
    np.add.at(sums_b, codes, np.where(mask, b.to_numpy(float), 0.0))
    np.add.at(counts, codes, mask)
    measured = [c for i, c in enumerate(columns) if counts[:, i].sum() > 0]

    def combine(means: np.ndarray) -> Any:
        if measure != "anomeval":
            return means[..., 0]
        return anomeval_combine({c: means[..., i] for i, c in enumerate(columns)}, measured)

    mean_a = float(combine(ratio_means(sums_a.sum(0), counts.sum(0))))
    mean_b = float(combine(ratio_means(sums_b.sum(0), counts.sum(0))))
    weights = _shared_weights(n, n_boot, seed)
    wc = weights @ counts
    diffs = np.asarray(combine(ratio_means(weights @ sums_a, wc)) - combine(ratio_means(weights @ sums_b, wc)))
    lo, hi = percentile_ci(diffs.reshape(-1, 1))
    result.update(
        mean_a=mean_a, mean_b=mean_b, diff=mean_a - mean_b, ci_low=float(lo[0]), ci_high=float(hi[0]),
        significant=bool(lo[0] > 0 or hi[0] < 0), covers="+".join(measured) if measure == "anomeval" else measure,
    )  # fmt: skip
    return result


@functools.lru_cache(maxsize=8)
def _shared_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap weights drawn once per (n, n_boot, seed): a comparison's overall and per-task groups
    share one video count, and drawing costs more than the product."""
    weights = bootstrap_weights(n, n_boot, seed)
    weights.setflags(write=False)
    return weights


def model_summary(
    scores: pd.DataFrame, model: str, n_boot: int = N_BOOT, seed: int = SEED, hallucination: str = ABSTENTION
) -> dict[str, Any]:
    """JSON-ready summary of one model: overall and per task, both variants, with CIs and counts."""
    own = scores[scores["model"] == model]
    out: dict[str, Any] = {"model": model, "anomeval_label": ANOMEVAL_LABEL, "variants": {}}
    for variant in VARIANTS:
        overall = leaderboard(own, variant=variant, n_boot=n_boot, seed=seed, hallucination=hallucination)
        per_task = leaderboard(own, by="task", variant=variant, n_boot=n_boot, seed=seed, hallucination=hallucination)
        out["variants"][variant] = {
            "overall": _json_row(overall.iloc[0]) if len(overall) else {},
            "tasks": {str(r["task"]): _json_row(r) for _, r in per_task.iterrows()},
        }
    return out


def _json_row(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, (float, np.floating)):
            out[str(key)] = None if np.isnan(value) else round(float(value), 6)
        elif isinstance(value, (np.integer,)):
            out[str(key)] = int(value)
        else:
            out[str(key)] = value
    return out
