"""The scoring pipeline: validate -> store atomically -> text metrics -> judge -> summary.

Scores are written batch by batch as they are computed, and each step only computes what the
database does not hold yet, so a run killed mid-way resumes where it stopped and re-scoring an
already scored file does no work (judge verdicts also come back from the judge cache).
Failed predictions (``ERROR``, empty) are stored as failures, never as scores, and never reach
the judge.

Judge scores are kept per judge model and prompt version: re-scoring a stored file with another
judge model judges its stored answers again (predictions and text metrics stay as they are), and
switching back to a judge that already scored them only makes its verdicts the latest again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecva_core.config import JUDGE_SETUP_HELP, Settings, get_settings
from ecva_core.errors import ConfigError
from ecva_core.results.db import ResultsDB, ScoreRow, StoredPrediction
from ecva_core.results.leaderboard_cache import warm_after_write
from ecva_core.results.submission import read_submission
from ecva_core.schema import (
    SCORED_TASKS,
    Prediction,
    PredictionStatus,
    QAItem,
    ScoreStatus,
    Task,
)

if TYPE_CHECKING:
    import pandas as pd

    from ecva_core.dataset import Dataset
    from ecva_core.metrics.judge import JudgeRequest

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``; stages: "validate", "text", "auxiliary", "judge"."""
Notify = Callable[[str], None]
"""``notify(message)``: a one-line note for the person running the score (e.g. a re-judge)."""

TEXT_BATCH = 256
JUDGE_BATCH = 512
NO_JUDGE = "no judge configured"


def submission_key(file_hash: str, task: Task | None, probe: str | None, dataset_fingerprint: str) -> str:
    """What makes two submissions the same: the bytes, how they were read, and the ground truth."""
    parts = [file_hash, task.value if task else "", probe or "", dataset_fingerprint]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def score_submission(
    path: Path | str,
    model: str,
    dataset: Dataset,
    db: ResultsDB,
    task: Task | str | None = None,
    probe: str | None = None,
    judge: bool | None = None,
    progress: Progress | None = None,
    *,
    metrics: Sequence[str] | None = None,
    settings: Settings | None = None,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """Validate, store and score one submission file for ``model``; return the summary dict.

    ``judge=None`` runs the AnomEval judge when one is configured; ``metrics`` restricts the text
    metrics (default: every metric available with these settings). A stored file judged before by
    another judge model is judged again with the configured one (``notify`` hears about it).
    """
    settings = settings or get_settings()
    use_judge = settings.judge_wanted(judge)
    if use_judge and not settings.judge_usable:
        raise ConfigError(f"the judge was requested but none is configured: {JUDGE_SETUP_HELP}; "
                          "or score with --no-judge")
    task = Task.parse(task) if isinstance(task, str) else task
    report = read_submission(path, dataset, task=task, probe=probe, max_mb=settings.max_submission_mb)
    if progress:
        progress("validate", 1, 1)
    key = submission_key(report.file_hash, task, probe, dataset.fingerprint)
    submission_id, is_new = db.add_submission(
        model,
        report.predictions,
        key=key,
        file_name=Path(path).name,
        file_hash=report.file_hash,
        coverage=report.coverage,
        problems=[p.to_dict() for p in report.warnings[:200]],
        dataset=dataset.name,
        dataset_fingerprint=dataset.fingerprint,
    )
    run_id = db.start_run(submission_id)
    counts: dict[str, Any] = {}
    try:
        counts["text_scores_written"] = _score_text(db, submission_id, dataset, settings, metrics, progress)
        counts["auxiliary_scores_written"] = _score_auxiliary(db, submission_id, dataset, progress)
        judge_summary = (
            _score_judge(db, submission_id, dataset, settings, progress, notify) if use_judge else None
        )
    except BaseException:
        db.finish_run(run_id, "failed", counts)
        raise
    if judge_summary is not None:
        counts["judge"] = judge_summary
    db.finish_run(run_id, "done", counts)
    summary = summarise(db, submission_id)
    summary.update(
        model=model,
        submission_id=submission_id,
        file=str(path),
        resubmitted=not is_new,
        coverage=report.coverage,
        warnings=len(report.warnings),
        problems=[p.to_dict() for p in report.warnings[:20]],
        written=counts,
    )
    summary["judge"] = _judge_status(use_judge, settings, judge_summary)
    warm_after_write(db, dataset, model, settings.cache_dir)
    return summary


def _judge_status(use_judge: bool, settings: Settings, run: dict[str, Any] | None) -> dict[str, Any]:
    if not use_judge:
        return {"status": "disabled (--no-judge)" if settings.judge_configured else NO_JUDGE}
    status = (run or {}).get("unreachable") or "ok"
    return {"status": status, **(run or {}), "model": settings.judge_model}


def _items(dataset: Dataset, preds: Sequence[StoredPrediction]) -> dict[tuple[str, str], QAItem]:
    tasks = tuple(sorted({Task(p.task) for p in preds}, key=list(Task).index))
    subclips = any("-" in p.video_id for p in preds)
    return {(item.video_id, item.task.value): item for item in dataset.qa_items(tasks, include_subclips=subclips)}


_FAILURE_REASONS = {
    PredictionStatus.ERROR.value: "the model's inference failed (ERROR row)",
    PredictionStatus.EMPTY.value: "empty answer",
}


def _failure_reason(pred: StoredPrediction) -> str:
    return _FAILURE_REASONS.get(pred.status, f"prediction is {pred.status}")


def _score_text(
    db: ResultsDB, submission_id: int, dataset: Dataset, settings: Settings, metrics: Sequence[str] | None,
    progress: Progress | None,
) -> int:
    """Text metrics for every scored-task prediction still missing one; written per batch."""
    from ecva_core.metrics.text import available_metrics, score_text

    names = list(metrics) if metrics is not None else available_metrics(settings)
    preds = [p for p in db.stored_predictions(submission_id) if Task(p.task) in SCORED_TASKS]
    done = db.scored_metrics(submission_id)
    todo = [p for p in preds if set(names) - done.get(p.id, set())]
    items = _items(dataset, todo)
    written = 0
    if progress:
        progress("text", 0, len(todo))
    for start in range(0, len(todo), TEXT_BATCH):
        batch = todo[start : start + TEXT_BATCH]
        rows: list[ScoreRow] = []
        scorable: list[tuple[StoredPrediction, QAItem]] = []
        for pred in batch:
            item = items.get((pred.video_id, pred.task))
            if pred.status != PredictionStatus.OK.value:
                rows += [ScoreRow(pred.id, m, None, ScoreStatus.FAILED.value, _failure_reason(pred)) for m in names]
            elif item is None or not item.answer.strip():
                rows += [ScoreRow(pred.id, m, None, ScoreStatus.SKIPPED.value, "no reference answer in the "
                                  "annotation") for m in names]
            else:
                scorable.append((pred, item))
        if scorable:
            values = score_text(
                [item.answer for _, item in scorable],
                [pred.output for pred, _ in scorable],
                metrics=names,
                reference_key=dataset.fingerprint,
                settings=settings,
            )
            for index, (pred, _) in enumerate(scorable):
                for metric in names:
                    value = values[metric][index]
                    if value is None:
                        rows.append(ScoreRow(pred.id, metric, None, ScoreStatus.SKIPPED.value, "metric unavailable"))
                    else:
                        rows.append(ScoreRow(pred.id, metric, float(value), ScoreStatus.OK.value))
        written += db.write_scores(rows)
        if progress:
            progress("text", start + len(batch), len(todo))
    return written


def _score_auxiliary(db: ResultsDB, submission_id: int, dataset: Dataset, progress: Progress | None) -> int:
    """Classification and timestamp answers, scored against the annotated category and moments."""
    preds = [p for p in db.stored_predictions(submission_id) if Task(p.task) not in SCORED_TASKS]
    done = db.scored_metrics(submission_id)
    todo = [p for p in preds if not done.get(p.id)]
    if not todo:
        return 0
    from ecva_core.metrics import auxiliary

    if progress:
        progress("auxiliary", 0, len(todo))
    rows: list[ScoreRow] = []
    for pred in todo:
        record = dataset.records.get(pred.video_id)
        task = Task(pred.task)
        names = auxiliary.CLASSIFICATION_METRICS if task is Task.CLASSIFICATION else auxiliary.TIMESTAMP_METRICS
        if pred.status != PredictionStatus.OK.value:
            rows += [ScoreRow(pred.id, m, None, ScoreStatus.FAILED.value, _failure_reason(pred)) for m in names]
        elif record is None:
            rows += [ScoreRow(pred.id, m, None, ScoreStatus.SKIPPED.value, "video not in the dataset") for m in names]
        else:
            prediction = Prediction(pred.video_id, task, pred.output, pred.prompt, pred.probe or None)
            for score in auxiliary.score_auxiliary(prediction, record.annotation):
                rows.append(ScoreRow(pred.id, score.metric, score.value, str(score.status), score.reason))
    written = db.write_scores(rows)
    if progress:
        progress("auxiliary", len(todo), len(todo))
    return written


def _judge_identity(metric: str, settings: Settings) -> tuple[str, str]:
    """(judge model, prompt version) that a judge metric is scored with under ``settings``."""
    from ecva_core.metrics.judge import METRIC_NAMES
    from ecva_core.metrics.judge.prompts import prompt_for

    judge = next(j for j, m in METRIC_NAMES.items() if m == metric)
    return settings.judge_model, prompt_for(judge).version


def _score_judge(
    db: ResultsDB, submission_id: int, dataset: Dataset, settings: Settings, progress: Progress | None,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """AnomEval judges for predictions lacking this judge's verdicts; failed predictions are stored as
    failures, unsent. Verdicts this judge already stored but another judge superseded become the latest
    again without a call."""
    from ecva_core.metrics.judge import JUDGES, METRIC_NAMES, plan_judges, requests_for, run_judges
    from ecva_core.metrics.judge.prompts import HALLUCINATION

    stored = [p for p in db.stored_predictions(submission_id) if Task(p.task) in SCORED_TASKS]
    states = db.judge_scores(submission_id)
    mine = {(s.prediction_id, s.metric): s for s in states
            if (s.judge_model, s.prompt_version) == _judge_identity(s.metric, settings)}
    previous = sorted({_judge_label(s.judge_model, settings) for s in states
                       if s.latest and mine.get((s.prediction_id, s.metric)) is not s})
    by_key = {(p.video_id, p.task, p.probe): p for p in stored}
    metric_of = {judge: METRIC_NAMES[judge] for judge in JUDGES}
    rows: list[ScoreRow] = []
    pending: list[Prediction] = []
    for pred in stored:
        wanted = [metric_of[HALLUCINATION]] if pred.probe else [m for j, m in metric_of.items() if j != HALLUCINATION]
        missing = [m for m in wanted if (pred.id, m) not in mine]
        if not missing:
            continue
        if pred.status != PredictionStatus.OK.value:
            rows += [ScoreRow(pred.id, m, None, ScoreStatus.FAILED.value, _failure_reason(pred),
                              *_judge_identity(m, settings)) for m in missing]
        else:
            pending.append(Prediction(pred.video_id, Task(pred.task), pred.output, pred.prompt, pred.probe or None))
    if previous and notify:
        notify(f"re-judging with {settings.judge_model}, predictions unchanged (judged before by "
               f"{', '.join(previous)})")
    reactivated = db.activate_judge_scores(
        (s.prediction_id, s.metric, s.judge_model, s.prompt_version) for s in mine.values() if not s.latest
    )
    db.write_scores(rows)
    requests = [r for r in requests_for(pending, _items(dataset, stored).values())
                if (_prediction_of(by_key, r).id, r.metric) not in mine]
    cache = db.judge_cache()
    totals: dict[str, Any] = {"requests": len(requests), "scored": 0, "failed": 0, "skipped": 0, "calls_made": 0,
                              "cache_hits": 0, "tokens_in": 0, "tokens_out": 0, "cost": 0.0}
    try:
        plan = plan_judges(requests, settings, cache)
        totals["planned_calls"] = plan.calls_needed
        for start in range(0, len(requests), JUDGE_BATCH):
            chunk = requests[start : start + JUDGE_BATCH]

            def report(done_n: int, total_n: int, offset: int = start) -> None:
                if progress:
                    progress("judge", offset + done_n, len(requests))

            run = run_judges(chunk, settings, cache, progress=report)
            batch_rows = []
            for result in run.results:
                req = result.request
                pred = _prediction_of(by_key, req)
                batch_rows.append(ScoreRow(pred.id, req.metric, result.value, str(result.status), result.reason,
                                           *_judge_identity(req.metric, settings)))
            db.write_scores(batch_rows)
            for name in ("scored", "failed", "skipped"):
                totals[name] += getattr(run, name)
            for name in ("calls_made", "cache_hits", "tokens_in", "tokens_out", "cost"):
                totals[name] += getattr(run, name)
            if run.unreachable:
                totals["unreachable"] = run.unreachable
    finally:
        cache.close()
    totals["cost"] = round(totals["cost"], 6)
    totals["failed_predictions"] = len({r.prediction_id for r in rows})
    totals["reactivated"] = reactivated
    totals["rejudged"] = bool(previous)
    totals["previous_models"] = previous
    return totals


def _prediction_of(by_key: dict[tuple[str, str, str], StoredPrediction], request: JudgeRequest) -> StoredPrediction:
    return by_key[(request.video_id, request.task.value, request.probe or "")]


def _judge_label(judge_model: str, settings: Settings) -> str:
    if not judge_model:
        return "an unrecorded judge"
    return f"{judge_model} (older prompts)" if judge_model == settings.judge_model else judge_model


MEASURE_ORDER = (
    "anomeval", "basic", "consistency", "hallucination", "bleu1", "bleu4", "rougeL", "meteor", "semantic", "bleurt",
    "unieval", "judge_consistency", "judge_logic", "judge_keyphrase", "judge_hallucination", "cls_major", "cls_sub",
    "R@0.3", "R@0.5", "R@0.7", "mIoU",
)  # fmt: skip
JUDGE_MEASURES = ("anomeval", "basic", "consistency", "hallucination", "judge_consistency", "judge_logic",
                  "judge_keyphrase", "judge_hallucination")


def summarise(db: ResultsDB, submission_id: int) -> dict[str, Any]:
    """Per-task and overall means with 95% CIs (bootstrapped by video), both variants, for one submission.

    ``tasks`` / ``overall`` repeat the "all" variant (failures count 0); ``variants`` holds both.
    Probe answers count for the hallucination pillar only (see :mod:`ecva_core.metrics.aggregate`).
    """
    from ecva_core.metrics import aggregate

    frame = db.scores_frame(submission_id=submission_id)
    if not _aggregatable(frame).any():
        note = ("only probe answers and no judge verdicts: probe answers count for the hallucination pillar only, "
                "which needs the judge" if not frame.empty else "nothing scored")
        return {"variants": {}, "tasks": {}, "overall": {}, "measures": [], "failures": {}, "note": note,
                "anomeval_label": aggregate.ANOMEVAL_LABEL}
    model = str(frame["model"].iloc[0])
    variants = aggregate.model_summary(frame, model)["variants"]
    order = [t.value for t in Task]
    for block in variants.values():
        block["tasks"] = dict(sorted(block["tasks"].items(), key=lambda kv: order.index(kv[0])))
    failed = frame[frame["status"] == "failed"]
    answer_failure = failed["reason"].isin([_FAILURE_REASONS[s] for s in _FAILURE_REASONS])
    return {
        "anomeval_label": aggregate.ANOMEVAL_LABEL,
        "measures": measures_present([variants["all"]["overall"], *variants["all"]["tasks"].values()]),
        "tasks": variants["all"]["tasks"],
        "overall": variants["all"]["overall"],
        "variants": variants,
        "failures": {
            "failed_scores": len(failed),
            "failed_answer_scores": int(answer_failure.sum()),
            "judge_failures": int((~answer_failure & failed["metric"].str.startswith("judge_")).sum()),
            "metric_failures": int((~answer_failure & ~failed["metric"].str.startswith("judge_")).sum()),
            "skipped_scores": int((frame["status"] == "skipped").sum()),
        },
    }


def _aggregatable(frame: pd.DataFrame) -> pd.Series:
    """Rows the aggregate uses: normal answers' scores, and hallucination verdicts on probe answers."""
    return (frame["probe"] != "") == (frame["metric"] == "judge_hallucination")


def measures_present(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The headline measures with a value in any of ``rows``, in display order."""
    have = {k for row in rows for k, v in row.items() if v is not None}
    return [m for m in MEASURE_ORDER if m in have]


def _videos_frame(data_path: Path | None) -> pd.DataFrame:
    import pandas as pd

    from ecva_core.dataset import load_dataset
    from ecva_core.taxonomy import major_name

    rows = []
    for vid, record in load_dataset(data_path).records.items():
        category = record.annotation.category
        major = category.major if category else -1
        rows.append({"video_id": vid, "category_major": major,
                     "category_name": major_name(major) if category else "unknown category"})
    return pd.DataFrame(rows, columns=["video_id", "category_major", "category_name"])


def _json_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    import math

    out = []
    for record in table.to_dict("records"):
        out.append({str(k): (None if isinstance(v, float) and math.isnan(v) else
                             v.item() if hasattr(v, "item") else v) for k, v in record.items()})
    return out


def leaderboard_rows(
    db: ResultsDB, by: str = "task", variant: str = "all", metrics: Sequence[str] | None = None,
    data_path: Path | None = None, judge_model: str | None = None,
) -> dict[str, Any]:
    """The leaderboard as plain data (what ``ecva leaderboard --json`` prints); ``by``: model/task/category.

    Judge metrics come from each answer's latest judge run, or from ``judge_model`` only. Models with
    answers but nothing to rank (e.g. only probe answers and no judge verdicts) are listed under
    ``unmeasured`` with the reason, rather than left out.
    """
    from ecva_core.metrics import aggregate

    frame = db.scores_frame(judge_model=judge_model)
    group = None if by == "model" else by
    videos = _videos_frame(data_path) if by == "category" and not frame.empty else None
    usable = _aggregatable(frame).any()
    rows = _json_rows(aggregate.leaderboard(frame, videos, by=group, variant=variant)) if usable else []
    shown = list(metrics) if metrics else measures_present(rows)
    configured = get_settings().judge_configured
    notes = []
    if not any(r.get(m) is not None for r in rows for m in JUDGE_MEASURES[4:]):
        notes.append(f"judge metrics: {NO_JUDGE}" if not configured
                     else "judge metrics: none stored yet (score with --judge)")
    notes += _judge_notes(frame, judge_model)
    return {"by": by, "variant": variant, "measures": shown, "rows": rows, "notes": notes,
            "unmeasured": _unmeasured(db, {r["model"] for r in rows}, configured),
            "judge_models": _judge_models(frame), "anomeval_label": aggregate.ANOMEVAL_LABEL}


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
            note = ("hallucination: not measured (no judge configured)" if not judge_configured
                    else "hallucination: not measured (no judge verdicts stored; score it again with --judge)")
        else:
            note = "not scored yet (score it again to resume)"
        out.append({"model": str(model), "answers": answers, "probe_answers": probes, "note": note})
    return out


def compare_models(
    db: ResultsDB, model_a: str, model_b: str, metrics: Sequence[str] | None = None, variant: str = "all"
) -> dict[str, Any]:
    """Paired comparison on common questions per measure (what ``ecva compare --json`` prints); ``judge_models``
    names the judge(s) behind each model's judge metrics, which should match for a fair comparison."""
    from ecva_core.errors import ResultsError
    from ecva_core.metrics import aggregate

    known = {m["model"] for m in db.models()}
    for name in (model_a, model_b):
        if name not in known:
            raise ResultsError(f"no model named {name!r} in {db.path}; known: {', '.join(sorted(known)) or 'none'}")
    frame = db.scores_frame(models=[model_a, model_b])
    judges = _judge_models(frame)
    if not _aggregatable(frame).any():
        return {"model_a": model_a, "model_b": model_b, "variant": variant, "measures": {}, "judge_models": judges}
    table = aggregate.question_table(frame, variant)
    present = [m for m in MEASURE_ORDER if m in table.columns and table[m].notna().any()]
    if any(m in present for m in ("basic", "consistency", "hallucination")):
        present.insert(0, "anomeval")
    wanted = list(metrics) if metrics else present
    results = {}
    for measure in wanted:
        result = aggregate.compare_models(frame, model_a, model_b, measure=measure, variant=variant)
        results[measure] = {k: (None if isinstance(v, float) and v != v else v) for k, v in result.items()}
    return {"model_a": model_a, "model_b": model_b, "variant": variant, "measures": results, "judge_models": judges}
